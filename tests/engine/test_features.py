import pytest
import torch

from engine.features import FeatureConfig, FeatureStream, log_mel

WIDE = FeatureConfig(sample_rate_hz=16000)
NARROW = FeatureConfig(sample_rate_hz=8000)


def signal(seconds: float, rate: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * rate)) / rate
    return 0.3 * torch.sin(2 * torch.pi * 440 * t) + 0.05 * torch.randn(t.numel(), generator=g)


@pytest.mark.parametrize("chunk", [1, 7, 159, 160, 161, 399, 400, 1000, 4801])
def test_chunked_equals_whole(chunk: int) -> None:
    x = signal(1.3, 16000)
    whole = log_mel(x, WIDE)
    stream = FeatureStream(WIDE)
    parts = [stream.accept(x[i : i + chunk]) for i in range(0, x.numel(), chunk)]
    chunked = torch.cat(parts)
    assert chunked.shape == whole.shape
    assert torch.allclose(chunked, whole, atol=1e-4)


def test_frame_count_and_dimensions() -> None:
    x = signal(1.0, 16000)
    feats = log_mel(x, WIDE)
    assert feats.shape == (1 + (16000 - 400) // 160, 80)
    assert log_mel(x[:100], WIDE).shape == (0, 80)


def test_narrowband_filters_are_the_lower_broadband_filters() -> None:
    wide, narrow = WIDE.mel_filters, NARROW.mel_filters
    d = NARROW.n_mels
    assert 50 < d < 80
    assert torch.allclose(narrow, wide[: narrow.shape[0], :d])


def test_narrowband_features_match_broadband_levels_on_band_limited_audio() -> None:
    # A 500 Hz tone sampled at both rates lands in the same mel bins at the same level.
    t16 = torch.arange(16000) / 16000
    t8 = torch.arange(8000) / 8000
    wide = log_mel(0.5 * torch.sin(2 * torch.pi * 500 * t16), WIDE)
    narrow = log_mel(0.5 * torch.sin(2 * torch.pi * 500 * t8), NARROW)
    peak = int(wide[10].argmax())
    assert int(narrow[10].argmax()) == peak
    assert abs(float(wide[10, peak] - narrow[10, peak])) < 0.5


def test_batched_pull_equals_one_by_one() -> None:
    from engine.features import pull_batch

    signals = [signal(0.05 * (i + 1) + 0.013 * i, 16000, seed=i) for i in range(5)] + [torch.zeros(100)]
    singles, batched = [FeatureStream(WIDE) for _ in signals], [FeatureStream(WIDE) for _ in signals]
    for a, b, x in zip(singles, batched, signals):
        a.push(x)
        b.push(x)
    expected = [s.pull() for s in singles]
    got = pull_batch(batched)
    assert [g.shape for g in got] == [e.shape for e in expected]
    assert all(torch.allclose(g, e, atol=1e-5) for g, e in zip(got, expected))
    assert got[-1].shape == (0, 80) and batched[-1].frames_ready == 0
