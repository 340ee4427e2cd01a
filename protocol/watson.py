"""Watson Speech to Text v1 messages: the WebSocket ``start``/``stop`` actions and the results.

Sans-I/O, both sides. Server: :func:`parse_control` turns a text frame into a
:class:`Start` or :class:`Stop`; :func:`results_message`, :func:`listening_message`
and :func:`error_message` build what it sends. Client: :func:`start_message` and
:data:`STOP_MESSAGE` build what it sends; :func:`parse_server_message` turns the
server's frames into :class:`Results`, :class:`Listening`, :class:`Warnings` or
:class:`ErrorReply`. Field names and strings follow IBM's API reference
(PROTOCOLS.md §1.2): ``content-type`` (docs, Node SDK) and ``content_type``
(official Python SDK) are both accepted; ``{"state": "listening"}`` opens and
closes every request; results carry ``result_index``, ``final``,
``alternatives`` with a trailing-space ``transcript``.

The same option names arrive as query parameters on the sessionless
``POST /v1/recognize``; :func:`parse_query_options` reads them from there.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from protocol.errors import InvalidParameter, MalformedMessage

#: Options voxgate accepts and ignores (each yields a warning naming it): features it does not implement.
IGNORED_OPTIONS = frozenset({
    "profanity_filter", "smart_formatting",
    "speaker_labels", "grammar_name", "redaction", "processing_metrics", "processing_metrics_interval",
    "audio_metrics", "split_transcript_at_phrase_end", "speech_detector_sensitivity",
    "background_audio_suppression", "character_insertion_bias", "smart_formatting_version",
})


@dataclass(frozen=True)
class Options:
    """The recognition options of a request; on a WebSocket they persist from one request to the next.

    Attributes:
        content_type: the audio's MIME type with parameters, or None to auto-detect a container.
        interim_results: send hypotheses as they form, not only finals.
        inactivity_timeout_s: seconds of audio without speech before the request ends; -1 = never.
        max_alternatives: transcripts per final result: the best (with confidence, timestamps) and the next-best
            from the Whisper decoder's beam (transcript only, as Watson gives them); interim results have one.
        word_confidence: add ``word_confidence`` to final alternatives.
        timestamps: add ``timestamps`` to alternatives.
        end_of_phrase_silence_time_s: trailing silence that closes an utterance.
        customization_weight: weight of the custom language model, 0-1 (None = the model's own).
        keywords: phrases to spot in the finals (Watson: spotted only with ``keywords_threshold`` too).
        keywords_threshold: the least confidence of a spotted keyword, 0-1 (None: no spotting).
        word_alternatives_threshold: the least confidence of a word alternative, 0-1 (None: finals carry no
            ``word_alternatives``).
        low_latency: accepted for compatibility (voxgate is always low latency).
        warnings: what the client should be told about its options.
    """

    content_type: str | None = None
    interim_results: bool = False
    inactivity_timeout_s: int = 30
    max_alternatives: int = 1
    word_confidence: bool = False
    timestamps: bool = False
    end_of_phrase_silence_time_s: float = 0.8
    customization_weight: float | None = None
    keywords: tuple[str, ...] = ()
    keywords_threshold: float | None = None
    word_alternatives_threshold: float | None = None
    low_latency: bool = False
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def spots_keywords(self) -> bool:
        """Whether keyword spotting is on (both ``keywords`` and ``keywords_threshold`` given)."""
        return bool(self.keywords) and self.keywords_threshold is not None


_WIRE_NAMES = {"inactivity_timeout": "inactivity_timeout_s",
               "end_of_phrase_silence_time": "end_of_phrase_silence_time_s"}


def _bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise InvalidParameter(f"{name} must be a boolean (true or false), got {value!r}")


def _number(name: str, value: Any, *, integer: bool, low: float, high: float) -> float | int:
    try:
        if isinstance(value, bool):
            raise ValueError
        number = int(value) if integer else float(value)
        if integer and isinstance(value, float) and value != int(value):
            raise ValueError
    except (TypeError, ValueError):
        kind = "an integer" if integer else "a number"
        raise InvalidParameter(f"{name} must be {kind}, got {value!r}") from None
    if not low <= number <= high:
        raise InvalidParameter(f"{name} must be between {low:g} and {high:g}, got {value!r}")
    return number


def _option(name: str, value: Any) -> tuple[str, Any]:
    """Validate one wire option; return its attribute name and value."""
    if name in ("interim_results", "word_confidence", "timestamps", "low_latency"):
        return name, _bool(name, value)
    if name == "inactivity_timeout":
        seconds = _number(name, value, integer=True, low=-1, high=24 * 3600)
        return _WIRE_NAMES[name], seconds
    if name == "max_alternatives":
        return name, _number(name, value, integer=True, low=1, high=1000)
    if name == "end_of_phrase_silence_time":
        return _WIRE_NAMES[name], _number(name, value, integer=False, low=0.0, high=120.0)
    if name == "customization_weight":
        return name, _number(name, value, integer=False, low=0.0, high=1.0)
    if name in ("keywords_threshold", "word_alternatives_threshold"):
        return name, _number(name, value, integer=False, low=0.0, high=1.0)
    if name == "keywords":
        return name, _keywords(value)
    raise KeyError(name)


MAX_KEYWORDS = 1000
MAX_KEYWORD_CHARS = 1024


def _keywords(value: Any) -> tuple[str, ...]:
    """Watson's ``keywords``: a JSON list of strings, or (query string) a comma-separated list."""
    if isinstance(value, str):
        value = [k for k in value.split(",")]
    if not isinstance(value, list) or not all(isinstance(k, str) for k in value):
        raise InvalidParameter(f"keywords must be a list of strings, got {value!r}"[:200])
    keywords = tuple(dict.fromkeys(k.strip() for k in value if k.strip()))
    if len(keywords) > MAX_KEYWORDS:
        raise InvalidParameter(f"keywords: at most {MAX_KEYWORDS} keywords, got {len(keywords)}")
    for k in keywords:
        if len(k) > MAX_KEYWORD_CHARS:
            raise InvalidParameter(f"keywords: each at most {MAX_KEYWORD_CHARS} characters; {k[:40]!r}... is longer")
    return keywords


def _apply(previous: Options, items: Mapping[str, Any], skip: frozenset[str]) -> Options:
    changes: dict[str, Any] = {}
    unknown: list[str] = []
    ignored: list[str] = []
    for name, value in items.items():
        if name in skip:
            continue
        if name in ("content-type", "content_type"):
            if value is not None and not isinstance(value, str):
                raise InvalidParameter(f"{name} must be a string such as 'audio/l16;rate=16000', got {value!r}")
            changes["content_type"] = value.strip() if value and value.strip() else None
            continue
        if name in IGNORED_OPTIONS:
            ignored.append(name)
            continue
        try:
            attr, parsed = _option(name, value)
        except KeyError:
            unknown.append(name)
            continue
        changes[attr] = parsed
    warnings = []
    if unknown:
        warnings.append(f"Unknown arguments: {', '.join(sorted(unknown))}.")
    spotting = replace(previous, **{k: v for k, v in changes.items() if k in ("keywords", "keywords_threshold")})
    if bool(spotting.keywords) != (spotting.keywords_threshold is not None):
        warnings.append("Keyword spotting needs both keywords and keywords_threshold; no keywords are spotted.")
    if ignored:
        warnings.append(f"Arguments not supported by this server and ignored: {', '.join(sorted(ignored))}.")
    return replace(previous, **changes, warnings=tuple(warnings))


@dataclass(frozen=True)
class Start:
    """``{"action": "start", ...}``: begin a request with these options (merged over the previous ones)."""

    options: Options


@dataclass(frozen=True)
class Stop:
    """``{"action": "stop"}``: the end of the request's audio."""


def parse_control(text: str, previous: Options | None = None) -> Start | Stop:
    """Parse a client text frame.

    Args:
        text: the frame's text.
        previous: the options in force (a later start on the same connection only changes what it names).

    Raises:
        MalformedMessage: not a JSON object.
        InvalidParameter: a missing or unknown action, or an option with a wrong type or value.
    """
    try:
        message = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise MalformedMessage(f"text messages must be JSON objects; could not parse {text[:80]!r}") from exc
    if not isinstance(message, dict):
        raise MalformedMessage(f"text messages must be JSON objects, got {type(message).__name__}")
    action = message.get("action")
    if action == "stop":
        return Stop()
    if action != "start":
        raise InvalidParameter(f"action must be 'start' or 'stop', got {action!r}")
    return Start(_apply(previous or Options(), message, frozenset({"action"})))


#: Query parameters of ``POST /v1/recognize`` that select the model, not recognition options.
#: ``customization_id`` and ``version`` are the older names of ``language_customization_id`` and
#: ``base_model_version`` (Watson still documents ``?version=…&customization_id=…``).
MODEL_PARAMS = frozenset({"model", "language_customization_id", "customization_id", "acoustic_customization_id",
                          "base_model_version", "version", "access_token", "x-watson-metadata",
                          "x-watson-learning-opt-out"})


def model_param(params: Mapping[str, str], name: str, older: str) -> str | None:
    """A model-selecting parameter given under its name or its older name (None when neither is given).

    Raises:
        InvalidParameter: both names given, with different values.
    """
    value, old_value = params.get(name) or None, params.get(older) or None
    if value is not None and old_value is not None and value != old_value:
        raise InvalidParameter(f"{name}={value} and {older}={old_value} disagree; {older} is the older name of "
                               f"{name}: give one of them")
    return value or old_value


def parse_query_options(query: Mapping[str, str], content_type: str | None) -> Options:
    """The options of a sessionless request from its query string and Content-Type header.

    Raises:
        InvalidParameter: an option with a wrong type or value.
    """
    options = _apply(Options(), query, MODEL_PARAMS)
    return replace(options, content_type=content_type or None)


@dataclass(frozen=True)
class WordHypothesis:
    """One recognised word: text, start and end in seconds from the start of the request, confidence 0-1."""

    word: str
    start_s: float
    end_s: float
    confidence: float


@dataclass(frozen=True)
class WordSlot:
    """The competing words of one word of a final: its span in seconds and ``(word, confidence)`` pairs,
    most likely first."""

    start_s: float
    end_s: float
    alternatives: tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class Hypothesis:
    """One result: the words of an utterance, final or interim.

    Attributes:
        end_of_utterance: on finals, why the utterance ended (``end_of_data``, ``silence``, ``full_stop``, ``reset``).
        alternatives: on finals, next-best transcripts (``max_alternatives``), best first.
        word_slots: on finals, every word's competing words (``word_alternatives_threshold``), in order.
    """

    words: tuple[WordHypothesis, ...]
    final: bool
    end_of_utterance: str | None = None
    alternatives: tuple[str, ...] = ()
    word_slots: tuple[WordSlot, ...] = ()

    @property
    def confidence(self) -> float:
        """Mean word confidence (1.0 when there are no words)."""
        return sum(w.confidence for w in self.words) / len(self.words) if self.words else 1.0


def result_json(hypothesis: Hypothesis, options: Options) -> dict[str, Any]:
    """One ``SpeechRecognitionResult`` object."""
    words = hypothesis.words
    alternative: dict[str, Any] = {"transcript": "".join(f"{w.word} " for w in words)}
    if hypothesis.final:
        alternative["confidence"] = round(hypothesis.confidence, 4)
    if options.timestamps:
        alternative["timestamps"] = [[w.word, round(w.start_s, 2), round(w.end_s, 2)] for w in words]
    if options.word_confidence and hypothesis.final:
        alternative["word_confidence"] = [[w.word, round(w.confidence, 4)] for w in words]
    extra = [{"transcript": f"{t} "} for t in hypothesis.alternatives[: max(0, options.max_alternatives - 1)]]
    result: dict[str, Any] = {"final": hypothesis.final, "alternatives": [alternative, *extra]}
    if hypothesis.final and options.spots_keywords:
        result["keywords_result"] = spot_keywords(words, options.keywords, options.keywords_threshold or 0.0)
    if hypothesis.final and options.word_alternatives_threshold is not None:
        result["word_alternatives"] = word_alternatives_json(hypothesis.word_slots, options.word_alternatives_threshold)
    if hypothesis.final and hypothesis.end_of_utterance:
        result["end_of_utterance"] = hypothesis.end_of_utterance
    return result


def word_alternatives_json(slots: tuple[WordSlot, ...], threshold: float) -> list[dict[str, Any]]:
    """Watson's ``word_alternatives`` of one final: for each word slot with a word at or above
    ``threshold``, its ``start_time``, ``end_time`` and ``alternatives`` (``confidence``, ``word``),
    most likely first. Slots whose every word is below the threshold are left out."""
    out = []
    for slot in slots:
        kept = [{"confidence": round(c, 4), "word": w} for w, c in slot.alternatives if c >= threshold]
        if kept:
            out.append({"start_time": round(slot.start_s, 2), "end_time": round(slot.end_s, 2), "alternatives": kept})
    return out


def _key(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum() or ch == "'")


def spot_keywords(words: tuple[WordHypothesis, ...], keywords: tuple[str, ...], threshold: float) -> dict[str, list]:
    """Watson's ``keywords_result`` of one final: each keyword said in it, where and how sure.

    A keyword matches a run of the final's words equal to its words (case and punctuation aside);
    its ``confidence`` is the mean confidence of those words (on release v2026-12-01 Whisper's decoder's
    token probabilities) and only matches at or above ``threshold`` are kept. Keys are the keywords as given; keywords not spotted are left out, as Watson does.
    """
    spoken = [_key(w.word) for w in words]
    found: dict[str, list] = {}
    for keyword in keywords:
        parts = [p for p in (_key(x) for x in keyword.split()) if p]
        n = len(parts)
        if not n:
            continue
        for i in range(len(spoken) - n + 1):
            if spoken[i:i + n] != parts:
                continue
            run = words[i:i + n]
            confidence = sum(w.confidence for w in run) / n
            if confidence >= threshold:
                found.setdefault(keyword, []).append({
                    "normalized_text": " ".join(w.word for w in run), "start_time": round(run[0].start_s, 2),
                    "end_time": round(run[-1].end_s, 2), "confidence": round(confidence, 4)})
    return found


def results_message(result_index: int, hypotheses: list[Hypothesis], options: Options,
                    warnings: tuple[str, ...] = (), recognized_with: dict | None = None) -> str:
    """A ``SpeechRecognitionResults`` message.

    Args:
        result_index: index of the first result in ``hypotheses`` among the request's results.
        hypotheses: the results to send.
        options: the request's options (they decide timestamps and word confidences).
        warnings: added as ``warnings`` when not empty.
        recognized_with: the model versions used (a voxgate extension, ``recognized_with``), when given.
    """
    body: dict[str, Any] = {"result_index": result_index, "results": [result_json(h, options) for h in hypotheses]}
    if warnings:
        body["warnings"] = list(warnings)
    if recognized_with:
        body["recognized_with"] = recognized_with
    return json.dumps(body)


def listening_message() -> str:
    """``{"state": "listening"}``: sent after a valid start and after the last results of each request."""
    return json.dumps({"state": "listening"})


def error_message(message: str, warnings: tuple[str, ...] = ()) -> str:
    """``{"error": message}``: sent just before the server closes the connection."""
    body: dict[str, Any] = {"error": message}
    if warnings:
        body["warnings"] = list(warnings)
    return json.dumps(body)



# Client side: what a client sends, and the server's messages as a client reads them.

#: ``{"action": "stop"}``: the end of a request's audio.
STOP_MESSAGE = json.dumps({"action": "stop"})


def start_message(*, content_type: str | None, interim_results: bool, options: Mapping[str, Any] | None = None) -> str:
    """The ``start`` action: ``{"action": "start", "content-type": ..., "interim_results": ..., **options}``.

    Args:
        content_type: the audio's MIME type with parameters; None lets the server detect a container.
        interim_results: ask for hypotheses as they form.
        options: further start fields under their wire names (``inactivity_timeout``, ``timestamps``, ...).
    """
    body: dict[str, Any] = {"action": "start"}
    if content_type:
        body["content-type"] = content_type
    body["interim_results"] = interim_results
    body.update(options or {})
    return json.dumps(body)


@dataclass(frozen=True)
class ResultSummary:
    """One ``SpeechRecognitionResult`` as a client reads it.

    Attributes:
        final: whether the utterance is complete.
        transcript: the best alternative's transcript, as sent (with Watson's trailing space); "" with none.
    """

    final: bool
    transcript: str


@dataclass(frozen=True)
class Results:
    """``{"result_index": i, "results": [...]}``: ``result_index`` numbers the first of ``results``."""

    result_index: int
    results: tuple[ResultSummary, ...]
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Listening:
    """``{"state": "listening"}``: the start was accepted, or the request's last results were sent."""

    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Warnings:
    """A message of ``warnings`` alone."""

    warnings: tuple[str, ...]


@dataclass(frozen=True)
class ErrorReply:
    """``{"error": ...}``: the server failed the request and closes the connection next."""

    error: str
    warnings: tuple[str, ...] = ()


ServerMessage = Results | Listening | Warnings | ErrorReply


def parse_server_message(text: str) -> ServerMessage:
    """Parse a text frame from a Watson server (an ``error`` wins over anything else in it).

    Raises:
        MalformedMessage: not a JSON object; a state other than ``listening``; results that are not a list,
            a ``result_index`` that is not an integer, a result without ``final`` or
            ``alternatives[].transcript``; or neither results, a state, warnings nor an error.
    """
    try:
        body = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise MalformedMessage(f"the server sent text that is not JSON: {text[:80]!r}") from exc
    if not isinstance(body, dict):
        raise MalformedMessage(f"the server sent JSON that is not an object: {text[:80]!r}")
    raw_warnings = body.get("warnings", [])
    warnings = tuple(str(w) for w in raw_warnings) if isinstance(raw_warnings, list) else (str(raw_warnings),)
    if "error" in body:
        return ErrorReply(str(body["error"]), warnings)
    if "state" in body:
        if body["state"] != "listening":
            raise MalformedMessage(f"unknown state {body['state']!r} (expected 'listening')")
        return Listening(warnings)
    if "results" not in body:
        if warnings:
            return Warnings(warnings)
        raise MalformedMessage(f"the server sent neither results, a state nor an error: {text[:80]!r}")
    results, index = body["results"], body.get("result_index", 0)
    if not isinstance(results, list) or not isinstance(index, int):
        raise MalformedMessage(f"results must be a list and result_index an integer: {text[:80]!r}")
    return Results(index, tuple(_result_summary(r) for r in results), warnings)


def _result_summary(result: Any) -> ResultSummary:
    """One result's ``final`` and best transcript.

    Raises:
        MalformedMessage: no ``final``, or ``alternatives`` without a ``transcript``.
    """
    try:
        alternatives = result["alternatives"]
        transcript = alternatives[0]["transcript"] if alternatives else ""
        final = bool(result["final"])
    except (KeyError, IndexError, TypeError) as exc:
        raise MalformedMessage(f"a result without final or alternatives[].transcript: {result!r:.80}") from exc
    return ResultSummary(final, str(transcript))
