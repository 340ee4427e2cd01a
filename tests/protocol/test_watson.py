"""Watson start/stop parsing and results serialisation."""

import json
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.errors import InvalidParameter, MalformedMessage, ProtocolError
from protocol.watson import (STOP_MESSAGE, ErrorReply, Hypothesis, Listening, Options, Results, ResultSummary, Start,
                             Stop, Warnings, WordHypothesis, WordSlot, error_message, listening_message, parse_control,
                             parse_query_options, parse_server_message, results_message, start_message)


def test_start_accepts_both_content_type_spellings() -> None:
    a = parse_control('{"action": "start", "content-type": "audio/l16; rate=44100"}')
    b = parse_control('{"action": "start", "content_type": "audio/flac", "interim_results": true}')
    assert isinstance(a, Start) and a.options.content_type == "audio/l16; rate=44100"
    assert isinstance(b, Start) and b.options.content_type == "audio/flac" and b.options.interim_results


def test_later_start_keeps_earlier_options() -> None:
    first = parse_control('{"action": "start", "content-type": "audio/wav", "timestamps": true}')
    second = parse_control('{"action": "start", "interim_results": true}', first.options)
    assert second.options.content_type == "audio/wav"
    assert second.options.timestamps and second.options.interim_results


def test_stop() -> None:
    assert parse_control('{"action": "stop"}') == Stop()


def test_unknown_and_unsupported_options_become_warnings() -> None:
    start = parse_control('{"action": "start", "colour": "blue", "smart_formatting": true, "low_latency": true}')
    assert start.options.warnings == ("Unknown arguments: colour.",
                                      "Arguments not supported by this server and ignored: smart_formatting.")
    assert start.options.low_latency


@pytest.mark.parametrize("text,error,match", [
    ("not json", MalformedMessage, "JSON"),
    ("[1, 2]", MalformedMessage, "JSON objects, got list"),
    ('{"action": "pause"}', InvalidParameter, "action must be 'start' or 'stop', got 'pause'"),
    ('{"content-type": "audio/wav"}', InvalidParameter, "got None"),
    ('{"action": "start", "interim_results": "yes"}', InvalidParameter, "interim_results must be a boolean"),
    ('{"action": "start", "inactivity_timeout": 1.5}', InvalidParameter, "inactivity_timeout must be an integer"),
    ('{"action": "start", "inactivity_timeout": -2}', InvalidParameter, "between -1"),
    ('{"action": "start", "end_of_phrase_silence_time": 121}', InvalidParameter, "between 0 and 120"),
    ('{"action": "start", "customization_weight": 2}', InvalidParameter, "between 0 and 1"),
    ('{"action": "start", "max_alternatives": 0}', InvalidParameter, "max_alternatives"),
    ('{"action": "start", "content-type": 16000}', InvalidParameter, "content-type must be a string"),
])
def test_bad_control_messages_name_the_problem(text: str, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        parse_control(text)


@given(st.text(max_size=200))
def test_parser_never_fails_with_anything_but_a_protocol_error(text: str) -> None:
    try:
        parse_control(text)
    except ProtocolError:
        pass


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
                           max_leaves=10)
option_keys = st.sampled_from(["action", "content-type", "content_type", "interim_results", "inactivity_timeout",
                               "max_alternatives", "word_confidence", "timestamps", "end_of_phrase_silence_time",
                               "customization_weight", "low_latency", "keywords", "word_alternatives_threshold",
                               "other"])


@given(st.dictionaries(option_keys, json_values, max_size=8))
def test_start_objects_either_parse_or_raise_a_protocol_error(message: dict) -> None:
    try:
        parsed = parse_control(json.dumps(message))
    except ProtocolError:
        return
    assert isinstance(parsed, (Start, Stop))


def test_query_options_for_sessionless_requests() -> None:
    options = parse_query_options({"model": "en-US_NarrowbandModel", "timestamps": "true", "inactivity_timeout": "-1",
                                   "foo": "1"}, "audio/wav")
    assert options.timestamps and options.inactivity_timeout_s == -1 and options.content_type == "audio/wav"
    assert options.warnings == ("Unknown arguments: foo.",)


