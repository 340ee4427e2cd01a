"""Waveform augmentation that breaks a synthesiser's fingerprint.

Speed perturbation, random equalisation, band limits, synthetic reverberation,
coloured noise at a random SNR, gain, and the telephone channel (band-pass,
8 kHz, G.711 µ-law round trip). All randomness comes from the caller's
``random.Random`` so a corpus is reproducible from its seed.
"""

from __future__ import annotations

import math
import random

import torch
import torchaudio.functional as AF

RATE_HZ = 16000


def speed_perturb(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Play `factor` times faster (tempo and pitch together, as Kaldi's speed perturbation)."""
    # Rates on a 400 Hz grid keep the resampling kernel small (gcd with 16 kHz >= 400).
    return AF.resample(x, int(round(RATE_HZ * factor / 400)) * 400, RATE_HZ)


def random_eq(x: torch.Tensor, rng: random.Random) -> torch.Tensor:
    """One to three random peaking filters of ±10 dB."""
    for _ in range(rng.randint(1, 3)):
        x = AF.equalizer_biquad(x, RATE_HZ, rng.uniform(150, 6000), rng.uniform(-10, 10), rng.uniform(0.5, 2.0))
    return x


def reverb(x: torch.Tensor, rng: random.Random) -> torch.Tensor:
    """Convolve with a synthetic room response: a direct path plus exponentially decaying noise."""
    rt60 = rng.uniform(0.15, 0.7)
    n = int(RATE_HZ * min(rt60, 0.6))
    t = torch.arange(n) / RATE_HZ
    gen = torch.Generator().manual_seed(rng.randrange(2**31))
    rir = torch.randn(n, generator=gen) * torch.exp(-6.9 * t / rt60) * rng.uniform(0.1, 0.5)
    rir[0] = 1.0
    wet = AF.fftconvolve(x, rir)[: x.numel()]
    return wet / (wet.abs().max() + 1e-8) * x.abs().max()


def coloured_noise(n: int, rng: random.Random) -> torch.Tensor:
    """White, pink or brown noise of unit RMS."""
    gen = torch.Generator().manual_seed(rng.randrange(2**31))
    white = torch.randn(n, generator=gen)
    exponent = rng.choice((0.0, 1.0, 2.0))
    if exponent:
        spec = torch.fft.rfft(white)
        f = torch.arange(spec.numel(), dtype=torch.float32).clamp(min=1.0)
        white = torch.fft.irfft(spec / f.pow(exponent / 2), n=n)
    return white / (white.pow(2).mean().sqrt() + 1e-8)


def add_noise(x: torch.Tensor, snr_db: float, rng: random.Random) -> torch.Tensor:
    """Add coloured noise at `snr_db` relative to the signal's RMS."""
    rms = x.pow(2).mean().sqrt()
    return x + coloured_noise(x.numel(), rng) * rms / (10 ** (snr_db / 20))


def telephone(x: torch.Tensor, rng: random.Random, *, rate_hz: int = RATE_HZ) -> torch.Tensor:
    """Telephone channel: band-pass, 8 kHz, µ-law round trip; returns 8 kHz samples."""
    x = AF.highpass_biquad(x, rate_hz, rng.uniform(200, 350))
    narrow = AF.resample(x, rate_hz, 8000)
    narrow = AF.lowpass_biquad(narrow, 8000, rng.uniform(3200, 3600))
    narrow = narrow / (narrow.abs().max() + 1e-8) * rng.uniform(0.2, 0.95)
    return AF.mu_law_decoding(AF.mu_law_encoding(narrow.clamp(-1, 1), 256), 256)


def pad_silence(x: torch.Tensor, rng: random.Random) -> torch.Tensor:
    """Pad 0.1-0.6 s of near-silence on both sides, so endpointing sees pauses."""
    before = torch.zeros(int(RATE_HZ * rng.uniform(0.1, 0.6)))
    after = torch.zeros(int(RATE_HZ * rng.uniform(0.1, 0.6)))
    return torch.cat([before, x, after])


def augment(x: torch.Tensor, rng: random.Random, *, speed: bool = True) -> torch.Tensor:
    """The broadband training chain; returns 16 kHz samples peak-scaled to a random level."""
    if speed and rng.random() < 0.6:
        x = speed_perturb(x, rng.uniform(0.88, 1.12))
    x = pad_silence(x, rng)
    if rng.random() < 0.5:
        x = random_eq(x, rng)
    if rng.random() < 0.15:
        x = AF.lowpass_biquad(x, RATE_HZ, rng.uniform(3500, 7000))
    if rng.random() < 0.3:
        x = reverb(x, rng)
    if rng.random() < 0.7:
        x = add_noise(x, rng.uniform(5, 40), rng)
    if rng.random() < 0.08:
        x = AF.resample(telephone(x, rng), 8000, RATE_HZ)
    peak = x.abs().max()
    if not math.isfinite(float(peak)) or peak == 0:
        return x
    return (x / peak * rng.uniform(0.05, 0.95)).clamp(-1, 1)
