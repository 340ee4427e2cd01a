"""Audio content types: one parser for the server, the CLI and the clients."""

import pytest

from protocol.audio import (DETECT, MEDIA_TYPES, AudioType, Encoding, content_type_for_suffix, parse_content_type,
                            split_content_type)
from protocol.errors import InvalidParameter, UnsupportedMedia, VoxgateError

L16, MULAW, ALAW = Encoding.L16, Encoding.MULAW, Encoding.ALAW


@pytest.mark.parametrize(("text", "media_type", "encoding", "rate_hz", "channels", "big_endian"), [
    # headerless: rate required (but audio/basic), channels 1 and network byte order by default
    ("audio/l16;rate=16000", "audio/l16", L16, 16000, 1, True),
    ("audio/l16; rate=8000; endianness=little-endian", "audio/l16", L16, 8000, 1, False),
    ("audio/l16;rate=8000;endianness=big-endian", "audio/l16", L16, 8000, 1, True),
    ('Audio/L16; Rate="44100" ;Channels=2', "audio/l16", L16, 44100, 2, True),
    ("  audio/l16 ;rate = 22050 ;  ", "audio/l16", L16, 22050, 1, True),
    ("audio/l16;rate=16000;endianness=Little-Endian", "audio/l16", L16, 16000, 1, False),
    ("audio/mulaw;rate=8000", "audio/mulaw", MULAW, 8000, 1, True),
    ("audio/mulaw;rate=8000;channels=2", "audio/mulaw", MULAW, 8000, 2, True),
    ("audio/alaw;rate=8000", "audio/alaw", ALAW, 8000, 1, True),
    ("audio/basic", "audio/basic", MULAW, 8000, 1, True),
    ("audio/basic;rate=16000", "audio/basic", MULAW, 16000, 1, True),
    # containers: the rate is the container's (a declared one is kept, and validated)
    ("audio/wav", "audio/wav", Encoding.WAV, None, 1, True),
    ("audio/x-wav", "audio/x-wav", Encoding.WAV, None, 1, True),
    ("audio/wave;", "audio/wave", Encoding.WAV, None, 1, True),
    ("audio/vnd.wave", "audio/vnd.wave", Encoding.WAV, None, 1, True),
    ("audio/flac;rate=16000", "audio/flac", Encoding.FLAC, 16000, 1, True),
    ("audio/x-flac", "audio/x-flac", Encoding.FLAC, None, 1, True),
    ("audio/ogg;codecs=opus", "audio/ogg", Encoding.OGG, None, 1, True),
    ("audio/opus", "audio/opus", Encoding.OGG, None, 1, True),
    ("audio/mp3", "audio/mp3", Encoding.MP3, None, 1, True),
    ("audio/mpeg", "audio/mpeg", Encoding.MP3, None, 1, True),
    ("audio/webm;codecs=opus", "audio/webm", Encoding.WEBM, None, 1, True),
    ("application/octet-stream", "application/octet-stream", Encoding.DETECT, None, 1, True),
])
def test_good_content_types(text: str, media_type: str, encoding: Encoding, rate_hz: int | None, channels: int,
                            big_endian: bool) -> None:
    parsed = parse_content_type(text)
    assert (parsed.media_type, parsed.encoding, parsed.rate_hz, parsed.channels, parsed.big_endian) == (
        media_type, encoding, rate_hz, channels, big_endian)


@pytest.mark.parametrize("text", [None, "", "   "])
def test_no_content_type_detects_the_container(text: str | None) -> None:
    assert parse_content_type(text) is DETECT
    assert DETECT.encoding is Encoding.DETECT


