"""RIFF/WAVE headers: what a WAV file's ``fmt `` chunk says and where its ``data`` chunk lies.

One reader for the clients (a file's duration and PCM) and the server's streaming decoder (16-bit
PCM WAV goes through numpy, not FFmpeg). Sans-I/O: :func:`parse_wav_header` takes the bytes so far
and answers None until they reach the ``data`` chunk, so a stream can call it as bytes arrive.

Layout (Microsoft's RIFF spec and WAVEFORMATEX): ``RIFF`` size ``WAVE``, then chunks of a 4-byte id,
a little-endian 32-bit size and a body padded to an even length. ``fmt `` holds the format tag,
channels, sample rate, byte rate, block align and bits per sample; ``WAVE_FORMAT_EXTENSIBLE`` carries
the real tag at the start of its SubFormat GUID, 24 bytes into the body.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from protocol.errors import MalformedMessage

WAVE_FORMAT_PCM = 0x0001
WAVE_FORMAT_EXTENSIBLE = 0xFFFE
#: A ``data`` size that a live stream's writer puts when it does not know the length yet.
_UNKNOWN_SIZES = (0, 0xFFFFFFFF)


@dataclass(frozen=True)
class WavHeader:
    """What a WAV header says.

    Attributes:
        format_tag: 1 for PCM (``WAVE_FORMAT_EXTENSIBLE`` is resolved to its sub-format).
        channels, sample_rate_hz, byte_rate, bits_per_sample: from the ``fmt `` chunk.
        data_offset: where the samples start in the file.
        data_bytes: the ``data`` chunk's size; None when the writer left it open (0 or 0xFFFFFFFF: the samples
            run to the end of the file).
    """

    format_tag: int
    channels: int
    sample_rate_hz: int
    byte_rate: int
    bits_per_sample: int
    data_offset: int
    data_bytes: int | None

    @property
    def is_pcm16(self) -> bool:
        """Whether the samples are 16-bit linear PCM (little-endian, as WAV stores them)."""
        return self.format_tag == WAVE_FORMAT_PCM and self.bits_per_sample == 16

    def data_bytes_in(self, file_bytes: int) -> int:
        """Bytes of samples in a file of ``file_bytes``: the chunk's size, cut to what the file holds."""
        available = max(0, file_bytes - self.data_offset)
        return available if self.data_bytes is None else min(self.data_bytes, available)


def is_wav(head: bytes) -> bool:
    """Whether bytes start like a WAV file (``RIFF`` .... ``WAVE``)."""
    return len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WAVE"


def parse_wav_header(head: bytes) -> WavHeader | None:
    """Read the header of a WAV file from its first bytes (any codec: µ-law telephone WAVs too).

    Args:
        head: the file's first bytes; the whole file will do.

    Returns:
        The header, or None while ``head`` ends before the ``data`` chunk (or inside the ``fmt `` chunk).

    Raises:
        MalformedMessage: not a RIFF/WAVE file, a ``fmt `` chunk under 16 bytes, a ``data`` chunk before the
            ``fmt `` chunk, or a zero sample rate or channel count.
    """
    if len(head) >= 12 and not is_wav(head):
        raise MalformedMessage("not a WAV file (no RIFF/WAVE header)")
    fmt: tuple[int, int, int, int, int] | None = None
    pos = 12
    while pos + 8 <= len(head):
        chunk_id = head[pos:pos + 4]
        (size,) = struct.unpack_from("<I", head, pos + 4)
        body = pos + 8
        if chunk_id == b"fmt ":
            if size < 16:
                raise MalformedMessage(f"WAV fmt chunk of {size} bytes is too short")
            if body + size > len(head):
                return None
            fmt = _format(head, body, size)
        elif chunk_id == b"data":
            if fmt is None:
                raise MalformedMessage("WAV data chunk comes before its fmt chunk")
            tag, channels, rate, byte_rate, bits = fmt
            return WavHeader(tag, channels, rate, byte_rate, bits, body, None if size in _UNKNOWN_SIZES else size)
        pos = body + size + (size & 1)  # RIFF chunks are padded to an even size
    return None


def _format(head: bytes, body: int, size: int) -> tuple[int, int, int, int, int]:
    """Tag, channels, rate, byte rate and bits of a ``fmt `` chunk body (WAVEFORMATEX).

    Raises:
        MalformedMessage: a zero rate or channel count.
    """
    tag, channels, rate, byte_rate, _block_align, bits = struct.unpack_from("<HHIIHH", head, body)
    if tag == WAVE_FORMAT_EXTENSIBLE and size >= 26:
        # The SubFormat GUID starts with the plain format tag (WAVEFORMATEXTENSIBLE).
        (tag,) = struct.unpack_from("<H", head, body + 24)
    if rate <= 0 or channels <= 0:
        raise MalformedMessage(f"WAV header with rate {rate} Hz and {channels} channels")
    return tag, channels, rate, byte_rate, bits
