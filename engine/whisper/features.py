"""Whisper's log-mel front end, computed frame by frame so that it streams.

Whisper computes a centred STFT (400-sample Hann window, 160-sample hop at 16 kHz), the power
through 80 Slaney mel filters, ``log10``, then normalises by the whole input's maximum. Here:

- frames are not centred (frame ``t`` covers samples ``[160 t, 160 t + 400)``), so that
  :class:`engine.features.FeatureStream` yields the same frames whether audio comes at once or in
  pieces; the output is raw ``log10`` mel, and the normalisation lives in the model
  (:func:`normalise_streaming`, :func:`normalise_utterance`);
- 8 kHz audio (the narrowband model) is upsampled inside the front end, in the spectral domain:
  a 200-sample window at 8 kHz gives the lower 101 of the 201 bins that a 400-sample window at
  16 kHz gives, at a quarter of the power; the bins above 4 kHz are empty, as they are for
  telephone audio resampled to 16 kHz. No time-domain resampler runs per stream.

Shapes: ``T``: frames, ``D``: mel bins (80).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from functools import cached_property

import torch
import torchaudio

#: Whisper's log floor and dynamic range.
LOG_FLOOR = 1e-10
DYNAMIC_RANGE = 8.0
#: The streaming normaliser's fixed ceiling (log10 mel) in place of the input's maximum: about the
#: median of the per-utterance maxima of speech at normal levels (see engine/whisper/README in the
#: module :mod:`engine.whisper.model`); frames louder than it are not clipped, only the floor uses it.
STREAMING_CEILING = 0.5
WHISPER_RATE_HZ = 16000


@dataclass(frozen=True)
class WhisperFeatureConfig:
    """Whisper's front end at ``sample_rate_hz`` (16000, or 8000 upsampled spectrally).

    Has the interface of :class:`engine.features.FeatureConfig` that the streams use.
    """

    sample_rate_hz: int = WHISPER_RATE_HZ
    hop_ms: float = 10.0
    window_ms: float = 25.0
    kind: str = "whisper"

    def __post_init__(self) -> None:
        if self.sample_rate_hz not in (8000, WHISPER_RATE_HZ):
            raise ValueError(f"Whisper features take 8000 or 16000 Hz, not {self.sample_rate_hz}")

    @property
    def win_length(self) -> int:
        """Window length in samples (25 ms)."""
        return 400 * self.sample_rate_hz // WHISPER_RATE_HZ

    @property
    def hop_length(self) -> int:
        """Frame shift in samples (10 ms)."""
        return 160 * self.sample_rate_hz // WHISPER_RATE_HZ

    @property
    def n_mels(self) -> int:
        """Feature dimension ``D``."""
        return 80

    @cached_property
    def mel_filters(self) -> torch.Tensor:
        """Whisper's filters ``(201, 80)``: librosa's Slaney mel bank for a 400-point FFT at 16 kHz."""
        return torchaudio.functional.melscale_fbanks(201, 0.0, 8000.0, 80, WHISPER_RATE_HZ, norm="slaney",
                                                     mel_scale="slaney")

    def frames_to_features(self, frames: torch.Tensor) -> torch.Tensor:
        """``(T, win)`` windows of samples to ``(T, D)`` raw ``log10`` mel."""
        window = _hann(self.win_length, frames.dtype)
        power = torch.fft.rfft(frames * window).abs().pow(2)
        if self.sample_rate_hz != WHISPER_RATE_HZ:
            ratio = WHISPER_RATE_HZ // self.sample_rate_hz
            power = torch.nn.functional.pad(power * ratio * ratio, (0, 201 - power.shape[1]))
        return torch.clamp(power @ self.mel_filters, min=LOG_FLOOR).log10()

    def to_dict(self) -> dict:
        """Serialisable form for a manifest."""
        return {"kind": self.kind, "sample_rate_hz": self.sample_rate_hz}


@functools.cache
def _hann(length: int, dtype: torch.dtype) -> torch.Tensor:
    return torch.hann_window(length, periodic=True, dtype=dtype)


def normalise_streaming(log_mel: torch.Tensor, ceiling: float = STREAMING_CEILING) -> torch.Tensor:
    """Whisper's normalisation with a fixed ceiling: needs no future frame."""
    return (torch.clamp(log_mel, min=ceiling - DYNAMIC_RANGE) + 4.0) / 4.0


def normalise_utterance(log_mel: torch.Tensor) -> torch.Tensor:
    """Whisper's own normalisation over a whole utterance ``(T, D)`` (its maximum sets the floor)."""
    if log_mel.numel() == 0:
        return log_mel
    return (torch.maximum(log_mel, log_mel.max() - DYNAMIC_RANGE) + 4.0) / 4.0


def whisper_log_mel(samples: torch.Tensor) -> torch.Tensor:
    """Whisper's reference front end on 16 kHz audio (centred STFT, normalised): ``(T, D)``.

    For the tests and for comparison only; serving uses :class:`WhisperFeatureConfig`.
    """
    window = _hann(400, samples.dtype)
    stft = torch.stft(samples, 400, 160, window=window, return_complex=True)
    power = stft[..., :-1].abs().pow(2)
    mel = WhisperFeatureConfig().mel_filters.T @ power
    return normalise_utterance(torch.clamp(mel, min=LOG_FLOOR).log10().T)
