"""Decode audio into float32 mono at the model's rate.

What the bytes are comes in parsed (an :class:`AudioSpec`: encoding, rate, channels, byte order);
content types are wire formats, parsed by :mod:`protocol.audio`, which the engine does not import.
Containers and codecs (WAV, FLAC, Ogg/Opus, MP3, WebM, ...) go through PyAV (FFmpeg); headerless
encodings (``l16``, ``mulaw``, ``alaw``) are unpacked with numpy and G.711 tables. Resampling uses libsoxr (``soxr``, its "HQ" quality): its cost is
linear in the samples and its memory bounded for any pair of rates (a polyphase sinc kernel, as
``torchaudio.functional.resample`` builds, has one phase per output step of the reduced ratio:
about 1 GB for 16001 -> 16000 Hz), and its streaming form gives exactly the samples of the
whole signal (:mod:`engine.audiostream`). Rates above :data:`MAX_RATE_HZ` are refused.
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import av
import numpy as np
import soxr
import torch


class AudioError(ValueError):
    """Audio that cannot be decoded or used: the message says what was wrong."""


class UnsupportedAudioType(AudioError):
    """An encoding that voxgate does not decode."""


class AudioSpec(Protocol):
    """What the decoder must know of the bytes before it sees them: a parsed content type.

    The server and the clients parse content types with :func:`protocol.audio.parse_content_type`
    (whose :class:`protocol.audio.AudioType` has these attributes; the engine does not import
    ``protocol``); :class:`AudioFormat` is the engine's own.

    Attributes:
        encoding: ``l16``, ``mulaw`` or ``alaw`` (headerless), ``wav``, ``flac``, ``ogg``, ``mp3``,
            ``webm``, or ``detect`` (a container recognised from its bytes).
        rate_hz: the sample rate of headerless audio.
        channels: interleaved channels of headerless audio.
        big_endian: the byte order of ``l16``.
    """

    @property
    def encoding(self) -> str: ...

    @property
    def rate_hz(self) -> int | None: ...

    @property
    def channels(self) -> int: ...

    @property
    def big_endian(self) -> bool: ...


@dataclass(frozen=True)
class AudioFormat:
    """An :class:`AudioSpec` of the engine's own: the PCM a WAV header describes, or "detect the container"."""

    encoding: str = "detect"
    rate_hz: int | None = None
    channels: int = 1
    big_endian: bool = True


#: No declared type: the container is recognised from its bytes.
DETECT = AudioFormat()


#: The highest sample rate accepted (192 kHz: studio audio; anything above is a mistake or a probe).
MAX_RATE_HZ = 192_000
#: The quality of every rate conversion (libsoxr's "high quality": 20-bit precision).
RESAMPLE_QUALITY = "HQ"


def check_rate(rate_hz: int) -> None:
    """Refuse a rate outside 1 Hz .. :data:`MAX_RATE_HZ`.

    Raises:
        AudioError: with the rate and the limit.
    """
    if not 0 < rate_hz <= MAX_RATE_HZ:
        raise AudioError(f"a sample rate of {rate_hz} Hz is outside what voxgate accepts (1 to {MAX_RATE_HZ} Hz)")


#: Encodings of bare samples, unpacked with numpy.
HEADERLESS = ("l16", "mulaw", "alaw")


@functools.cache
def _g711_table(encoding: str) -> np.ndarray:
    """The float32 sample of each of the 256 codes: decoding is a table look-up (cheap per stream chunk)."""
    codes = torch.arange(256)
    if encoding == "alaw":
        # A-law: invert the even bits, then the segment/mantissa expansion of G.711.
        a = codes ^ 0x55
        sign = torch.where(a & 0x80 != 0, 1.0, -1.0)
        exponent = (a >> 4) & 0x07
        mantissa = (a & 0x0F).to(torch.float32)
        magnitude = torch.where(exponent == 0, mantissa * 2 + 1, (mantissa * 2 + 33) * torch.pow(2.0, exponent - 1))
        samples = (sign * magnitude * 8 / 32768.0).numpy()
    else:
        # mu-law (G.711): codes are stored bit-inverted; sign, 3-bit segment, 4-bit mantissa, bias 0x84.
        # (torchaudio's mu_law_decoding is the companding curve over linear 0..255 codes, not these bytes.)
        u = ~codes & 0xFF
        exponent = (u >> 4) & 0x07
        magnitude = (((u & 0x0F) << 3) + 0x84) * torch.pow(2, exponent) - 0x84
        samples = (torch.where(u & 0x80 != 0, -magnitude, magnitude) / 32768.0).numpy()
    return samples.astype(np.float32)


def frame_bytes(spec: AudioSpec) -> int:
    """Bytes per frame (a sample of each channel) of headerless audio: 2 per l16 sample, 1 per G.711 one."""
    return (2 if spec.encoding == "l16" else 1) * spec.channels


def unpack_headerless(data: bytes, spec: AudioSpec) -> np.ndarray:
    """Unpack whole frames of headerless audio (``l16``, ``mulaw``, ``alaw``).

    Args:
        data: a whole number of frames (:func:`frame_bytes`); a stream decoder keeps any partial frame.
        spec: the encoding, channels and byte order.

    Returns:
        float32 mono samples in [-1, 1], channels averaged.
    """
    if spec.encoding == "l16":
        pcm = np.frombuffer(data, dtype=">i2" if spec.big_endian else "<i2").astype(np.float32) / 32768.0
    else:
        pcm = _g711_table(spec.encoding)[np.frombuffer(data, dtype=np.uint8)]
    return pcm if spec.channels == 1 else pcm.reshape(-1, spec.channels).mean(axis=1)


