"""Transcribe stream parameters, AudioEvents in (any split, signed envelopes), TranscriptEvents out."""

import datetime as dt
import json

import pytest
from botocore.eventstream import EventStreamBuffer

from protocol.errors import IllegalState, InvalidParameter, LimitExceeded, MalformedMessage, TooLarge
from protocol.eventstream import Message
from protocol.session import AudioEnded, AudioReceived
from protocol.transcribe import StreamParams, TranscribeSession, exception_event, transcript_event
from protocol.watson import WordHypothesis

PARAMS = {"language-code": "en-US", "media-encoding": "pcm", "sample-rate": "16000"}


def audio_event(payload: bytes, content_type: bool = True) -> bytes:
    headers = {":message-type": "event", ":event-type": "AudioEvent"}
    if content_type:
        headers[":content-type"] = "application/octet-stream"
    return Message.build(headers, payload).encode()


def test_params_from_query_and_headers() -> None:
    p = StreamParams.parse(PARAMS)
    assert p.content_type == "audio/l16;rate=16000;endianness=little-endian" and len(p.session_id) == 36
    h = StreamParams.from_headers({"X-Amzn-Transcribe-Language-Code": "en-US", "x-amzn-transcribe-media-encoding": "flac",
                                   "x-amzn-transcribe-sample-rate": "8000", "x-amzn-language-model-name": "lm1"})
    assert (h.media_encoding, h.sample_rate_hz, h.language_model_name, h.content_type) == ("flac", 8000, "lm1", "audio/flac")


@pytest.mark.parametrize("change,match", [
    ({"language-code": ""}, "language-code parameter is required"),
    ({"media-encoding": "mp3"}, "media-encoding must be one of pcm, flac, ogg-opus, got 'mp3'"),
    ({"sample-rate": "fast"}, "sample-rate must be an integer"),
    ({"sample-rate": "4000"}, "between 8000 and 48000"),
    ({"vocabulary-name": "v"}, "vocabulary-name is not supported"),
    ({"session-id": "abc"}, "session-id must be a UUID"),
])
def test_bad_params(change: dict, match: str) -> None:
    with pytest.raises(InvalidParameter, match=match):
        StreamParams.parse({**PARAMS, **change})


def test_audio_events_split_anywhere() -> None:
    stream = audio_event(b"a" * 300) + audio_event(b"b" * 10, content_type=False) + audio_event(b"")
    for cut in (1, 7, 50, len(stream)):
        session = TranscribeSession(max_request_bytes=10_000)
        events = []
        for i in range(0, len(stream), cut):
            events += session.receive_bytes(stream[i : i + cut])
        assert events == [AudioReceived(b"a" * 300), AudioReceived(b"b" * 10), AudioEnded()]
        session.receive_eof()


def test_signed_envelopes_are_unwrapped() -> None:
    def envelope(inner: bytes) -> bytes:
        return Message.build({":date": dt.datetime(2026, 11, 23, tzinfo=dt.timezone.utc),
                              ":chunk-signature": b"\x00" * 32}, inner).encode()

    session = TranscribeSession(max_request_bytes=10_000)
    assert session.receive_bytes(envelope(audio_event(b"xyz")) + envelope(b"")) == [AudioReceived(b"xyz"), AudioEnded()]


def test_bad_streams() -> None:
    with pytest.raises(MalformedMessage, match="CRC"):
        TranscribeSession(max_request_bytes=100).receive_bytes(b"\x00\x00\x00\x20" + b"\x00" * 40)
    other = Message.build({":message-type": "event", ":event-type": "ConfigurationEvent"}, b"{}").encode()
    with pytest.raises(InvalidParameter, match="expected an AudioEvent"):
        TranscribeSession(max_request_bytes=100).receive_bytes(other)
    with pytest.raises(TooLarge, match="exceeds the limit of 100 bytes"):
        TranscribeSession(max_request_bytes=100).receive_bytes(audio_event(b"x" * 101))
    ended = TranscribeSession(max_request_bytes=100)
    ended.receive_bytes(audio_event(b""))
    with pytest.raises(IllegalState, match="stopping"):
        ended.receive_bytes(audio_event(b"late"))
    cut = TranscribeSession(max_request_bytes=100)
    cut.receive_bytes(audio_event(b"abc")[:10])
    with pytest.raises(MalformedMessage, match="inside a message"):
        cut.receive_eof()


def test_botocore_reads_our_transcript_and_exception_events() -> None:
    words = (WordHypothesis("hello", 0.1, 0.5, 0.91), WordHypothesis("world", 0.6, 1.0, 0.8))
    buffer = EventStreamBuffer()
    buffer.add_data(transcript_event(result_id="r1", start_s=0.1, end_s=1.0, partial=True, words=words))
    buffer.add_data(exception_event(LimitExceeded("too many streams")))
    transcript, error = list(buffer)
    assert transcript.headers[":event-type"] == "TranscriptEvent"
    [result] = json.loads(transcript.payload)["Transcript"]["Results"]
    assert result["ResultId"] == "r1" and result["IsPartial"] is True
    assert result["Alternatives"][0]["Transcript"] == "hello world"
    assert [i["Content"] for i in result["Alternatives"][0]["Items"]] == ["hello", "world"]
    assert error.headers[":message-type"] == "exception"
    assert error.headers[":exception-type"] == "LimitExceededException"
    assert json.loads(error.payload) == {"Message": "too many streams"}
