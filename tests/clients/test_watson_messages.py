"""The Watson dialect's messages, client side: the start action and what the server sends back."""

import json

import pytest

from clients.errors import BadServerMessage, ServerError
from clients.watson import parse_message
from protocol.watson import STOP_MESSAGE, start_message


def test_start_and_stop() -> None:
    assert json.loads(start_message(content_type="audio/l16;rate=16000", interim_results=True,
                                    options={"inactivity_timeout": -1})) == {
        "action": "start", "content-type": "audio/l16;rate=16000", "interim_results": True, "inactivity_timeout": -1}
    assert json.loads(start_message(content_type=None, interim_results=False)) == {
        "action": "start", "interim_results": False}
    assert json.loads(STOP_MESSAGE) == {"action": "stop"}


def test_results_are_numbered_from_result_index() -> None:
    text = json.dumps({"result_index": 2, "results": [
        {"final": True, "alternatives": [{"transcript": "one two ", "confidence": 0.9}], "end_of_utterance": "silence"},
        {"final": False, "alternatives": [{"transcript": "three "}]}], "warnings": ["Unknown arguments: x."]})
    message = parse_message(text, received_at=7.5)
    assert not message.listening
    assert [(h.key, h.transcript, h.final, h.received_at) for h in message.hypotheses] == [
        ("2", "one two", True, 7.5), ("3", "three", False, 7.5)]
    assert message.warnings == ("Unknown arguments: x.",)


def test_listening_and_bare_warnings() -> None:
    assert parse_message('{"state": "listening"}', 0.0).listening
    assert parse_message('{"warnings": ["w"]}', 0.0).warnings == ("w",)
    assert parse_message('{"result_index": 0, "results": [{"final": true, "alternatives": []}]}',
                         0.0).hypotheses[0].transcript == ""


def test_error_message_raises_with_its_text() -> None:
    with pytest.raises(ServerError) as info:
        parse_message('{"error": "No speech detected for 30s."}', 0.0)
    assert info.value.message == "No speech detected for 30s." and info.value.kind == "server error"


@pytest.mark.parametrize("text", ["not json", "[1]", '{"state": "thinking"}', '{"hello": 1}',
                                  '{"results": [{"alternatives": []}]}', '{"results": {}, "result_index": 0}',
                                  '{"results": [{"final": true, "alternatives": [{}]}]}'])
def test_bad_server_messages(text: str) -> None:
    with pytest.raises(BadServerMessage):
        parse_message(text, 0.0)
