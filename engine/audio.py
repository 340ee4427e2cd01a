"""Decode audio into float32 mono at the model's rate.

Containers and codecs (WAV, FLAC, Ogg/Opus, MP3, WebM, ...) go through PyAV
(FFmpeg); headerless formats (``audio/l16``, ``audio/mulaw``, ``audio/alaw``,
``audio/basic``) are unpacked with numpy and the G.711 tables of
``torchaudio.functional``. Resampling uses libsoxr (``soxr``, its "HQ" quality): its cost is
linear in the samples and its memory bounded for any pair of rates (a polyphase sinc kernel, as
``torchaudio.functional.resample`` builds, has one phase per output step of the reduced ratio:
about 1 GB for 16001 -> 16000 Hz), and its streaming form gives exactly the samples of the
whole signal (:mod:`engine.audiostream`). Rates above :data:`MAX_RATE_HZ` are refused.
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
import soxr
import torch


class AudioError(ValueError):
    """Audio that cannot be decoded or used: the message says what was wrong."""


class UnsupportedAudioType(AudioError):
    """A content type that voxgate does not decode."""


@dataclass(frozen=True)
class AudioFormat:
    """A parsed audio content type.

    Attributes:
        mime: lower-case base type, e.g. ``audio/l16``.
        rate_hz: sample rate for headerless formats.
        channels: channel count for headerless formats.
        big_endian: byte order of ``audio/l16`` (network order by default).
    """

    mime: str
    rate_hz: int | None = None
    channels: int = 1
    big_endian: bool = True
    params: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, content_type: str) -> AudioFormat:
        """Parse ``audio/l16; rate=16000; channels=1; endianness=little-endian``.

        Raises:
            AudioError: on a malformed parameter.
        """
        mime, *rest = [p.strip() for p in content_type.split(";")]
        params: dict[str, str] = {}
        for part in rest:
            if not part:
                continue
            key, sep, value = part.partition("=")
            if not sep:
                raise AudioError(f"malformed content-type parameter {part!r} in {content_type!r}")
            params[key.strip().lower()] = value.strip().strip('"')
        try:
            rate = int(params["rate"]) if "rate" in params else None
            channels = int(params.get("channels", "1"))
        except ValueError as exc:
            raise AudioError(f"rate and channels must be integers in {content_type!r}") from exc
        if rate is not None and rate <= 0 or channels <= 0:
            raise AudioError(f"rate and channels must be positive in {content_type!r}")
        if rate is not None:
            check_rate(rate)
        endianness = params.get("endianness", "big-endian").lower()
        if endianness not in ("big-endian", "little-endian"):
            raise AudioError(f"endianness must be big-endian or little-endian, got {endianness!r}")
        return cls(mime.lower(), rate, channels, endianness == "big-endian", params)


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


HEADERLESS = ("audio/l16", "audio/mulaw", "audio/alaw", "audio/basic")


@functools.cache
def _g711_table(mime: str) -> np.ndarray:
    """The float32 sample of each of the 256 codes: decoding is a table look-up (cheap per stream chunk)."""
    codes = torch.arange(256)
    if mime == "audio/alaw":
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


def unpack_headerless(data: bytes, fmt: AudioFormat) -> np.ndarray:
    """Unpack whole frames of headerless audio (``audio/l16``, ``mulaw``, ``alaw``, ``basic``).

    Args:
        data: a whole number of frames (``channels`` samples of 2 bytes for
            l16, 1 byte for G.711); a stream decoder keeps any partial frame.
        fmt: the parsed content type.

    Returns:
        float32 mono samples in [-1, 1], channels averaged.
    """
    if fmt.mime == "audio/l16":
        pcm = np.frombuffer(data, dtype=">i2" if fmt.big_endian else "<i2").astype(np.float32) / 32768.0
    else:
        pcm = _g711_table(fmt.mime)[np.frombuffer(data, dtype=np.uint8)]
    return pcm if fmt.channels == 1 else pcm.reshape(-1, fmt.channels).mean(axis=1)


def decode_bytes(data: bytes, content_type: str | None = None) -> tuple[np.ndarray, int]:
    """Decode a whole audio payload.

    Args:
        data: the encoded bytes.
        content_type: MIME type with parameters; ``None`` or
            ``application/octet-stream`` auto-detects a container.

    Returns:
        ``(samples, rate_hz)``: float32 mono samples in [-1, 1] and their rate.

    Raises:
        AudioError: unsupported type, missing rate, undecodable or empty audio.
    """
    fmt = AudioFormat.parse(content_type) if content_type else AudioFormat("application/octet-stream")
    if not data:
        raise AudioError("the audio is empty")
    if fmt.mime in ("audio/mulaw", "audio/alaw", "audio/l16") and fmt.rate_hz is None:
        raise AudioError(f"{fmt.mime} needs a rate parameter, e.g. '{fmt.mime};rate=8000'")
    if fmt.mime == "audio/l16":
        if len(data) % (2 * fmt.channels):
            raise AudioError(f"audio/l16 payload of {len(data)} bytes is not a whole number of {fmt.channels}-channel frames")
        samples, rate = unpack_headerless(data, fmt), fmt.rate_hz
    elif fmt.mime in ("audio/mulaw", "audio/alaw", "audio/basic"):
        samples, rate = unpack_headerless(data[: len(data) // fmt.channels * fmt.channels], fmt), fmt.rate_hz or 8000
    else:
        samples, rate = _decode_container(data, fmt)
    if samples.size == 0:
        raise AudioError("the audio holds no samples")
    return samples.astype(np.float32, copy=False), int(rate)


# Container types and the FFmpeg demuxer each names (None: probe the bytes). Watson's audio/opus is Ogg Opus.
CONTAINER_DEMUXERS: dict[str, str | None] = {
    "application/octet-stream": None, "audio/wav": "wav", "audio/x-wav": "wav", "audio/wave": "wav",
    "audio/flac": "flac", "audio/x-flac": "flac", "audio/ogg": "ogg", "audio/opus": "ogg",
    "audio/mp3": "mp3", "audio/mpeg": "mp3", "audio/webm": "matroska",
}


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


def _decode_container(data: bytes, fmt: AudioFormat) -> tuple[np.ndarray, int]:
    if fmt.mime not in CONTAINER_DEMUXERS:
        raise UnsupportedAudioType(f"unsupported audio type {fmt.mime!r}")
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


def content_type_for_path(path: Path) -> str | None:
    """Guess a content type from a file name; ``None`` lets the decoder probe."""
    suffix = path.suffix.lower()
    return {".l16": "audio/l16;rate=16000", ".raw": "audio/l16;rate=16000", ".pcm": "audio/l16;rate=16000",
            ".ulaw": "audio/mulaw;rate=8000", ".mulaw": "audio/mulaw;rate=8000", ".alaw": "audio/alaw;rate=8000",
            ".au": None}.get(suffix)


def resample(samples: np.ndarray | torch.Tensor, rate_hz: int, target_hz: int) -> torch.Tensor:
    """Resample to ``target_hz`` (a no-op when the rates match)."""
    tensor = torch.as_tensor(samples, dtype=torch.float32)
    if rate_hz == target_hz:
        return tensor
    check_rate(rate_hz)
    return torch.from_numpy(soxr.resample(tensor.numpy(), rate_hz, target_hz, quality=RESAMPLE_QUALITY))


def load_audio(path: Path, target_hz: int, content_type: str | None = None) -> torch.Tensor:
    """Read a file and return float32 mono samples at ``target_hz``.

    Raises:
        AudioError: unreadable file or undecodable audio.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise AudioError(f"cannot read file: {exc.strerror}") from exc
    samples, rate = decode_bytes(data, content_type or content_type_for_path(Path(path)))
    return resample(samples, rate, target_hz)