def test_results_shape() -> None:
    words = (WordHypothesis("hello", 0.1, 0.5, 0.9), WordHypothesis("world", 0.6, 1.0, 0.7))
    options = Options(timestamps=True, word_confidence=True)
    message = json.loads(results_message(2, [Hypothesis(words, final=True, end_of_utterance="silence"),
                                             Hypothesis(words[:1], final=False)], options, ("careful",)))
    assert message["result_index"] == 2 and message["warnings"] == ["careful"]
    final, interim = message["results"]
    assert final == {"final": True, "end_of_utterance": "silence",
                     "alternatives": [{"transcript": "hello world ", "confidence": 0.8,
                                       "timestamps": [["hello", 0.1, 0.5], ["world", 0.6, 1.0]],
                                       "word_confidence": [["hello", 0.9], ["world", 0.7]]}]}
    assert interim == {"final": False, "alternatives": [{"transcript": "hello ", "timestamps": [["hello", 0.1, 0.5]]}]}


def test_listening() -> None:
    assert json.loads(listening_message()) == {"state": "listening"}


def test_keywords_are_spotted_in_finals_above_the_threshold() -> None:
    words = (WordHypothesis("Press", 0.1, 0.4, 0.9), WordHypothesis("the", 0.4, 0.5, 0.8),
             WordHypothesis("pound", 0.5, 0.8, 0.7), WordHypothesis("key.", 0.8, 1.1, 0.3),
             WordHypothesis("pound", 1.2, 1.5, 0.95))
    start = parse_control(json.dumps({"action": "start", "keywords": ["pound", "pound key", "star", " "],
                                      "keywords_threshold": 0.6}))
    assert start.options.keywords == ("pound", "pound key", "star") and start.options.warnings == ()
    body = json.loads(results_message(0, [Hypothesis(words, True)], start.options))
    assert body["results"][0]["keywords_result"] == {"pound": [
        {"normalized_text": "pound", "start_time": 0.5, "end_time": 0.8, "confidence": 0.7},
        {"normalized_text": "pound", "start_time": 1.2, "end_time": 1.5, "confidence": 0.95}]}
    low = parse_control(json.dumps({"action": "start", "keywords": ["pound key"], "keywords_threshold": 0.4}))
    [match] = json.loads(results_message(0, [Hypothesis(words, True)], low.options))["results"][0][
        "keywords_result"]["pound key"]
    assert (match["normalized_text"], match["start_time"], match["end_time"], match["confidence"]) == (
        "pound key.", 0.5, 1.1, 0.5)
    # interim results carry none
    assert "keywords_result" not in json.loads(results_message(0, [Hypothesis(words, False)], low.options))["results"][0]


def test_keywords_need_a_threshold_and_are_validated() -> None:
    alone = parse_control(json.dumps({"action": "start", "keywords": ["pound"]}))
    assert not alone.options.spots_keywords
    assert alone.options.warnings == ("Keyword spotting needs both keywords and keywords_threshold; no keywords "
                                      "are spotted.",)
    query = parse_query_options({"keywords": "pound,star key", "keywords_threshold": "0.3"}, None)
    assert query.keywords == ("pound", "star key") and query.keywords_threshold == 0.3
    for bad, message in (({"keywords": [1, 2]}, "keywords must be a list of strings"),
                         ({"keywords": ["x"], "keywords_threshold": 2}, "between 0 and 1"),
                         ({"keywords": ["x" * 1025], "keywords_threshold": 0.5}, "at most 1024 characters")):
        with pytest.raises(InvalidParameter, match=message):
            parse_control(json.dumps({"action": "start", **bad}))


def test_max_alternatives_adds_the_next_best_transcripts_to_finals() -> None:
    words = (WordHypothesis("press", 0.1, 0.4, 0.9), WordHypothesis("one", 0.4, 0.7, 0.8))
    options = parse_control(json.dumps({"action": "start", "max_alternatives": 2})).options
    final = Hypothesis(words, True, alternatives=("press won", "dress one"))
    [result] = json.loads(results_message(0, [final], options))["results"]
    assert [a["transcript"] for a in result["alternatives"]] == ["press one ", "press won "]
    assert "confidence" in result["alternatives"][0] and "confidence" not in result["alternatives"][1]
    [one] = json.loads(results_message(0, [final], Options()))["results"]
    assert len(one["alternatives"]) == 1


