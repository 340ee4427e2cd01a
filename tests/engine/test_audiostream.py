"""StreamDecoder: a stream cut anywhere decodes to the samples of the whole file, errors are AudioError."""

import gc
import io
import itertools
import random
import threading
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile
import torch

from engine.audio import AudioError, AudioFormat, UnsupportedAudioType, decode_bytes, resample
from engine.audiostream import THREAD_NAME, StreamDecoder
from protocol.audio import parse_content_type
from protocol.wav import parse_wav_header

pytestmark = pytest.mark.timeout(120)

FIXTURES = Path(__file__).parents[1] / "fixtures"


def signal(rate: int, seconds: float = 0.5, channels: int = 1) -> np.ndarray:
    """A tone plus noise, so that codecs and resampling have something to get wrong."""
    rng = np.random.default_rng(rate)
    t = np.arange(int(rate * seconds)) / rate
    x = (0.4 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
    return x if channels == 1 else np.stack([x * (c + 1) / channels for c in range(channels)], axis=1)


def encode(samples: np.ndarray, rate: int, fmt: str, subtype: str | None = None) -> bytes:
    buf = io.BytesIO()
    soundfile.write(buf, samples, rate, format=fmt, subtype=subtype)
    return buf.getvalue()


def encode_webm(samples: np.ndarray, rate: int = 48000) -> bytes:
    buf = io.BytesIO()
    with av.open(buf, "w", format="webm") as out:
        stream = out.add_stream("libopus", rate=rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(samples[None], format="flt", layout="mono")
        frame.sample_rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    return buf.getvalue()


def open_decoder(content_type: str | None, *, target_rate_hz: int) -> StreamDecoder:
    """A decoder as the server opens one: the content type parsed by protocol/, WAV headers read by it."""
    return StreamDecoder(parse_content_type(content_type), target_rate_hz=target_rate_hz,
                         read_wav_header=parse_wav_header)


def stream(data: bytes, content_type: str | None, sizes: list[int] | int, target_rate_hz: int = 16000,
           ) -> torch.Tensor:
    """Feed ``data`` in chunks of the given sizes (cycled), then finish; all samples out."""
    decoder = open_decoder(content_type, target_rate_hz=target_rate_hz)
    cycle = itertools.cycle([sizes] if isinstance(sizes, int) else sizes)
    out, pos = [], 0
    while pos < len(data):
        size = next(cycle)
        out.append(decoder.feed(data[pos:pos + size]))
        pos += size
    out.append(decoder.finish())
    assert decoder.bytes_in == len(data)
    assert all(o.dtype == torch.float32 and o.dim() == 1 for o in out)
    return torch.cat(out)


def whole(data: bytes, content_type: str | None = None, target_rate_hz: int = 16000) -> torch.Tensor:
    samples, rate = decode_bytes(data, parse_content_type(content_type))
    return resample(samples, rate, target_rate_hz)


def random_sizes(seed: int, n: int = 40) -> list[int]:
    rng = random.Random(seed)
    return [rng.choice([1, 2, 3, 5, 17, 100, 333, 1000, 4096]) for _ in range(n)]


def worker_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == THREAD_NAME]


# Headerless audio


@pytest.mark.parametrize("endianness", ["big-endian", "little-endian"])
@pytest.mark.parametrize("sizes", [[1], [3], [7, 1, 2], [1601]])
def test_l16_in_both_byte_orders_cut_at_any_byte(endianness: str, sizes: list[int]) -> None:
    pcm = (signal(16000) * 32767).astype(">i2" if endianness == "big-endian" else "<i2").tobytes()
    content_type = f"audio/l16;rate=16000;endianness={endianness}"
    assert torch.equal(stream(pcm, content_type, sizes), whole(pcm, content_type))


def test_l16_is_big_endian_unless_told() -> None:
    pcm = np.array([256, -2], dtype=">i2").tobytes()
    assert torch.equal(stream(pcm, "audio/l16;rate=16000", 1) * 32768, torch.tensor([256.0, -2.0]))


def test_l16_stereo_waits_for_whole_frames() -> None:
    decoder = open_decoder("audio/l16;rate=16000;channels=2", target_rate_hz=16000)
    pcm = np.array([1000, 3000, -1000, -3000], dtype=">i2").tobytes()
    assert decoder.feed(pcm[:3]).numel() == 0  # one sample and a half: no whole frame yet
    assert torch.equal(decoder.feed(pcm[3:5]) * 32768, torch.tensor([2000.0]))
    assert torch.equal(decoder.feed(pcm[5:]) * 32768, torch.tensor([-2000.0]))
    assert decoder.finish().numel() == 0
    assert decoder.source_rate_hz == 16000


def test_the_l16_fixture_streams_like_the_whole_file() -> None:
    raw = (FIXTURES / "hello.raw").read_bytes()  # big-endian l16 at 16 kHz
    assert torch.equal(stream(raw, "audio/l16;rate=16000", [3199, 3201]), whole(raw, "audio/l16;rate=16000"))


@pytest.mark.parametrize("content_type", ["audio/mulaw;rate=8000", "audio/alaw;rate=8000", "audio/basic",
                                          "audio/mulaw;rate=8000;channels=2"])
def test_g711_streams_like_decode_bytes(content_type: str) -> None:
    codes = bytes(random.Random(0).randrange(256) for _ in range(1601))
    assert torch.equal(stream(codes, content_type, [1, 160, 7], 8000), whole(codes, content_type, 8000))


# Containers


CONTAINERS = {
    "wav-16k": lambda: (encode(signal(16000), 16000, "WAV", "PCM_16"), "audio/wav"),
    "wav-44k-stereo": lambda: (encode(signal(44100, channels=2), 44100, "WAV", "PCM_16"), "audio/wav"),
    "wavex-3ch": lambda: (encode(signal(16000, channels=3), 16000, "WAVEX", "PCM_16"), "audio/wav"),
    "wav-24bit": lambda: (encode(signal(16000), 16000, "WAV", "PCM_24"), "audio/x-wav"),
    "wav-float": lambda: (encode(signal(22050), 22050, "WAV", "FLOAT"), None),
    "flac-16k": lambda: (encode(signal(16000), 16000, "FLAC", "PCM_16"), "audio/flac"),
    "flac-44k-stereo": lambda: (encode(signal(44100, channels=2), 44100, "FLAC", "PCM_16"), "audio/flac"),
    "flac-probed": lambda: (encode(signal(16000), 16000, "FLAC", "PCM_16"), "application/octet-stream"),
    "ogg-opus": lambda: (encode(signal(48000), 48000, "OGG", "OPUS"), "audio/ogg;codecs=opus"),
    "opus": lambda: (encode(signal(48000), 48000, "OGG", "OPUS"), "audio/opus"),
    "ogg-vorbis-44k": lambda: (encode(signal(44100), 44100, "OGG", "VORBIS"), "audio/ogg"),
    "webm-opus": lambda: (encode_webm(signal(48000)), "audio/webm;codecs=opus"),
    "webm-probed": lambda: (encode_webm(signal(48000)), None),
}


@pytest.mark.parametrize("name", CONTAINERS)
def test_containers_cut_anywhere_decode_as_the_whole_file(name: str) -> None:
    data, content_type = CONTAINERS[name]()
    expected = whole(data)
    for seed in range(3):
        assert torch.allclose(stream(data, content_type, random_sizes(seed)), expected, rtol=0, atol=1e-6), seed
    assert torch.allclose(stream(data, content_type, len(data)), expected, rtol=0, atol=1e-6)


def test_8_bit_wav_is_centred() -> None:
    x = signal(16000)
    got = stream(encode(x, 16000, "WAV", "PCM_U8"), "audio/wav", 1000)
    assert torch.allclose(got, torch.from_numpy(x), rtol=0, atol=1 / 128)


@pytest.mark.parametrize(("fmt", "subtype", "rate", "content_type"), [
    ("FLAC", "PCM_16", 16000, "audio/flac"), ("WAV", "PCM_16", 16000, "audio/wav"),
    ("OGG", "OPUS", 48000, "audio/ogg;codecs=opus")])
def test_a_stream_cut_at_any_byte_decodes_as_the_whole_file(fmt: str, subtype: str, rate: int, content_type: str,
                                                            ) -> None:
    data = encode(signal(rate, 0.3), rate, fmt, subtype)
    expected = whole(data)
    assert torch.equal(stream(data, content_type, 1), expected)
    # Two pieces, cut everywhere in the headers and first frame, then at every 97th byte.
    for cut in [*range(1, 200), *range(200, len(data), 97)]:
        assert torch.equal(stream(data, content_type, [cut, len(data)]), expected), cut


def test_mp3_streams_the_samples_of_the_whole_file() -> None:
    data = encode(signal(16000), 16000, "MP3", "MPEG_LAYER_III")
    expected, once = whole(data), stream(data, "audio/mpeg", len(data))
    for seed in range(3):
        assert torch.equal(stream(data, "audio/mp3", random_sizes(seed)), once)
    # Unseekable, FFmpeg cannot read the encoder's padding at the end: up to a frame more of it.
    assert expected.numel() <= once.numel() <= expected.numel() + 1152
    assert torch.equal(once[: expected.numel()], expected)


@pytest.mark.parametrize(("name", "content_type", "target_rate_hz"), [
    ("hello.flac", "audio/flac", 16000), ("hello.wav", "audio/wav", 16000), ("phone.wav", None, 8000)])
def test_the_fixtures_stream_like_the_whole_file(name: str, content_type: str | None, target_rate_hz: int) -> None:
    data = (FIXTURES / name).read_bytes()
    expected = whole(data, target_rate_hz=target_rate_hz)
    assert torch.equal(stream(data, content_type, [3200, 1, 999], target_rate_hz), expected)


@pytest.mark.parametrize(("seconds", "fmt"), [(4.0, "FLAC"), (1.0, "WEBM"), (1.0, "WAV")])
def test_samples_come_out_before_the_end(seconds: float, fmt: str) -> None:
    rate = 48000 if fmt == "WEBM" else 16000
    x = signal(rate, seconds)
    data = encode_webm(x) if fmt == "WEBM" else encode(x, rate, fmt, "PCM_16")
    decoder = open_decoder(None, target_rate_hz=16000)
    early = sum(decoder.feed(data[i:i + 1000]).numel() for i in range(0, len(data), 1000))
    assert decoder.source_rate_hz == rate
    # FFmpeg's FLAC parser holds about ten frames back (here 4096 samples each); the others hardly any.
    assert early >= (16000 * seconds - (10 * 4096 if fmt == "FLAC" else 1600))
    assert early + decoder.finish().numel() == 16000 * seconds


def test_wav_stops_at_the_end_of_its_data_chunk() -> None:
    data = bytearray(encode(signal(16000), 16000, "WAV", "PCM_16"))
    data += b"LIST" + (10).to_bytes(4, "little") + b"INFOISFT\x02\x00"  # a chunk after the samples
    data[4:8] = (len(data) - 8).to_bytes(4, "little")
    assert torch.equal(stream(bytes(data), "audio/wav", 333), whole(bytes(data)))


def test_a_live_wav_without_sizes_runs_to_the_end() -> None:
    data = bytearray(encode(signal(16000), 16000, "WAV", "PCM_16"))
    data[4:8] = data[40:44] = b"\xff\xff\xff\xff"  # what a writer that cannot seek back leaves
    expected = torch.from_numpy(np.frombuffer(bytes(data[44:]), "<i2").astype(np.float32) / 32768)
    assert torch.equal(stream(bytes(data), "audio/wav", 100), expected)


def test_a_flac_stream_cut_mid_frame_keeps_the_audio_before() -> None:
    data = encode(signal(16000, 1.0), 16000, "FLAC", "PCM_16")
    expected = whole(data)
    got = stream(data[: int(len(data) * 0.7)], "audio/flac", 500)
    assert 0 < got.numel() < expected.numel()
    assert torch.equal(got, expected[: got.numel()])


# Rates


@pytest.mark.parametrize("rate", [22050, 44100, 48000, 16001, 47999])
def test_resampling_in_pieces_equals_resampling_the_whole(rate: int) -> None:
    # 16001 and 47999 Hz: coprime with 16 kHz. A polyphase sinc kernel would have 16,000 phases
    # (about 1 GB for 16001 Hz, built in seconds: the server froze); libsoxr needs neither.
    x = signal(rate, 0.7, channels=2)
    pcm = (x * 32767).astype("<i2").tobytes()
    content_type = f"audio/l16;rate={rate};channels=2;endianness=little-endian"
    mono = torch.from_numpy(decode_bytes(pcm, parse_content_type(content_type))[0])
    expected = resample(mono, rate, 16000)
    assert abs(expected.numel() - mono.numel() * 16000 / rate) <= 1
    for sizes in [[4, 4093], [441 * 4 + 2, 3], random_sizes(rate)]:  # a sample at a time, and cuts mid-sample
        got = stream(pcm, content_type, sizes)
        assert got.shape == expected.shape
        assert torch.allclose(got, expected, rtol=0, atol=1e-5), sizes


def test_rates_beyond_the_limit_are_refused() -> None:
    with pytest.raises(AudioError, match="192000 Hz"):
        open_decoder("audio/l16;rate=192001", target_rate_hz=16000)
    with pytest.raises(AudioError, match="192000 Hz"):
        resample(np.zeros(10, dtype=np.float32), 10_000_000, 16000)


def test_the_model_rate_passes_unchanged() -> None:
    pcm = (signal(16000) * 32767).astype(">i2").tobytes()
    expected = torch.from_numpy(np.frombuffer(pcm, ">i2").astype(np.float32) / 32768)
    assert torch.equal(stream(pcm, "audio/l16;rate=16000", 320), expected)


@pytest.mark.parametrize("content_type", ["audio/l16;rate=8000", "audio/mulaw;rate=8000", "audio/basic"])
def test_a_declared_rate_below_the_model_is_refused_at_once(content_type: str) -> None:
    with pytest.raises(AudioError, match="8000 Hz.*16000 Hz"):
        open_decoder(content_type, target_rate_hz=16000)


@pytest.mark.parametrize(("fmt", "content_type"), [("FLAC", "audio/flac"), ("WAV", "audio/wav"), ("FLAC", None)])
def test_a_container_rate_below_the_model_is_refused(fmt: str, content_type: str | None) -> None:
    data = encode(signal(8000, 2.0), 8000, fmt, "PCM_16")
    decoder = open_decoder(content_type, target_rate_hz=16000)
    with pytest.raises(AudioError, match="8000 Hz.*16000 Hz"):
        for i in range(0, len(data), 1000):
            decoder.feed(data[i:i + 1000])
        decoder.finish()
    with pytest.raises(AudioError, match="8000 Hz"):  # the error stays
        decoder.finish()
    assert not worker_threads()


# Bad input


# (Bad content types are refused by their parser: tests/protocol/test_audio.py.)
@pytest.mark.parametrize(("spec", "error", "message"), [
    (AudioFormat("mp4"), UnsupportedAudioType, "unsupported audio encoding 'mp4'"),
    (AudioFormat("l16"), AudioError, "needs a sample rate"),
    (AudioFormat("alaw"), AudioError, "needs a sample rate"),
])
def test_specs_the_engine_cannot_decode_are_refused_at_once(spec: AudioFormat, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        StreamDecoder(spec, target_rate_hz=16000)


@pytest.mark.parametrize("content_type", ["audio/flac", "audio/ogg", "audio/mp3", "audio/webm", "audio/wav", None])
def test_garbage_is_an_audio_error_not_a_hang(content_type: str | None) -> None:
    decoder = open_decoder(content_type, target_rate_hz=16000)
    with pytest.raises(AudioError):
        for _ in range(50):
            decoder.feed(b"this is not audio at all " * 40)
        decoder.finish()
    decoder.close()
    assert not worker_threads()


@pytest.mark.parametrize("content_type", ["audio/flac", "audio/ogg", "audio/l16;rate=16000", None])
def test_an_empty_stream_is_an_audio_error(content_type: str | None) -> None:
    decoder = open_decoder(content_type, target_rate_hz=16000)
    assert decoder.feed(b"").numel() == 0
    with pytest.raises(AudioError, match="empty"):
        decoder.finish()


@pytest.mark.parametrize("cut", [10, 100, 3000])
def test_a_stream_ending_before_its_first_frame_is_an_audio_error(cut: int) -> None:
    data = encode(signal(48000), 48000, "OGG", "OPUS")
    with pytest.raises(AudioError):
        stream(data[:cut], "audio/ogg", 7)
    assert not worker_threads()


# Threads and lifecycle


def test_close_mid_stream_ends_the_worker_thread() -> None:
    data = encode(signal(16000, 2.0), 16000, "FLAC", "PCM_16")
    decoder = open_decoder("audio/flac", target_rate_hz=16000)
    decoder.feed(data[: len(data) // 2])
    assert len(worker_threads()) == 1
    decoder.close()
    assert not worker_threads()
    decoder.close()
    with pytest.raises(RuntimeError, match="closed"):
        decoder.feed(data)


def test_a_dropped_decoder_lets_its_worker_end() -> None:
    decoder = open_decoder("audio/ogg", target_rate_hz=16000)
    decoder.feed(encode(signal(48000), 48000, "OGG", "OPUS")[:2000])
    [worker] = worker_threads()
    del decoder
    gc.collect()
    worker.join(timeout=30)
    assert not worker.is_alive()


def test_finish_ends_the_worker_thread_and_the_decoder() -> None:
    decoder = open_decoder("audio/flac", target_rate_hz=16000)
    decoder.feed(encode(signal(16000), 16000, "FLAC", "PCM_16"))
    assert decoder.finish().numel() == 8000
    assert not worker_threads()
    with pytest.raises(RuntimeError, match="finished"):
        decoder.finish()
    decoder.close()


def test_without_a_wav_header_reader_pcm_wav_goes_to_ffmpeg_with_the_same_samples() -> None:
    data = encode(signal(16000), 16000, "WAV", "PCM_16")
    decoder = StreamDecoder(parse_content_type("audio/wav"), target_rate_hz=16000)
    got = [decoder.feed(data[:1000])]
    assert len(worker_threads()) == 1
    got += [decoder.feed(data[1000:]), decoder.finish()]
    assert torch.equal(torch.cat(got), whole(data))
    assert not worker_threads()


def test_a_broken_wav_header_fails_the_stream_with_the_readers_error() -> None:
    data = bytearray(encode(signal(16000), 16000, "WAV", "PCM_16"))
    data[16:20] = (8).to_bytes(4, "little")  # a fmt chunk too short to hold WAVEFORMAT
    decoder = open_decoder("audio/wav", target_rate_hz=16000)
    with pytest.raises(Exception, match="WAV fmt chunk of 8 bytes is too short"):
        decoder.feed(bytes(data))
    assert not worker_threads()


def test_close_before_any_bytes_and_headerless_streams_use_no_thread() -> None:
    open_decoder("audio/ogg", target_rate_hz=16000).close()
    decoder = open_decoder("audio/l16;rate=16000", target_rate_hz=16000)
    decoder.feed(b"\x00\x01" * 800)
    wav = open_decoder("audio/wav", target_rate_hz=16000)
    wav.feed(encode(signal(16000), 16000, "WAV", "PCM_16"))
    assert not worker_threads()
    decoder.close()
    wav.close()
