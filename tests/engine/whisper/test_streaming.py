"""The streaming Whisper encoder: chunk by chunk == the same mask over the whole utterance, batched ==
one by one, past 30 s of positions, state stacking; the spectral upsampling of 8 kHz features."""

from __future__ import annotations

import pytest
import torch

from engine.features import FeatureStream, log_mel
from engine.whisper.features import WhisperFeatureConfig, normalise_utterance, whisper_log_mel
from engine.whisper.model import (StreamingWhisperCTC, WhisperCTCConfig, build_streaming, split_states,
                                  stack_states)
from engine.whisper.network import Whisper, WhisperDims

TINY = WhisperDims(n_mels=80, n_audio_ctx=64, n_audio_state=32, n_audio_head=2, n_audio_layer=3, n_vocab=40,
                   n_text_ctx=16, n_text_state=32, n_text_head=2, n_text_layer=1)


@pytest.fixture(scope="module")
def model() -> StreamingWhisperCTC:
    torch.manual_seed(0)
    config = WhisperCTCConfig(pretrained="whisper-tiny.en", vocab_size=12, chunk_frames=4, left_chunks=2,
                              trained_blocks=1, dims=TINY)
    return build_streaming(config, Whisper(TINY).eval())


def _chunked(model, feats, lengths, step):
    state, outs = model.initial_state(feats.shape[0]), []
    for s in range(0, feats.shape[1], step):
        lp, _, state = model.step(feats[:, s: s + step], (lengths - s).clamp(0, step), state)
        outs.append(lp)
    return torch.cat(outs, 1), state


@torch.inference_mode()
def test_chunked_equals_the_mask_over_the_whole_utterance(model) -> None:
    feats = torch.randn(2, 96, 80) - 3
    lengths = torch.tensor([96, 56])
    whole, out_lengths = model(feats, lengths)
    for step in (8, 16, 24):  # one, two and three attention chunks per step
        chunked, state = _chunked(model, feats, lengths, step)
        assert torch.allclose(chunked[0], whole[0], atol=1e-5)
        assert torch.allclose(chunked[1, :28], whole[1, :28], atol=1e-5)
        assert state.offset.tolist() == [48, 28] == out_lengths.tolist()


@torch.inference_mode()
def test_the_mask_matters(model) -> None:
    feats = torch.randn(1, 64, 80) - 3
    causal, _ = model(feats, torch.tensor([64]))
    prefix, _ = model(feats[:, :32], torch.tensor([32]))
    assert torch.allclose(causal[0, :16], prefix[0], atol=1e-5)  # the future does not leak back
    full = model.head(model.encoder((feats + 4) / 4))  # Whisper's full context differs
    assert not torch.allclose(full.log_softmax(-1), causal, atol=1e-3)


@torch.inference_mode()
def test_batched_equals_one_by_one_and_states_stack(model) -> None:
    feats = torch.randn(3, 48, 80) - 3
    lengths = torch.tensor([48, 40, 16])
    batched, state = _chunked(model, feats, lengths, 8)
    for i in range(3):
        single, one = _chunked(model, feats[i: i + 1, : int(lengths[i])], lengths[i: i + 1], 8)
        n = int(lengths[i]) // 2
        assert torch.allclose(batched[i, :n], single[0, :n], atol=1e-5)
        assert torch.allclose(split_states(state)[i].keys[0], one.keys[0], atol=1e-5)
    again = stack_states(split_states(state))
    assert all(torch.equal(a, b) for a, b in zip(again.keys + again.values, state.keys + state.values))
    assert torch.equal(again.offset, state.offset)


@torch.inference_mode()
def test_positions_past_whisper_window_do_not_fail(model) -> None:
    # 64 positions in TINY: a stream that never restarts runs past them (clamped); streams
    # restart at utterance boundaries (tests/engine/test_recognizer.py has the 10-minute stream).
    feats = torch.randn(1, 200, 80) - 3
    out, state = _chunked(model, feats, torch.tensor([200]), 16)
    assert out.shape[1] == 100 and int(state.offset) == 100 and torch.isfinite(out).all()
    fresh = model.restart_state(state)
    assert int(fresh.offset) == 0


def test_streamed_features_equal_whole_features() -> None:
    config = WhisperFeatureConfig(16000)
    x = torch.randn(16000) * 0.1
    stream = FeatureStream(config)
    pieces = [stream.accept(x[i: i + 999]) for i in range(0, x.numel(), 999)]
    assert torch.allclose(torch.cat(pieces), log_mel(x, config), atol=1e-5)


def test_features_match_whisper_reference_frames() -> None:
    x = torch.randn(16000) * 0.1
    ours = normalise_utterance(log_mel(x, WhisperFeatureConfig(16000)))
    # Without the first 40 samples, Whisper's centred frame t + 1 covers the samples of our frame t.
    reference = whisper_log_mel(x[40:])
    assert torch.allclose(ours[5:50], reference[6:51], atol=1e-3)


def test_narrowband_features_are_spectral_upsampling() -> None:
    import torchaudio.functional as AF
    t = torch.arange(8000) / 8000
    x8 = 0.3 * torch.sin(2 * torch.pi * 440 * t) + 0.1 * torch.sin(2 * torch.pi * 1900 * t)
    narrow = log_mel(x8, WhisperFeatureConfig(8000))
    wide = log_mel(AF.resample(x8, 8000, 16000), WhisperFeatureConfig(16000))
    n = min(narrow.shape[0], wide.shape[0])
    # The speech bands (mel bins below 3.5 kHz) agree to a few percent of a log10 unit.
    assert (narrow[2: n - 2, :60] - wide[2: n - 2, :60]).abs().median() < 0.05
    with pytest.raises(ValueError, match="8000 or 16000"):
        WhisperFeatureConfig(11025)
