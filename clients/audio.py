"""Audio files as a client sends them: the bytes, their content type, their duration, and PCM when readable.

The client never decodes compressed audio (the server does that); it only
needs each file's duration, to pace it in real time, and for the Transcribe
dialect and the load generator 16-bit mono PCM, which it reads from PCM WAV
and raw ``audio/l16`` files with the standard library alone.

Byte order: raw ``audio/l16`` is big-endian unless the content type says
``endianness=little-endian`` (RFC 2586 network order, and voxgate's engine
reads it so); WAV PCM and Transcribe's ``pcm`` are little-endian. :attr:`AudioFile.pcm`
is always little-endian.
"""

from __future__ import annotations

import struct
from array import array
from dataclasses import dataclass
from pathlib import Path

from clients.errors import BadInput

#: Content types by file suffix (headerless ones with the rate voxgate's own CLI assumes).
CONTENT_TYPES = {".wav": "audio/wav", ".wave": "audio/wav", ".flac": "audio/flac", ".raw": "audio/l16;rate=16000",
                 ".pcm": "audio/l16;rate=16000", ".l16": "audio/l16;rate=16000", ".ulaw": "audio/mulaw;rate=8000",
                 ".mulaw": "audio/mulaw;rate=8000", ".alaw": "audio/alaw;rate=8000"}
_WAV_MIMES = ("audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave")
_HEADERLESS_BYTES = {"audio/l16": 2, "audio/mulaw": 1, "audio/alaw": 1, "audio/basic": 1}
_WAVE_FORMAT_PCM = 0x0001
_WAVE_FORMAT_EXTENSIBLE = 0xFFFE


@dataclass(frozen=True)
class AudioFile:
    """One audio file, ready to stream.

    Attributes:
        path: where it was read from.
        data: the file's bytes, as a Watson client sends them (the server decodes containers).
        content_type: the Watson content type of `data`, e.g. ``audio/wav`` or ``audio/l16;rate=16000``.
        duration_s: seconds of audio.
        pcm: the audio as 16-bit mono little-endian PCM, or None when the client cannot read it.
        sample_rate_hz: the rate of `pcm` (None with it).
    """

    path: Path
    data: bytes
    content_type: str
    duration_s: float
    pcm: bytes | None = None
    sample_rate_hz: int | None = None

    def require_pcm(self, purpose: str) -> tuple[bytes, int]:
        """`pcm` and its rate, for `purpose` (named in the error).

        Raises:
            BadInput: the file is not 16-bit mono PCM WAV or raw ``audio/l16``.
        """
        if self.pcm is None or self.sample_rate_hz is None:
            raise BadInput(f"{self.path}: {purpose} needs 16-bit mono PCM (a PCM WAV or a raw audio/l16 file); "
                           f"this is {self.content_type}")
        return self.pcm, self.sample_rate_hz


def parse_content_type(content_type: str) -> tuple[str, dict[str, str]]:
    """``"audio/l16; rate=8000"`` -> ``("audio/l16", {"rate": "8000"})``, tolerant of spaces and quotes.

    Raises:
        BadInput: a parameter without ``=``.
    """
    mime, *rest = [part.strip() for part in content_type.split(";")]
    params = {}
    for part in rest:
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep:
            raise BadInput(f"malformed content-type parameter {part!r} in {content_type!r}")
        params[key.strip().lower()] = value.strip().strip('"')
    return mime.lower(), params


def _int_param(params: dict[str, str], name: str, content_type: str, default: int | None = None) -> int:
    value = params.get(name)
    if value is None:
        if default is None:
            raise BadInput(f"content type {content_type!r} needs a {name} parameter, e.g. 'audio/l16;rate=16000'")
        return default
    try:
        number = int(value)
    except ValueError:
        raise BadInput(f"{name} must be an integer in {content_type!r}, got {value!r}") from None
    if number <= 0:
        raise BadInput(f"{name} must be positive in {content_type!r}, got {number}")
    return number


def _little_endian_pcm(data: bytes, *, big_endian: bool) -> bytes:
    """16-bit samples as little-endian bytes (swapping each byte pair does not depend on the machine's order)."""
    if not big_endian:
        return data
    samples = array("h", data)
    samples.byteswap()
    return samples.tobytes()


@dataclass(frozen=True)
class WavInfo:
    """What a WAV header says.

    Attributes:
        format_tag: 1 for PCM (``WAVE_FORMAT_EXTENSIBLE`` is resolved to its sub-format).
        channels, sample_rate_hz, byte_rate, bits_per_sample: from the ``fmt `` chunk.
        data_offset, data_bytes: where the samples lie in the file.
    """

    format_tag: int
    channels: int
    sample_rate_hz: int
    byte_rate: int
    bits_per_sample: int
    data_offset: int
    data_bytes: int