@pytest.mark.parametrize(("text", "error", "message"), [
    ("audio/x-foo", UnsupportedMedia, "unsupported audio type 'audio/x-foo'"),
    ("video/mp4", UnsupportedMedia, "unsupported audio type 'video/mp4'"),
    ("application/zip", UnsupportedMedia, "unsupported audio type 'application/zip'"),
    ("audio/l16", InvalidParameter, "audio/l16 needs a rate parameter, e.g. 'audio/l16;rate=8000'"),
    ("audio/mulaw; channels=1", InvalidParameter, "audio/mulaw needs a rate parameter"),
    ("audio/alaw", InvalidParameter, "audio/alaw needs a rate parameter"),
    ("audio/l16;rate", InvalidParameter, "malformed content-type parameter 'rate' in 'audio/l16;rate'"),
    ("audio/l16;rate=abc", InvalidParameter, "rate must be an integer in 'audio/l16;rate=abc', got 'abc'"),
    ("audio/l16;rate=8000.5", InvalidParameter, "rate must be an integer"),
    ("audio/l16;rate=0", InvalidParameter, "rate must be positive in 'audio/l16;rate=0', got 0"),
    ("audio/l16;rate=-8000", InvalidParameter, "rate must be positive"),
    ("audio/l16;rate=8000;channels=two", InvalidParameter, "channels must be an integer"),
    ("audio/l16;rate=8000;channels=0", InvalidParameter, "channels must be positive"),
    ("audio/flac;rate=fast", InvalidParameter, "rate must be an integer"),
    ("audio/l16;rate=16000;endianness=middle", InvalidParameter,
     "endianness must be big-endian or little-endian, got 'middle'"),
])
def test_bad_content_types_name_the_problem(text: str, error: type, message: str) -> None:
    with pytest.raises(error) as info:
        parse_content_type(text)
    assert message in info.value.message


def test_errors_carry_the_status_and_close_code_the_server_answers_with() -> None:
    with pytest.raises(VoxgateError) as unsupported:
        parse_content_type("audio/x-foo")
    with pytest.raises(VoxgateError) as no_rate:
        parse_content_type("audio/l16")
    assert (unsupported.value.http_status, unsupported.value.close_code) == (415, 1003)
    assert (no_rate.value.http_status, no_rate.value.close_code) == (400, 1002)


def test_parameters_are_kept_with_lower_case_names_and_unquoted_values() -> None:
    parsed = parse_content_type('audio/ogg; Codecs="opus"; rate=48000')
    assert dict(parsed.params) == {"codecs": "opus", "rate": "48000"}
    assert split_content_type('Application/ZIP; a=1;;b="x y"') == ("application/zip", {"a": "1", "b": "x y"})


def test_parsed_types_compare_by_value_and_frame_sizes() -> None:
    assert parse_content_type("audio/l16;rate=8000") == AudioType("audio/l16", L16, 8000)
    assert parse_content_type("audio/l16;rate=8000;channels=2").frame_bytes == 4
    assert parse_content_type("audio/alaw;rate=8000;channels=3").frame_bytes == 3
    with pytest.raises(ValueError, match="container"):
        parse_content_type("audio/flac").frame_bytes


def test_every_media_type_has_an_encoding_and_headerless_ones_a_sample_size() -> None:
    assert all(isinstance(encoding, Encoding) for encoding in MEDIA_TYPES.values())
    assert {e for e in Encoding if e.headerless} == {L16, MULAW, ALAW}
    assert [e.sample_bytes for e in (L16, MULAW, ALAW)] == [2, 1, 1]


@pytest.mark.parametrize(("suffix", "content_type"), [
    (".wav", "audio/wav"), (".WAV", "audio/wav"), (".flac", "audio/flac"), (".raw", "audio/l16;rate=16000"),
    (".pcm", "audio/l16;rate=16000"), (".ulaw", "audio/mulaw;rate=8000"), (".alaw", "audio/alaw;rate=8000"),
    (".mp3", None), ("", None),
])
def test_suffixes(suffix: str, content_type: str | None) -> None:
    assert content_type_for_suffix(suffix) == content_type
    if content_type is not None:
        parse_content_type(content_type)  # every implied type parses
