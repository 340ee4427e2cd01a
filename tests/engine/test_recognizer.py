import pytest
import torch

from engine.endpoint import EndpointConfig
from engine.recognizer import Recognizer


def noise(seconds: float, seed: int) -> torch.Tensor:
    """Noise bursts of varying level and colour, so the features change over time."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(int(16000 * seconds), generator=g)
    envelope = torch.rand(x.numel() // 1600 + 1, generator=g).repeat_interleave(1600)[: x.numel()]
    return 0.3 * x * envelope * (envelope > 0.4) + 0.2 * torch.sin(torch.arange(x.numel()) * envelope)


def collect_tokens(recognizer: Recognizer, samples: torch.Tensor, chunk_samples: int) -> list:
    stream = recognizer.new_stream(endpoint=EndpointConfig(silence_seconds=120, max_utterance_seconds=1000))
    finals = []
    for i in range(0, samples.numel(), chunk_samples):
        stream.accept_audio(samples[i : i + chunk_samples])
        while stream.has_chunk:
            finals += [r for r in recognizer.step([stream])[0] if r.final]
    stream.end_audio()
    while not stream.finished:
        finals += [r for r in recognizer.step([stream])[0] if r.final]
    return [w for r in finals for w in r.words]


@pytest.mark.parametrize("chunk_samples", [160, 1234, 16000])
def test_streaming_words_equal_offline_words(tiny_bundle, chunk_samples: int) -> None:
    recognizer = Recognizer(tiny_bundle)
    audio = noise(2.0, seed=1)
    offline = recognizer.transcribe(audio)
    streamed = collect_tokens(recognizer, audio, chunk_samples)
    assert len(offline.words) >= 2 and len(offline.transcript) >= 10  # the random model emits, so this means something
    assert [w.word for w in streamed] == [w.word for w in offline.words]
    assert [w.start for w in streamed] == pytest.approx([w.start for w in offline.words])


def test_batched_streams_equal_single_streams(tiny_bundle) -> None:
    recognizer = Recognizer(tiny_bundle)
    signals = [noise(1.0 + 0.3 * i, seed=i) for i in range(4)]
    singles = [[r.transcript for r in recognizer.run(recognizer.new_stream(), s)] for s in signals]
    streams = [recognizer.new_stream() for _ in signals]
    for stream, s in zip(streams, signals):
        stream.accept_audio(s)
        stream.end_audio()
    batched = [[] for _ in signals]
    while not all(s.finished for s in streams):
        for i, results in enumerate(recognizer.step(streams)):
            batched[i] += [r.transcript for r in results if r.final]
    assert batched == singles
    assert any(singles)


def test_audio_after_end_is_refused(tiny_bundle) -> None:
    stream = Recognizer(tiny_bundle).new_stream()
    stream.end_audio()
    with pytest.raises(RuntimeError, match="after the end"):
        stream.accept_audio(torch.zeros(160))


def test_chunk_size_must_be_whole_output_frames(tiny_bundle) -> None:
    with pytest.raises(ValueError, match="multiple of 4"):
        Recognizer(tiny_bundle).new_stream(chunk_frames=10)


def test_transcribe_reports_durations(tiny_bundle) -> None:
    result = Recognizer(tiny_bundle).transcribe(noise(1.5, seed=2))
    assert result.audio_seconds == pytest.approx(1.5)
    assert result.processing_seconds > 0


def test_audio_ending_on_a_chunk_boundary_closes_cleanly(tiny_bundle) -> None:
    # 8000 samples = 48 feature frames = three whole 16-frame chunks: the last chunk is empty.
    recognizer = Recognizer(tiny_bundle)
    audio = noise(0.5, seed=7)
    assert audio.numel() == 8000
    streamed = collect_tokens(recognizer, audio, chunk_samples=1600)
    assert [w.word for w in streamed] == [w.word for w in recognizer.transcribe(audio).words]
