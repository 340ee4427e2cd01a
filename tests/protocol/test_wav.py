"""RIFF/WAVE headers, read from a file's first bytes as they arrive."""

import io
import struct
import wave

import pytest

from protocol.errors import MalformedMessage
from protocol.wav import WavHeader, is_wav, parse_wav_header
from tests.conftest import FIXTURES


def riff(*chunks: bytes) -> bytes:
    body = b"WAVE" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def chunk(chunk_id: bytes, body: bytes, size: int | None = None) -> bytes:
    return chunk_id + struct.pack("<I", len(body) if size is None else size) + body + b"\0" * (len(body) & 1)


def fmt(tag: int = 1, channels: int = 1, rate: int = 16000, bits: int = 16, extra: bytes = b"") -> bytes:
    block = channels * bits // 8
    return chunk(b"fmt ", struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits) + extra)


def test_the_standard_library_writer_is_read_back() -> None:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(bytes(400))
    header = parse_wav_header(buf.getvalue())
    assert header == WavHeader(1, 2, 8000, 32000, 16, 44, 400)
    assert header.is_pcm16 and header.data_bytes_in(len(buf.getvalue())) == 400


def test_fixtures() -> None:
    hello = parse_wav_header((FIXTURES / "hello.wav").read_bytes())
    assert (hello.is_pcm16, hello.channels, hello.sample_rate_hz) == (True, 1, 16000)
    phone = parse_wav_header((FIXTURES / "phone.wav").read_bytes())  # µ-law telephone audio
    assert (phone.format_tag, phone.bits_per_sample, phone.sample_rate_hz, phone.is_pcm16) == (7, 8, 8000, False)


@pytest.mark.parametrize(("data", "expected"), [
    # chunks before fmt and between fmt and data are skipped, odd sizes padded
    (riff(chunk(b"LIST", b"abc"), fmt(), chunk(b"fact", b"1234"), chunk(b"data", bytes(6))),
     WavHeader(1, 1, 16000, 32000, 16, 12 + 12 + 24 + 12 + 8, 6)),
    # WAVE_FORMAT_EXTENSIBLE: the tag is the SubFormat GUID's first two bytes
    (riff(fmt(0xFFFE, extra=struct.pack("<HHI", 22, 16, 4) + struct.pack("<H", 1) + bytes(14)), chunk(b"data", b"")),
     WavHeader(1, 1, 16000, 32000, 16, 12 + 48 + 8, None)),
    # a live stream's writer leaves the data size open: 0 or 0xFFFFFFFF
    (riff(fmt(), chunk(b"data", bytes(4), size=0xFFFFFFFF)), WavHeader(1, 1, 16000, 32000, 16, 44, None)),
    (riff(fmt(rate=8000, bits=8, tag=7), chunk(b"data", bytes(4), size=0)), WavHeader(7, 1, 8000, 8000, 8, 44, None)),
])
def test_headers(data: bytes, expected: WavHeader) -> None:
    assert parse_wav_header(data) == expected


def test_a_header_is_read_once_its_bytes_reach_the_data_chunk() -> None:
    data = riff(chunk(b"LIST", bytes(30)), fmt(), chunk(b"data", bytes(100)))
    data_chunk = data.index(b"data")
    for cut in range(data_chunk + 8):
        assert parse_wav_header(data[:cut]) is None, cut
    assert parse_wav_header(data[:data_chunk + 8]) == parse_wav_header(data)


def test_the_data_size_is_cut_to_what_the_file_holds() -> None:
    header = parse_wav_header(riff(fmt(), chunk(b"data", bytes(10))))
    assert (header.data_bytes_in(44 + 10), header.data_bytes_in(44 + 4), header.data_bytes_in(20)) == (10, 4, 0)
    open_ended = parse_wav_header(riff(fmt(), chunk(b"data", b"", size=0)))
    assert open_ended.data_bytes_in(44 + 1000) == 1000


@pytest.mark.parametrize(("data", "message"), [
    (b"RIFF\0\0\0\0WAVX" + bytes(40), "not a WAV file"),
    (b"OggS" + bytes(40), "not a WAV file"),
    (riff(chunk(b"fmt ", bytes(8)), chunk(b"data", b"")), "WAV fmt chunk of 8 bytes is too short"),
    (riff(chunk(b"data", bytes(4)), fmt()), "WAV data chunk comes before its fmt chunk"),
    (riff(fmt(rate=0), chunk(b"data", b"")), "WAV header with rate 0 Hz and 1 channels"),
    (riff(fmt(channels=0), chunk(b"data", b"")), "0 channels"),
])
def test_broken_headers(data: bytes, message: str) -> None:
    with pytest.raises(MalformedMessage, match=message):
        parse_wav_header(data)


def test_is_wav_needs_the_riff_and_wave_marks() -> None:
    assert is_wav(riff()) and not is_wav(b"RIFF") and not is_wav(b"fLaC" + bytes(20))
