"""The Transcribe dialect's messages, client side: presigned URLs, AudioEvents, TranscriptEvents, exceptions."""

import datetime as dt
import json

import pytest
from yarl import URL

from clients.endpoint import TRANSCRIBE_PATH, host_header, websocket_url
from clients.errors import BadInput, BadServerMessage, ServerError
from clients.transcribe import Credentials, audio_event, parse_event, presigned_url
from protocol import sigv4
from protocol.errors import AuthenticationError
from protocol.eventstream import Message

NOW = dt.datetime(2026, 11, 23, 12, 0, 0, tzinfo=dt.timezone.utc)
CREDENTIALS = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "eu-west-1", "tok/en+=")


def _verify(url: URL, secrets: dict[str, str], now: dt.datetime = NOW) -> sigv4.VerifiedRequest:
    return sigv4.verify(method="GET", path=url.raw_path, raw_query=url.raw_query_string, host=host_header(url),
                        secrets=secrets, now=now)


def test_presigned_url_verifies_with_the_servers_verifier() -> None:
    base = websocket_url("ws://127.0.0.1:8080/stream-transcription-websocket?vocabulary-name=my vocab",
                         TRANSCRIBE_PATH)
    url = presigned_url(base, credentials=CREDENTIALS, sample_rate_hz=8000, expires_s=60,
                        params={"session-id": "s-1"}, now=NOW)
    assert url.scheme == "ws" and url.raw_path == TRANSCRIBE_PATH
    verified = _verify(url, {"AKIDEXAMPLE": CREDENTIALS.secret_access_key})
    assert verified.region == "eu-west-1"
    assert verified.expires_at == NOW + dt.timedelta(seconds=60)
    assert verified.params == {"language-code": "en-US", "media-encoding": "pcm", "sample-rate": "8000",
                               "session-id": "s-1", "vocabulary-name": "my vocab"}
    with pytest.raises(AuthenticationError):
        _verify(url, {"AKIDEXAMPLE": "another secret"})
    with pytest.raises(AuthenticationError):  # the host (and port) is signed
        sigv4.verify(method="GET", path=url.raw_path, raw_query=url.raw_query_string, host="127.0.0.1:8081",
                     secrets={"AKIDEXAMPLE": CREDENTIALS.secret_access_key}, now=NOW)


def test_presign_rejects_expiry_over_five_minutes() -> None:
    with pytest.raises(BadInput, match="1-300"):
        presigned_url(URL("ws://h:1/x"), credentials=CREDENTIALS, expires_s=301, now=NOW)


def test_audio_event_headers_and_end_of_stream() -> None:
    message = Message.decode(audio_event(b"\x01\x02"))
    assert {h.name: h.value for h in message.headers} == {
        ":message-type": "event", ":event-type": "AudioEvent", ":content-type": "application/octet-stream"}
    assert message.payload == b"\x01\x02"
    assert Message.decode(audio_event(b"")).payload == b""


def _transcript_event(results: list) -> Message:
    return Message.build({":message-type": "event", ":event-type": "TranscriptEvent",
                          ":content-type": "application/json"},
                         json.dumps({"Transcript": {"Results": results}}).encode())


def test_transcript_event() -> None:
    event = _transcript_event([
        {"ResultId": "r1", "StartTime": 0.0, "EndTime": 1.0, "IsPartial": True,
         "Alternatives": [{"Transcript": "hello wor", "Items": []}]},
        {"ResultId": "r0", "IsPartial": False, "Alternatives": [{"Transcript": "good morning", "Items": []}]},
        {"ResultId": "r2", "IsPartial": True, "Alternatives": []}])
    assert [(h.key, h.transcript, h.final, h.received_at) for h in parse_event(event, 3.0)] == [
        ("r1", "hello wor", False, 3.0), ("r0", "good morning", True, 3.0), ("r2", "", False, 3.0)]
    assert parse_event(_transcript_event([]), 0.0) == []
    other = Message.build({":message-type": "event", ":event-type": "SomethingNew"}, b"{}")
    assert parse_event(other, 0.0) == []


def test_exception_message() -> None:
    message = Message.build({":message-type": "exception", ":exception-type": "LimitExceededException",
                             ":content-type": "application/json"}, b'{"Message": "too many streams"}')
    with pytest.raises(ServerError) as info:
        parse_event(message, 0.0)
    assert info.value.kind == "LimitExceededException"
    assert info.value.message == "LimitExceededException: too many streams"


@pytest.mark.parametrize("message", [
    Message.build({":message-type": "gossip"}),
    _transcript_event([{"IsPartial": True}]),
    Message.build({":message-type": "event", ":event-type": "TranscriptEvent"}, b"not json"),
])
def test_bad_server_events(message: Message) -> None:
    with pytest.raises(BadServerMessage):
        parse_event(message, 0.0)
