import io

import av
import numpy as np
import pytest
import soundfile

from engine.audio import (CONTAINER_DEMUXERS, DETECT, HEADERLESS, AudioError, AudioFormat, UnsupportedAudioType,
                          decode_bytes, load_audio, resample)
from protocol.audio import Encoding, parse_content_type


def tone(rate: int = 16000, seconds: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)


def encode(samples: np.ndarray, rate: int, fmt: str, subtype: str | None = None) -> bytes:
    buf = io.BytesIO()
    soundfile.write(buf, samples, rate, format=fmt, subtype=subtype)
    return buf.getvalue()


@pytest.mark.parametrize(("fmt", "subtype"), [("WAV", "PCM_16"), ("FLAC", "PCM_16"), ("WAV", "FLOAT")])
def test_containers_decode_to_the_written_samples(fmt: str, subtype: str) -> None:
    x = tone()
    samples, rate = decode_bytes(encode(x, 16000, fmt, subtype))
    assert rate == 16000
    assert np.abs(samples - x).max() < 1e-3


def test_stereo_is_mixed_to_mono() -> None:
    x = tone()
    stereo = np.stack([x, np.zeros_like(x)], axis=1)
    samples, _ = decode_bytes(encode(stereo, 16000, "WAV", "PCM_16"), parse_content_type("audio/wav"))
    assert np.abs(samples - x / 2).max() < 1e-3


@pytest.mark.parametrize("endianness", ["big-endian", "little-endian"])
def test_l16_in_both_byte_orders(endianness: str) -> None:
    x = tone(8000)
    pcm = (x * 32767).astype(">i2" if endianness == "big-endian" else "<i2").tobytes()
    samples, rate = decode_bytes(pcm, parse_content_type(f"audio/l16; rate=8000; endianness={endianness}"))
    assert rate == 8000
    assert np.abs(samples - x).max() < 1e-3


def test_l16_two_channels() -> None:
    pcm = np.array([1000, 3000, -1000, -3000], dtype=">i2").tobytes()
    samples, _ = decode_bytes(pcm, parse_content_type("audio/l16;rate=16000;channels=2"))
    assert np.allclose(samples * 32768, [2000, -2000])


def ffmpeg_g711(x: np.ndarray, kind: str) -> tuple[bytes, np.ndarray]:
    """``x`` encoded by FFmpeg's G.711 ``kind`` (``mulaw``/``alaw``), and FFmpeg's own decoding of those bytes."""
    buf = io.BytesIO()
    with av.open(buf, "w", format=kind) as out:
        stream = out.add_stream(f"pcm_{kind}", rate=8000, layout="mono")
        frame = av.AudioFrame.from_ndarray((x * 32767).astype(np.int16)[None], format="s16", layout="mono")
        frame.sample_rate = 8000
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    codes = buf.getvalue()
    with av.open(io.BytesIO(codes), format=kind, options={"sample_rate": "8000"}) as src:
        reference = np.concatenate([f.to_ndarray()[0] for f in src.decode(audio=0)]).astype(np.float32) / 32768
    return codes, reference


@pytest.mark.parametrize("mime", ["audio/mulaw;rate=8000", "audio/basic"])
def test_mulaw_matches_ffmpeg(mime: str) -> None:
    # Real G.711 mu-law bytes (as telephony sends them), encoded and decoded by FFmpeg for reference.
    x = tone(8000)
    codes, reference = ffmpeg_g711(x, "mulaw")
    samples, rate = decode_bytes(codes, parse_content_type(mime))
    assert rate == 8000
    np.testing.assert_allclose(samples, reference, atol=1e-6)
    assert np.abs(samples - x).max() < 0.02


def test_basic_is_8khz_mulaw() -> None:
    samples, rate = decode_bytes(bytes([0xFF, 0x7F, 0x00, 0x80] * 50), parse_content_type("audio/basic"))
    assert rate == 8000 and samples.size == 200


def test_alaw_matches_ffmpeg() -> None:
    # Encode with FFmpeg's G.711 A-law, then compare our table with FFmpeg's own decoding.
    raw, reference = ffmpeg_g711(tone(8000), "alaw")
    ours, _ = decode_bytes(raw, parse_content_type("audio/alaw;rate=8000"))
    assert ours.shape == reference.shape
    assert np.abs(ours - reference).max() < 1e-6


# (Bad content types are refused by their parser before the engine sees them: tests/protocol/test_audio.py.)
@pytest.mark.parametrize(
    ("data", "spec", "error", "message"),
    [
        (b"", AudioFormat("wav"), AudioError, "empty"),
        (b"\x00\x01" * 100, AudioFormat("l16"), AudioError, "needs a sample rate"),
        (b"\x00\x01\x02", AudioFormat("l16", 16000), AudioError, "whole number"),
        (b"\x00" * 200, AudioFormat("mp4"), UnsupportedAudioType, "unsupported audio encoding"),
        (b"this is not audio at all" * 20, AudioFormat("flac"), AudioError, "not decodable"),
    ],
)
def test_bad_audio_gets_a_specific_error(data: bytes, spec: AudioFormat, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        decode_bytes(data, spec)


def test_every_encoding_the_protocol_names_is_one_the_engine_decodes() -> None:
    assert {e.value for e in Encoding} == set(HEADERLESS) | set(CONTAINER_DEMUXERS)
    assert {e.value for e in Encoding if e.headerless} == set(HEADERLESS)
    assert parse_content_type(None).encoding == DETECT.encoding


def test_a_parsed_content_type_is_what_the_engine_takes() -> None:
    x = tone(8000)
    pcm = (x * 32767).astype("<i2").tobytes()
    spec = parse_content_type('audio/L16; rate="8000"; endianness=little-endian')
    assert np.array_equal(decode_bytes(pcm, spec)[0], decode_bytes(pcm, AudioFormat("l16", 8000, big_endian=False))[0])


def test_resample_and_load(tmp_path) -> None:
    path = tmp_path / "a.wav"
    soundfile.write(path, tone(48000), 48000)
    samples = load_audio(path, 16000)
    assert samples.shape == (8000,)
    assert resample(np.ones(10, dtype=np.float32), 8000, 8000).shape == (10,)
    with pytest.raises(AudioError, match="cannot read file"):
        load_audio(tmp_path / "missing.wav", 16000)
