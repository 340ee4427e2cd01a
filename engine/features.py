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

    def frames_to_features(self, frames: torch.Tensor) -> torch.Tensor:
        """``(T, win)`` windows of samples to ``(T, D)`` log-mel."""
        return _frames_to_log_mel(frames, self)

    def to_dict(self) -> dict:
        """Serialisable form for a model manifest."""
        return {"sample_rate_hz": self.sample_rate_hz, "window_ms": self.window_ms, "hop_ms": self.hop_ms,
                "n_mels_total": self.n_mels_total, "mel_f_max_hz": self.mel_f_max_hz}


@functools.cache
def _hann(length: int, dtype: torch.dtype) -> torch.Tensor:
    # Built once per size: live streams compute features every 160 ms each.
    return torch.hann_window(length, periodic=False, dtype=dtype)


def _frames_to_log_mel(frames: torch.Tensor, config: FeatureConfig) -> torch.Tensor:
    """``(T, win)`` windows of samples to ``(T, D)`` log-mel: every step works frame by frame."""
    frames = frames - frames.mean(dim=1, keepdim=True)
    window = _hann(config.win_length, frames.dtype)
    spectrum = torch.fft.rfft(frames * window, n=config.win_length)
    # Scale by the window sum so that 8 kHz and 16 kHz features share a level.
    power = spectrum.abs().pow(2) / window.sum().pow(2)
    return torch.log(power @ config.mel_filters + LOG_FLOOR)


def frame_count(num_samples: int, config: FeatureConfig) -> int:
    """Frames that ``num_samples`` samples complete: ``max(0, 1 + (S - win) // hop)``."""
    return 0 if num_samples < config.win_length else 1 + (num_samples - config.win_length) // config.hop_length


def log_mel(samples: torch.Tensor, config: FeatureConfig) -> torch.Tensor:
    """Log-mel frames of a mono float signal.

    Args:
        samples: ``(S,)`` float32 in [-1, 1] at ``config.sample_rate_hz``.
        config: front-end parameters.

    Returns:
        ``(T, D)`` float32, ``T = max(0, 1 + (S - win) // hop)``.
    """
    if samples.numel() < config.win_length:
        return torch.zeros(0, config.n_mels)
    return config.frames_to_features(samples.unfold(0, config.win_length, config.hop_length))


class FeatureStream:
    """Incremental log-mel: samples go in as they come, frames come out when pulled.

    :meth:`push` only queues samples (cheap, on the caller's thread);
    :meth:`pull` computes the frames they complete, and :func:`pull_batch`
    does so for many streams with one set of tensor operations.
    """

    def __init__(self, config: FeatureConfig) -> None:
        self.config = config
        self._chunks: list[torch.Tensor] = []
        self._num_samples = 0

    def push(self, samples: torch.Tensor) -> None:
        """Queue samples."""
        if samples.numel():
            self._chunks.append(samples.to(torch.float32))
            self._num_samples += samples.numel()

    @property
    def frames_ready(self) -> int:
        """Frames that :meth:`pull` would return now."""
        return frame_count(self._num_samples, self.config)

    def _take_frames(self) -> torch.Tensor | None:
        """The ``(T, win)`` windows of the complete frames; the samples after them stay queued."""
        t = self.frames_ready
        if t == 0:
            return None
        buf = torch.cat(self._chunks) if len(self._chunks) > 1 else self._chunks[0]
        consumed = t * self.config.hop_length
        rest = buf[consumed:]
        self._chunks = [rest] if rest.numel() else []
        self._num_samples = rest.numel()
        return buf[: consumed - self.config.hop_length + self.config.win_length].unfold(
            0, self.config.win_length, self.config.hop_length)

    def pull(self) -> torch.Tensor:
        """Every newly complete frame ``(T, D)``."""
        frames = self._take_frames()
        return torch.zeros(0, self.config.n_mels) if frames is None else self.config.frames_to_features(frames)

    def accept(self, samples: torch.Tensor) -> torch.Tensor:
        """:meth:`push` then :meth:`pull`."""
        self.push(samples)
        return self.pull()


def pull_batch(streams: list[FeatureStream]) -> list[torch.Tensor]:
    """:meth:`FeatureStream.pull` for streams of one configuration, computed in one go.

    Live sessions each complete a few frames per step; computing them together
    saves the per-call overhead of the tensor operations for every stream.
    """
    if not streams:
        return []
    config = streams[0].config
    taken = [s._take_frames() for s in streams]
    counts = [0 if f is None else f.shape[0] for f in taken]
    present = [f for f in taken if f is not None]
    if not present:
        return [torch.zeros(0, config.n_mels) for _ in streams]
    return list(config.frames_to_features(torch.cat(present)).split(counts))
