"""Log-mel features that are identical whether computed at once or chunk by chunk.

Frames are taken without centring or padding: frame ``t`` covers samples
``[t * hop, t * hop + win)``. A :class:`FeatureStream` keeps the samples that
do not yet fill a frame, so feeding audio in chunks of any size yields exactly
the frames of the whole signal.

Narrowband and broadband models share one mel scale: the filters are those of
an ``n_mels_total`` bank spanning 0..``mel_f_max_hz``, keeping only filters
that fit below the Nyquist frequency. With a 25 ms window at both 8 and 16 kHz
the FFT bins are 40 Hz apart at both rates, so a narrowband feature vector is
the lower part of the broadband one, and narrowband models can start from
broadband weights.

Shapes: ``S``: samples, ``T``: frames, ``D``: mel bins.
"""

from __future__ import annotations

import functools

from dataclasses import dataclass
from functools import cached_property

import torch
import torchaudio

LOG_FLOOR = 1e-10


@dataclass(frozen=True)
class FeatureConfig:
    """Parameters of the log-mel front end.

    Attributes:
        sample_rate_hz: audio rate the features are computed at.
        window_ms: analysis window length.
        hop_ms: frame shift.
        n_mels_total: filters in the full bank before the Nyquist cut.
        mel_f_max_hz: upper edge of the full bank.
    """

    sample_rate_hz: int = 16000
    window_ms: float = 25.0
    hop_ms: float = 10.0
    n_mels_total: int = 80
    mel_f_max_hz: float = 8000.0

    @property
    def win_length(self) -> int:
        """Window length in samples."""
        return int(round(self.sample_rate_hz * self.window_ms / 1000))

    @property
    def hop_length(self) -> int:
        """Frame shift in samples."""
        return int(round(self.sample_rate_hz * self.hop_ms / 1000))

    @cached_property
    def mel_filters(self) -> torch.Tensor:
        """Filter bank ``(n_freqs, D)`` restricted to the filters below Nyquist."""
        n_fft_full = int(round(self.win_length * self.mel_f_max_hz * 2 / self.sample_rate_hz))
        full = torchaudio.functional.melscale_fbanks(
            n_fft_full // 2 + 1, 0.0, self.mel_f_max_hz, self.n_mels_total, int(self.mel_f_max_hz * 2),
            norm=None, mel_scale="htk",
        )
        n_freqs = self.win_length // 2 + 1
        rows = full[:n_freqs]
        # A filter fits when its whole support lies in the bins this rate has.
        keep = [m for m in range(self.n_mels_total) if full[n_freqs:, m].abs().sum() == 0]
        return rows[:, keep].contiguous()

    @property
    def n_mels(self) -> int:
        """Feature dimension ``D``."""
        return int(self.mel_filters.shape[1])

    def to_dict(self) -> dict:
        """Serialisable form for a model manifest."""
        return {"sample_rate_hz": self.sample_rate_hz, "window_ms": self.window_ms, "hop_ms": self.hop_ms,
                "n_mels_total": self.n_mels_total, "mel_f_max_hz": self.mel_f_max_hz}


@functools.cache
def _hann(length: int, dtype: torch.dtype) -> torch.Tensor:
    # Built once per size: live streams compute features every 160 ms each.
    return torch.hann_window(length, periodic=False, dtype=dtype)


def log_mel(samples: torch.Tensor, config: FeatureConfig) -> torch.Tensor:
    """Log-mel frames of a mono float signal.

    Args:
        samples: ``(S,)`` float32 in [-1, 1] at ``config.sample_rate_hz``.
        config: front-end parameters.

    Returns:
        ``(T, D)`` float32, ``T = max(0, 1 + (S - win) // hop)``.
    """
    win, hop = config.win_length, config.hop_length
    if samples.numel() < win:
        return torch.zeros(0, config.n_mels)
    frames = samples.unfold(0, win, hop)  # (T, win)
    frames = frames - frames.mean(dim=1, keepdim=True)
    window = _hann(win, samples.dtype)
    spectrum = torch.fft.rfft(frames * window, n=win)
    # Scale by the window sum so that 8 kHz and 16 kHz features share a level.
    power = spectrum.abs().pow(2) / window.sum().pow(2)
    return torch.log(power @ config.mel_filters + LOG_FLOOR)


class FeatureStream:
    """Incremental log-mel: ``accept(chunk)`` returns the frames the chunk completes."""

    def __init__(self, config: FeatureConfig) -> None:
        self.config = config
        self._pending = torch.zeros(0)

    def accept(self, samples: torch.Tensor) -> torch.Tensor:
        """Add samples; return every newly complete frame ``(T, D)``."""
        buf = torch.cat([self._pending, samples.to(torch.float32)])
        feats = log_mel(buf, self.config)
        consumed = feats.shape[0] * self.config.hop_length
        self._pending = buf[consumed:]
        return feats
