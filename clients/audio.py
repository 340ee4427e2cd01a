"""Audio files as a client sends them: the bytes, their content type, their duration, and PCM when readable.

The client never decodes compressed audio (the server does that); it only
needs each file's duration, to pace it in real time, and for the Transcribe
dialect and the load generator 16-bit mono PCM, which it reads from PCM WAV
and raw ``audio/l16`` files with the standard library alone. Content types and
WAV headers are read by the server's own parsers (:mod:`protocol.audio`,
:mod:`protocol.wav`).

Byte order: raw ``audio/l16`` is big-endian unless the content type says
``endianness=little-endian`` (RFC 2586 network order, and voxgate's engine
reads it so); WAV PCM and Transcribe's ``pcm`` are little-endian. :attr:`AudioFile.pcm`
is always little-endian.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from pathlib import Path

from clients.errors import BadInput
from protocol.audio import AudioType, Encoding, content_type_for_suffix, parse_content_type
from protocol.errors import VoxgateError
from protocol.wav import WavHeader, parse_wav_header


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


def _little_endian_pcm(data: bytes, *, big_endian: bool) -> bytes:
    """16-bit samples as little-endian bytes (swapping each byte pair does not depend on the machine's order)."""
    if not big_endian:
        return data
    samples = array("h", data)
    samples.byteswap()
    return samples.tobytes()


def read_wav_header(data: bytes) -> WavHeader:
    """The header of a whole WAV file (any codec: µ-law telephone WAVs included).

    Raises:
        BadInput: not a RIFF/WAVE file, a broken header, or no ``fmt ``/``data`` chunk.
    """
    try:
        header = parse_wav_header(data)
    except VoxgateError as exc:
        raise BadInput(exc.message) from exc
    if header is None:
        raise BadInput("WAV file without a fmt and a data chunk")
    return header


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
        content_type = content_type_for_suffix(path.suffix)
    if content_type is None:
        content_type = {b"RIFF": "audio/wav", b"fLaC": "audio/flac"}.get(data[:4])
    if content_type is None:
        raise BadInput(f"{path}: cannot tell the audio format from the name; pass --content-type, "
                       "e.g. 'audio/l16;rate=16000'")
    try:
        return _audio_file(path, data, content_type, _audio_type(content_type))
    except BadInput as exc:
        if exc.message.startswith(str(path)):
            raise
        raise BadInput(f"{path}: {exc.message}") from exc


def _audio_type(content_type: str) -> AudioType:
    """The parsed content type.

    Raises:
        BadInput: a malformed or unsupported one.
    """
    try:
        return parse_content_type(content_type)
    except VoxgateError as exc:
        raise BadInput(exc.message) from exc


def _audio_file(path: Path, data: bytes, content_type: str, audio_type: AudioType) -> AudioFile:
    if audio_type.encoding is Encoding.WAV:
        return _wav_file(path, data, content_type)
    if audio_type.encoding is Encoding.FLAC:
        return AudioFile(path, data, content_type, read_flac_duration(data))
    if audio_type.encoding.headerless:
        rate = audio_type.rate_hz  # parse_content_type gives every headerless type one
        frame_bytes = audio_type.frame_bytes
        if len(data) % frame_bytes:
            raise BadInput(f"{len(data)} bytes are not a whole number of {frame_bytes}-byte frames of {content_type}")
        pcm = None
        if audio_type.encoding is Encoding.L16 and audio_type.channels == 1:
            pcm = _little_endian_pcm(data, big_endian=audio_type.big_endian)
        return AudioFile(path, data, content_type, len(data) / frame_bytes / rate, pcm, rate if pcm else None)
    raise BadInput(f"cannot pace {audio_type.media_type} in real time: the client reads the duration of WAV, FLAC "
                   "and headerless audio/l16, audio/mulaw and audio/alaw only; convert the file to one of those")


def _wav_file(path: Path, data: bytes, content_type: str) -> AudioFile:
    header = read_wav_header(data)
    if header.byte_rate <= 0:
        raise BadInput(f"WAV header with {header.byte_rate} bytes/s: the duration cannot be read")
    data_bytes = header.data_bytes_in(len(data))
    pcm = None
    if header.is_pcm16 and header.channels == 1:
        samples = data[header.data_offset : header.data_offset + data_bytes - data_bytes % 2]
        pcm = _little_endian_pcm(samples, big_endian=False)
    return AudioFile(path, data, content_type, data_bytes / header.byte_rate, pcm,
                     header.sample_rate_hz if pcm is not None else None)


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