def test_word_alternatives_threshold_adds_each_words_competitors_to_finals() -> None:
    words = (WordHypothesis("press", 0.1, 0.4, 0.9), WordHypothesis("one", 0.4, 0.7, 0.8))
    slots = (WordSlot(0.1, 0.4, (("press", 0.95), ("dress", 0.05))), WordSlot(0.4, 0.7, (("one", 0.6), ("won", 0.4))))
    options = parse_control(json.dumps({"action": "start", "word_alternatives_threshold": 0.3})).options
    assert options.word_alternatives_threshold == 0.3 and not options.warnings
    final = Hypothesis(words, True, word_slots=slots)
    [result] = json.loads(results_message(0, [final], options))["results"]
    assert result["word_alternatives"] == [
        {"start_time": 0.1, "end_time": 0.4, "alternatives": [{"confidence": 0.95, "word": "press"}]},
        {"start_time": 0.4, "end_time": 0.7, "alternatives": [{"confidence": 0.6, "word": "one"},
                                                               {"confidence": 0.4, "word": "won"}]}]
    # a slot whose every word is under the threshold is left out; interims and requests without it carry none
    high = replace(options, word_alternatives_threshold=0.9)
    assert [s["start_time"] for s in json.loads(results_message(0, [final], high))["results"][0]["word_alternatives"]] \
        == [0.1]
    [interim] = json.loads(results_message(0, [Hypothesis(words, False, word_slots=slots)], options))["results"]
    assert "word_alternatives" not in interim
    assert "word_alternatives" not in json.loads(results_message(0, [final], Options()))["results"][0]
    assert parse_query_options({"word_alternatives_threshold": "0.25"}, None).word_alternatives_threshold == 0.25
    for bad in (1.5, -0.1, "x", True):
        with pytest.raises(InvalidParameter, match="word_alternatives_threshold"):
            parse_control(json.dumps({"action": "start", "word_alternatives_threshold": bad}))


# Client side: what a client sends parses on the server, what the server sends parses on the client.


def test_a_clients_start_and_stop_parse_as_the_server_reads_them() -> None:
    text = start_message(content_type="audio/l16;rate=16000", interim_results=True,
                         options={"inactivity_timeout": -1, "timestamps": True})
    assert json.loads(text) == {"action": "start", "content-type": "audio/l16;rate=16000", "interim_results": True,
                                "inactivity_timeout": -1, "timestamps": True}
    start = parse_control(text)
    assert isinstance(start, Start)
    assert start.options == Options(content_type="audio/l16;rate=16000", interim_results=True, inactivity_timeout_s=-1,
                                    timestamps=True)
    assert json.loads(start_message(content_type=None, interim_results=False)) == {"action": "start",
                                                                                    "interim_results": False}
    assert parse_control(STOP_MESSAGE) == Stop()


def test_the_servers_messages_parse_as_a_client_reads_them() -> None:
    words = (WordHypothesis("hello", 0.1, 0.5, 0.9),)
    sent = results_message(3, [Hypothesis(words, final=True, end_of_utterance="silence"), Hypothesis((), final=False)],
                           Options(timestamps=True), ("careful",))
    assert parse_server_message(sent) == Results(3, (ResultSummary(True, "hello "), ResultSummary(False, "")),
                                                 ("careful",))
    assert parse_server_message(listening_message()) == Listening()
    assert parse_server_message(error_message("No speech detected for 30s.", ("w",))) == ErrorReply(
        "No speech detected for 30s.", ("w",))


@pytest.mark.parametrize(("text", "expected"), [
    ('{"warnings": ["a", "b"]}', Warnings(("a", "b"))),
    ('{"warnings": "one"}', Warnings(("one",))),
    ('{"state": "listening", "warnings": ["w"]}', Listening(("w",))),
    ('{"error": "bad", "state": "listening", "results": []}', ErrorReply("bad")),  # an error wins
    ('{"results": [{"final": true, "alternatives": []}]}', Results(0, (ResultSummary(True, ""),))),
    ('{"result_index": 0, "results": []}', Results(0, ())),
])
def test_server_messages(text: str, expected: object) -> None:
    assert parse_server_message(text) == expected


@pytest.mark.parametrize(("text", "match"), [
    ("not json", "not JSON"),
    ("[1]", "not an object"),
    ('{"state": "thinking"}', "unknown state 'thinking'"),
    ('{"hello": 1}', "neither results, a state nor an error"),
    ('{"results": {}, "result_index": 0}', "results must be a list"),
    ('{"results": [], "result_index": "0"}', "result_index an integer"),
    ('{"results": [{"alternatives": []}]}', "without final"),
    ('{"results": [{"final": true, "alternatives": [{}]}]}', "alternatives"),
    ('{"results": [7]}', "without final"),
])
def test_bad_server_messages_are_malformed(text: str, match: str) -> None:
    with pytest.raises(MalformedMessage, match=match):
        parse_server_message(text)
