"""Audio files as the client reads them: content types, durations, PCM, looping."""

import struct
import wave
from array import array
from pathlib import Path

import pytest

from clients.audio import loop_pcm, pcm_content_type, read_audio, read_wav_header
from clients.errors import BadInput
from tests.conftest import FIXTURES


def _wav(path: Path, samples: list[int], rate: int = 16000) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(array("h", samples).tobytes())
    return path


def test_pcm_wav(tmp_path: Path) -> None:
    audio = read_audio(_wav(tmp_path / "a.wav", [1, -2, 300, 32767], rate=8000))
    assert audio.content_type == "audio/wav"
    assert audio.duration_s == pytest.approx(4 / 8000)
    assert audio.sample_rate_hz == 8000
    assert array("h", audio.pcm).tolist() == [1, -2, 300, 32767]
    assert audio.data[:4] == b"RIFF"  # Watson gets the container itself


def test_shipped_fixtures() -> None:
    wav = read_audio(FIXTURES / "hello.wav")
    assert wav.duration_s == pytest.approx(1.98375) and wav.sample_rate_hz == 16000
    flac = read_audio(FIXTURES / "hello.flac")
    assert (flac.content_type, flac.pcm) == ("audio/flac", None)
    assert flac.duration_s == pytest.approx(1.9554375)  # STREAMINFO: 31287 samples at 16 kHz
    phone = read_audio(FIXTURES / "phone.wav")  # µ-law: a duration, but no PCM for the client
    assert phone.duration_s == pytest.approx(2.8465) and phone.pcm is None
    with pytest.raises(BadInput, match="16-bit mono PCM"):
        phone.require_pcm("the transcribe protocol")


def test_raw_l16_is_big_endian_unless_said_otherwise(tmp_path: Path) -> None:
    raw = tmp_path / "a.raw"
    raw.write_bytes(struct.pack(">3h", 1, -2, 258))
    big = read_audio(raw)
    assert big.content_type == "audio/l16;rate=16000"
    assert struct.unpack("<3h", big.pcm) == (1, -2, 258)
    little = read_audio(raw, "audio/l16; rate=8000; endianness=little-endian")
    assert little.pcm == raw.read_bytes() and little.sample_rate_hz == 8000
    assert little.duration_s == pytest.approx(3 / 8000)
    stereo = read_audio(tmp_path / "a.raw", "audio/l16;rate=8000;channels=3")
    assert stereo.pcm is None and stereo.duration_s == pytest.approx(1 / 8000)


def test_wav_extensible_and_streamed_sizes() -> None:
    # WAVE_FORMAT_EXTENSIBLE with a PCM sub-format, and a streamed data chunk of placeholder size.
    fmt = struct.pack("<HHIIHH", 0xFFFE, 1, 16000, 32000, 2, 16) + struct.pack("<HHI", 22, 16, 4) + \
        struct.pack("<H", 1) + bytes(14)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"LIST" + struct.pack("<I", 3) + b"abc\x00" + \
        b"data" + struct.pack("<I", 0xFFFFFFFF) + bytes(640)
    data = b"RIFF" + struct.pack("<I", 0) + body
    info = read_wav_header(data)
    assert (info.format_tag, info.sample_rate_hz, info.data_bytes, info.data_bytes_in(len(data))) == (1, 16000, None, 640)


@pytest.mark.parametrize("name,data,content_type,match", [
    ("missing.wav", None, None, "cannot read file"),
    ("empty.wav", b"", None, "empty"),
    ("a.mp3", b"ID3...", None, "cannot pace audio/mp3"),
    ("a.raw", b"\x00\x01", "audio/x-foo", "unsupported audio type 'audio/x-foo'"),
    ("a.wav", b"RIFF\x00\x00\x00\x00WAVEfmt \x08\x00\x00\x00", None, "fmt chunk of 8 bytes is too short"),
    ("noext", b"\x00\x01", None, "pass --content-type"),
    ("a.wav", b"RIFF\x00\x00\x00\x00WAVEjunk", None, "without a fmt"),
    ("a.flac", b"fLaC" + bytes(30), None, "does not state its length"),
    ("a.raw", b"\x00\x01\x02", None, "whole number"),
    ("a.raw", b"\x00\x01", "audio/l16", "needs a rate"),
    ("a.raw", b"\x00\x01", "audio/l16;rate=fast", "rate must be an integer"),
    ("a.raw", b"\x00\x01", "audio/l16;rate", "malformed"),
])
def test_bad_files(tmp_path: Path, name: str, data: bytes | None, content_type: str | None, match: str) -> None:
    path = tmp_path / name
    if data is not None:
        path.write_bytes(data)
    if name == "a.mp3":
        content_type = "audio/mp3"
    with pytest.raises(BadInput, match=match) as info:
        read_audio(path, content_type)
    assert str(path) in info.value.message


def test_content_types() -> None:
    # (The parser itself: tests/protocol/test_audio.py.)
    assert read_audio(FIXTURES / "hello.raw", 'Audio/L16; rate="8000" ;channels=1').sample_rate_hz == 8000
    assert pcm_content_type(16000) == "audio/l16;rate=16000;endianness=little-endian"


def test_loop_pcm() -> None:
    pcm = array("h", [1, 2, 3]).tobytes()
    assert array("h", loop_pcm(pcm, 4, 2.0)).tolist() == [1, 2, 3, 1, 2, 3, 1, 2]
    assert array("h", loop_pcm(pcm, 4, 0.5)).tolist() == [1, 2]
    with pytest.raises(BadInput, match="no samples"):
        loop_pcm(b"\x00", 16000, 1.0)