def headerless_rate(spec: AudioSpec) -> int:
    """The declared rate of headerless audio.

    Raises:
        AudioError: none was declared.
    """
    if spec.rate_hz is None:
        raise AudioError(f"{spec.encoding} audio needs a sample rate")
    return spec.rate_hz


def decode_bytes(data: bytes, spec: AudioSpec = DETECT) -> tuple[np.ndarray, int]:
    """Decode a whole audio payload.

    Args:
        data: the encoded bytes.
        spec: their parsed content type (:data:`DETECT` recognises a container from its bytes).

    Returns:
        ``(samples, rate_hz)``: float32 mono samples in [-1, 1] and their rate.

    Raises:
        UnsupportedAudioType: an encoding the engine does not know.
        AudioError: headerless audio without a rate or cut mid-frame, undecodable or empty audio.
    """
    if not data:
        raise AudioError("the audio is empty")
    if spec.encoding in HEADERLESS:
        rate = headerless_rate(spec)
        if spec.encoding == "l16" and len(data) % frame_bytes(spec):
            raise AudioError(f"audio/l16 payload of {len(data)} bytes is not a whole number of "
                             f"{spec.channels}-channel frames")
        # G.711 has one byte per sample: a partial last frame is dropped.
        samples = unpack_headerless(data[: len(data) - len(data) % frame_bytes(spec)], spec)
    else:
        samples, rate = _decode_container(data, spec)
    if samples.size == 0:
        raise AudioError("the audio holds no samples")
    return samples.astype(np.float32, copy=False), int(rate)


#: Container encodings and the FFmpeg demuxer of each (None: probe the bytes).
CONTAINER_DEMUXERS: dict[str, str | None] = {
    "detect": None, "wav": "wav", "flac": "flac", "ogg": "ogg", "mp3": "mp3", "webm": "matroska",
}


def demuxer(spec: AudioSpec) -> str | None:
    """The FFmpeg demuxer of a container encoding (None: FFmpeg probes the bytes).

    Raises:
        UnsupportedAudioType: neither a container nor a headerless encoding the engine knows.
    """
    if spec.encoding not in CONTAINER_DEMUXERS:
        raise UnsupportedAudioType(f"unsupported audio encoding {spec.encoding!r}")
    return CONTAINER_DEMUXERS[spec.encoding]


def frame_to_mono(frame: av.AudioFrame) -> np.ndarray:
    """Turn a decoded PyAV frame into float32 mono samples in [-1, 1] (channels averaged)."""
    array = frame.to_ndarray()
    if array.dtype.kind == "i":
        array = array.astype(np.float32) / float(np.iinfo(array.dtype).max + 1)
    elif array.dtype.kind == "u":  # unsigned PCM (8-bit WAV) is centred on half its range
        half = float(np.iinfo(array.dtype).max + 1) / 2
        array = (array.astype(np.float32) - half) / half
    if frame.format.is_planar:
        return array.mean(axis=0, dtype=np.float32)
    return array.reshape(-1, len(frame.layout.channels)).mean(axis=1, dtype=np.float32)


def ffmpeg_error(exc: av.error.FFmpegError) -> AudioError:
    """The :class:`AudioError` for an FFmpeg failure, with FFmpeg's reason and no file-name noise."""
    reason = getattr(exc, "strerror", None) or str(exc)
    return AudioError(f"not decodable as audio ({reason})")


def _decode_container(data: bytes, spec: AudioSpec) -> tuple[np.ndarray, int]:
    demuxer(spec)  # refuse an unknown encoding; a whole file is probed, whatever its declared container
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.audio:
                raise AudioError("the file holds no audio stream")
            stream = container.streams.audio[0]
            rate = stream.rate or stream.codec_context.sample_rate
            chunks = [frame_to_mono(frame) for frame in container.decode(stream)]
    except av.error.FFmpegError as exc:
        raise ffmpeg_error(exc) from exc
    if not chunks:
        raise AudioError("the audio holds no samples")
    return np.concatenate(chunks).astype(np.float32), int(rate)


def resample(samples: np.ndarray | torch.Tensor, rate_hz: int, target_hz: int) -> torch.Tensor:
    """Resample to ``target_hz`` (a no-op when the rates match)."""
    tensor = torch.as_tensor(samples, dtype=torch.float32)
    if rate_hz == target_hz:
        return tensor
    check_rate(rate_hz)
    return torch.from_numpy(soxr.resample(tensor.numpy(), rate_hz, target_hz, quality=RESAMPLE_QUALITY))


def load_audio(path: Path, target_hz: int, spec: AudioSpec = DETECT) -> torch.Tensor:
    """Read a file and return float32 mono samples at ``target_hz``.

    Args:
        path: the file.
        target_hz: the rate to resample to.
        spec: the file's parsed content type (:data:`DETECT`: recognise its container).

    Raises:
        AudioError: unreadable file or undecodable audio.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise AudioError(f"cannot read file: {exc.strerror}") from exc
    samples, rate = decode_bytes(data, spec)
    return resample(samples, rate, target_hz)
