"""The recognition session state machine of the Watson WebSocket (sans-I/O).

::

    IDLE ──start──► LISTENING ──stop / empty binary──► STOPPING ──request_done()──► IDLE
      │                 │ audio                            │
      └──── close() ────┴──────────────────────────────────┴──► CLOSED

The socket handler feeds it frames (:meth:`RecognizeSession.receive_text`,
:meth:`RecognizeSession.receive_audio`) and acts on the events that come
back; it calls :meth:`RecognizeSession.request_done` once the request's
final results are sent, and sends the ``{"state": "listening"}`` it returns.
Options persist across requests on one connection (PROTOCOLS.md §1.2).
A message the current phase does not allow raises :class:`IllegalState`
naming the phase; sizes over the limits raise :class:`TooLarge`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from protocol.errors import IllegalState, InvalidParameter, TooLarge
from protocol.watson import Options, Start, Stop, listening_message, parse_control

MAX_FRAME_BYTES = 4 * 1024 * 1024
MAX_REQUEST_BYTES = 100 * 1024 * 1024
MIN_REQUEST_BYTES = 100


class Phase(Enum):
    """Where a recognition session is."""

    IDLE = "idle"
    LISTENING = "listening"
    STOPPING = "stopping"
    CLOSED = "closed"


@dataclass(frozen=True)
class RequestStarted:
    """A valid start: send ``listening``, then recognise with these options."""

    options: Options


@dataclass(frozen=True)
class AudioReceived:
    """Audio bytes for the open request."""

    data: bytes


@dataclass(frozen=True)
class AudioEnded:
    """The request's audio is complete: flush its finals, then call :meth:`RecognizeSession.request_done`."""


Event = RequestStarted | AudioReceived | AudioEnded


class RecognizeSession:
    """One Watson WebSocket connection's protocol state.

    Args:
        max_frame_bytes: largest binary frame accepted (Watson: 4 MB).
        max_request_bytes: most audio bytes in one request (Watson: 100 MB).
    """

    def __init__(self, *, max_frame_bytes: int = MAX_FRAME_BYTES, max_request_bytes: int = MAX_REQUEST_BYTES) -> None:
        self.max_frame_bytes = max_frame_bytes
        self.max_request_bytes = max_request_bytes
        self.phase = Phase.IDLE
        self.options = Options()
        self.request_bytes = 0
        self.requests = 0

    def _expect(self, *phases: Phase, doing: str) -> None:
        if self.phase not in phases:
            raise IllegalState(f"cannot {doing} while the session is {self.phase.value}")

    def receive_text(self, text: str) -> list[Event]:
        """A text frame: a start or stop action.

        Raises:
            MalformedMessage, InvalidParameter: a bad message.
            IllegalState: a start while a request is open, a stop with none open.
        """
        message = parse_control(text, self.options)
        if isinstance(message, Start):
            if self.phase is Phase.LISTENING:
                raise IllegalState("cannot start a request while one is open; send {\"action\": \"stop\"} first")
            self._expect(Phase.IDLE, doing="start a request")
            self.options = message.options
            self.phase = Phase.LISTENING
            self.request_bytes = 0
            self.requests += 1
            return [RequestStarted(message.options)]
        assert isinstance(message, Stop)
        self._expect(Phase.LISTENING, doing="stop (no request is open)")
        return self._end()

    def receive_audio(self, data: bytes) -> list[Event]:
        """A binary frame: audio, or the end of the request when empty.

        Raises:
            IllegalState: audio with no open request.
            TooLarge: a frame or a request over its limit.
        """
        if len(data) > self.max_frame_bytes:
            raise TooLarge(f"audio frame of {len(data)} bytes exceeds the limit of {self.max_frame_bytes} bytes")
        self._expect(Phase.LISTENING, doing="take audio (send a start message first)")
        if not data:
            return self._end()
        self.request_bytes += len(data)
        if self.request_bytes > self.max_request_bytes:
            raise TooLarge(f"the request's audio exceeds the limit of {self.max_request_bytes} bytes")
        return [AudioReceived(data)]

    def _end(self) -> list[Event]:
        if self.request_bytes < MIN_REQUEST_BYTES:
            raise InvalidParameter(f"Stream was {self.request_bytes} bytes but needs to be at least "
                                   f"{MIN_REQUEST_BYTES} bytes.")
        self.phase = Phase.STOPPING
        return [AudioEnded()]

    def request_done(self) -> str:
        """The request's finals are sent: back to idle; return the ``listening`` message to send.

        Raises:
            IllegalState: when no request was stopping.
        """
        self._expect(Phase.STOPPING, doing="finish a request")
        self.phase = Phase.IDLE
        return listening_message()

    def close(self) -> None:
        """The connection is closing; nothing more is accepted."""
        self.phase = Phase.CLOSED
