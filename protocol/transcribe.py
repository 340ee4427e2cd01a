"""Amazon Transcribe streaming messages (sans-I/O): parameters, AudioEvents in, TranscriptEvents out.

Both Transcribe routes speak the same event stream (PROTOCOLS.md §2): the
presigned WebSocket (parameters in the query) and ``POST
/stream-transcription`` (parameters in ``x-amzn-transcribe-*`` headers,
HTTP/1.1 chunked both ways). :class:`TranscribeSession` turns received bytes
into audio events, whether a frame holds one message, part of one, or
several; an AudioEvent with an empty payload ends the stream. Signed
envelopes (``:date`` + ``:chunk-signature`` around an AudioEvent, sent by
the HTTP/2 SDKs) are unwrapped; their chunk signatures are not checked —
the request itself is authenticated before the stream starts.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from protocol.errors import IllegalState, InvalidParameter, MalformedMessage, TooLarge, VoxgateError, public_message
from protocol.eventstream import EventStreamDecoder, Message
from protocol.session import AudioEnded, AudioReceived, Phase
from protocol.stability import Stability
from protocol.watson import WordHypothesis

MEDIA_ENCODINGS = {"pcm": "audio/l16;rate={rate};endianness=little-endian", "flac": "audio/flac",
                   "ogg-opus": "audio/ogg;codecs=opus"}
UNSUPPORTED_PARAMS = ("vocabulary-name", "vocabulary-filter-name", "vocabulary-names", "vocabulary-filter-names")
MAX_AUDIO_EVENT_BYTES = 1024 * 1024


@dataclass(frozen=True)
class StreamParams:
    """The parameters of a Transcribe stream.

    Attributes:
        language_code: e.g. ``en-US``.
        media_encoding: ``pcm`` (signed 16-bit little-endian), ``flac`` or ``ogg-opus``.
        sample_rate_hz: the audio's rate.
        session_id: the client's session id, or a fresh UUID.
        language_model_name: a custom language model, or None.
        stabilization: ``enable-partial-results-stabilization``.
        stability: ``partial-results-stability`` (``high`` when stabilisation is on and it is not given).
    """

    language_code: str
    media_encoding: str
    sample_rate_hz: int
    session_id: str
    language_model_name: str | None = None
    stabilization: bool = False
    stability: Stability = Stability.HIGH

    @property
    def content_type(self) -> str:
        """The MIME type of the audio, for the decoder."""
        return MEDIA_ENCODINGS[self.media_encoding].format(rate=self.sample_rate_hz)

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> StreamParams:
        """Read parameters named as in the query string (``language-code``, ``media-encoding``, ...).

        Raises:
            InvalidParameter: a missing, malformed or unsupported parameter.
        """
        for name in ("language-code", "media-encoding", "sample-rate"):
            if not params.get(name):
                raise InvalidParameter(f"the {name} parameter is required")
        encoding = params["media-encoding"]
        if encoding not in MEDIA_ENCODINGS:
            raise InvalidParameter(f"media-encoding must be one of {', '.join(MEDIA_ENCODINGS)}, got {encoding!r}")
        try:
            rate = int(params["sample-rate"])
        except ValueError:
            raise InvalidParameter(f"sample-rate must be an integer, got {params['sample-rate']!r}") from None
        if not 8000 <= rate <= 48000:
            raise InvalidParameter(f"sample-rate must be between 8000 and 48000 Hz, got {rate}")
        for name in UNSUPPORTED_PARAMS:
            if params.get(name):
                raise InvalidParameter(f"{name} is not supported by this server")
        stabilization = params.get("enable-partial-results-stabilization", "false").lower()
        if stabilization not in ("true", "false"):
            raise InvalidParameter(f"enable-partial-results-stabilization must be true or false, got {stabilization!r}")
        level = params.get("partial-results-stability") or Stability.HIGH.value
        if level not in tuple(Stability):
            raise InvalidParameter(f"partial-results-stability must be low, medium or high, got {level!r}")
        session_id = params.get("session-id") or str(uuid.uuid4())
        try:
            uuid.UUID(session_id)
        except ValueError:
            raise InvalidParameter(f"session-id must be a UUID, got {session_id!r}") from None
        return cls(params["language-code"], encoding, rate, session_id, params.get("language-model-name") or None,
                   stabilization == "true", Stability(level))

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> StreamParams:
        """Read ``x-amzn-transcribe-*`` headers (and the older ``x-amzn-language-model-name``).

        Raises:
            InvalidParameter: as :meth:`parse`.
        """
        params = {}
        for name, value in headers.items():
            lower = name.lower()
            if lower.startswith("x-amzn-transcribe-"):
                params[lower.removeprefix("x-amzn-transcribe-")] = value
        if "language-model-name" not in params and headers.get("x-amzn-language-model-name"):
            params["language-model-name"] = headers["x-amzn-language-model-name"]
        return cls.parse(params)


def _audio_payload(message: Message) -> bytes:
    """The audio of an AudioEvent, unwrapping a signed envelope first."""
    if message.header(":chunk-signature") is not None:
        if not message.payload:
            return b""  # the signed end-of-stream frame
        message = Message.decode(message.payload)
    kind = message.header(":message-type")
    event = message.header(":event-type")
    if kind != "event" or event != "AudioEvent":
        raise InvalidParameter(f"expected an AudioEvent message, got :message-type={kind!r} :event-type={event!r}")
    content_type = message.header(":content-type")
    if content_type not in (None, "application/octet-stream"):
        raise InvalidParameter(f"AudioEvent :content-type must be application/octet-stream, got {content_type!r}")
    if len(message.payload) > MAX_AUDIO_EVENT_BYTES:
        raise TooLarge(f"AudioEvent of {len(message.payload)} bytes exceeds {MAX_AUDIO_EVENT_BYTES} bytes "
                       "(send at most one second of audio per event)")
    return message.payload


class TranscribeSession:
    """The protocol state of one Transcribe stream: bytes in, audio events out.

    Phases: LISTENING until the empty AudioEvent, then STOPPING; CLOSED after :meth:`close`.
    """

    def __init__(self, *, max_request_bytes: int) -> None:
        self.phase = Phase.LISTENING
        self.max_request_bytes = max_request_bytes
        self.audio_bytes = 0
        self._decoder = EventStreamDecoder()

    def receive_bytes(self, data: bytes) -> list[AudioReceived | AudioEnded]:
        """Bytes of the event stream (any split); return the audio events they complete.

        Raises:
            MalformedMessage: bad event-stream bytes (CRC, lengths, headers).
            InvalidParameter: a message that is not an AudioEvent.
            IllegalState: data after the end of the stream.
            TooLarge: an event or the stream over its limit.
        """
        if self.phase is not Phase.LISTENING:
            raise IllegalState(f"cannot take audio while the stream is {self.phase.value}")
        events: list[AudioReceived | AudioEnded] = []
        for message in self._decoder.feed(data):
            if self.phase is not Phase.LISTENING:
                raise IllegalState("a message arrived after the empty AudioEvent that ended the stream")
            payload = _audio_payload(message)
            if not payload:
                self.phase = Phase.STOPPING
                events.append(AudioEnded())
                continue
            self.audio_bytes += len(payload)
            if self.audio_bytes > self.max_request_bytes:
                raise TooLarge(f"the stream's audio exceeds the limit of {self.max_request_bytes} bytes")
            events.append(AudioReceived(payload))
        return events

    def receive_eof(self) -> None:
        """The transport ended. Raises MalformedMessage if a message was cut off."""
        if self._decoder.buffered:
            raise MalformedMessage(f"the stream ended inside a message ({self._decoder.buffered} bytes left over)")

    def close(self) -> None:
        """Nothing more is accepted."""
        self.phase = Phase.CLOSED


def transcript_event(*, result_id: str, start_s: float, end_s: float, partial: bool,
                     words: tuple[WordHypothesis, ...], stable: tuple[bool, ...] | None = None) -> bytes:
    """An encoded TranscriptEvent with one result (PROTOCOLS.md §2.4; lists are never null).

    ``stable``: each word's ``Stable`` flag, with partial-results stabilisation on
    (:class:`protocol.stability.PartialStabilizer`); None leaves ``Stable`` out, as Transcribe does without it.
    """
    if stable is not None and len(stable) != len(words):
        raise ValueError(f"{len(stable)} Stable flags for {len(words)} words")
    items = [{"Content": w.word, "StartTime": round(w.start_s, 3), "EndTime": round(w.end_s, 3),
              "Type": "pronunciation", "VocabularyFilterMatch": False, "Confidence": round(w.confidence, 4)}
             for w in words]
    for item, flag in zip(items, stable or ()):
        item["Stable"] = flag
    body = {"Transcript": {"Results": [{
        "ResultId": result_id, "StartTime": round(start_s, 3), "EndTime": round(end_s, 3), "IsPartial": partial,
        "Alternatives": [{"Transcript": " ".join(w.word for w in words), "Items": items}]}]}}
    return Message.build({":message-type": "event", ":event-type": "TranscriptEvent",
                          ":content-type": "application/json"}, json.dumps(body).encode()).encode()


def exception_event(error: BaseException) -> bytes:
    """An encoded exception message: ``:exception-type`` from the error tree, ``{"Message": ...}``."""
    kind = error.aws_type if isinstance(error, VoxgateError) else "InternalFailureException"
    return Message.build({":message-type": "exception", ":exception-type": kind, ":content-type": "application/json"},
                         json.dumps({"Message": public_message(error)}).encode()).encode()