def read_wav_header(data: bytes) -> WavInfo:
    """Walk the RIFF chunks of a WAV file (any codec: µ-law telephone WAVs included).

    Raises:
        BadInput: not a RIFF/WAVE file, or no ``fmt ``/``data`` chunk.
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise BadInput("not a WAV file (no RIFF/WAVE header)")
    fmt: tuple[int, int, int, int, int] | None = None
    pos = 12
    while pos + 8 <= len(data):
        chunk_id = data[pos : pos + 4]
        (size,) = struct.unpack("<I", data[pos + 4 : pos + 8])
        body = pos + 8
        if chunk_id == b"fmt ":
            if size < 16:
                raise BadInput(f"WAV fmt chunk of {size} bytes is too short")
            tag, channels, rate, byte_rate, _, bits = struct.unpack("<HHIIHH", data[body : body + 16])
            if tag == _WAVE_FORMAT_EXTENSIBLE and size >= 26:
                # The sub-format GUID starts with the plain format tag (WAVEFORMATEXTENSIBLE).
                (tag,) = struct.unpack("<H", data[body + 24 : body + 26])
            fmt = (tag, channels, rate, byte_rate, bits)
        elif chunk_id == b"data":
            if fmt is None:
                raise BadInput("WAV data chunk comes before its fmt chunk")
            # A streamed WAV may carry a placeholder size (0 or 0xFFFFFFFF): the samples run to the end.
            available = len(data) - body
            data_bytes = available if size == 0 or size > available else size
            tag, channels, rate, byte_rate, bits = fmt
            if byte_rate <= 0 or rate <= 0 or channels <= 0:
                raise BadInput(f"WAV header with rate {rate} Hz, {channels} channels, {byte_rate} bytes/s")
            return WavInfo(tag, channels, rate, byte_rate, bits, body, data_bytes)
        pos = body + size + (size & 1)  # RIFF chunks are padded to an even size
    raise BadInput("WAV file without a fmt and a data chunk")


def read_flac_duration(data: bytes) -> float:
    """Seconds of a FLAC file, from its STREAMINFO block (sample rate and total samples).

    Raises:
        BadInput: not FLAC, or a stream that does not state its length.
    """
    # FLAC format: "fLaC", then metadata blocks; the first is STREAMINFO (type 0): 2+2+3+3 bytes of
    # block and frame sizes, then 20 bits sample rate, 3 bits channels-1, 5 bits bits-1, 36 bits samples.
    if data[:4] != b"fLaC" or len(data) < 26 or data[4] & 0x7F != 0:
        raise BadInput("not a FLAC file (no fLaC marker and STREAMINFO block)")
    packed = int.from_bytes(data[18:26], "big")
    rate, samples = packed >> 44, packed & ((1 << 36) - 1)
    if rate == 0 or samples == 0:
        raise BadInput("the FLAC stream does not state its length, so it cannot be paced in real time")
    return samples / rate


def read_audio(path: Path, content_type: str | None = None) -> AudioFile:
    """Read an audio file for streaming.

    Args:
        path: the file.
        content_type: its content type; by default from the suffix or the file's magic bytes.

    Raises:
        BadInput: unreadable file, unknown format, a format whose duration the client cannot read
            (only WAV, FLAC and headerless l16/mulaw/alaw can be paced), or an empty file.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BadInput(f"{path}: cannot read file: {exc.strerror or exc}") from exc
    if not data:
        raise BadInput(f"{path}: the file is empty")
    if content_type is None:
        content_type = CONTENT_TYPES.get(path.suffix.lower())
    if content_type is None:
        content_type = {b"RIFF": "audio/wav", b"fLaC": "audio/flac"}.get(data[:4])
    if content_type is None:
        raise BadInput(f"{path}: cannot tell the audio format from the name; pass --content-type, "
                       "e.g. 'audio/l16;rate=16000'")
    try:
        mime, params = parse_content_type(content_type)
        return _audio_file(path, data, content_type, mime, params)
    except BadInput as exc:
        if exc.message.startswith(str(path)):
            raise
        raise BadInput(f"{path}: {exc.message}") from exc


def _audio_file(path: Path, data: bytes, content_type: str, mime: str, params: dict[str, str]) -> AudioFile:
    if mime in _WAV_MIMES:
        info = read_wav_header(data)
        duration = info.data_bytes / info.byte_rate
        pcm = None
        if info.format_tag == _WAVE_FORMAT_PCM and info.bits_per_sample == 16 and info.channels == 1:
            samples = data[info.data_offset : info.data_offset + info.data_bytes - info.data_bytes % 2]
            pcm = _little_endian_pcm(samples, big_endian=False)
        return AudioFile(path, data, content_type, duration, pcm, info.sample_rate_hz if pcm is not None else None)
    if mime == "audio/flac":
        return AudioFile(path, data, content_type, read_flac_duration(data))
    if mime in _HEADERLESS_BYTES:
        rate = 8000 if mime == "audio/basic" else _int_param(params, "rate", content_type)
        channels = _int_param(params, "channels", content_type, default=1)
        frame_bytes = _HEADERLESS_BYTES[mime] * channels
        if len(data) % frame_bytes:
            raise BadInput(f"{len(data)} bytes are not a whole number of {frame_bytes}-byte frames of {content_type}")
        pcm = None
        if mime == "audio/l16" and channels == 1:
            endianness = params.get("endianness", "big-endian").lower()
            if endianness not in ("big-endian", "little-endian"):
                raise BadInput(f"endianness must be big-endian or little-endian, got {endianness!r}")
            pcm = _little_endian_pcm(data, big_endian=endianness == "big-endian")
        return AudioFile(path, data, content_type, len(data) / frame_bytes / rate, pcm, rate if pcm else None)
    raise BadInput(f"cannot pace {mime} in real time: the client reads the duration of WAV, FLAC and headerless "
                   "audio/l16, audio/mulaw and audio/alaw only; convert the file to one of those")


def pcm_content_type(sample_rate_hz: int) -> str:
    """The Watson content type of :attr:`AudioFile.pcm`: little-endian 16-bit mono."""
    return f"audio/l16;rate={sample_rate_hz};endianness=little-endian"


def loop_pcm(pcm: bytes, sample_rate_hz: int, duration_s: float) -> bytes:
    """`pcm` repeated or cut to exactly `duration_s` seconds (whole 16-bit samples).

    Raises:
        BadInput: `pcm` holds no sample.
    """
    if len(pcm) < 2:
        raise BadInput("the audio holds no samples")
    pcm = pcm[: len(pcm) - len(pcm) % 2]
    total = round(duration_s * sample_rate_hz) * 2
    repeats = -(-total // len(pcm))
    return (pcm * repeats)[:total]
