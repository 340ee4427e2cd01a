"""What can go wrong on the client side of a recognition request.

::

    ClientError             kind
    ├── BadInput            "bad input"       a missing file, an audio format or URL the client cannot use
    ├── ConnectFailed       "connect failed"  refused, unresolvable or reset before the handshake
    ├── HandshakeRejected   "http STATUS"     the server answered the upgrade with an HTTP error (503: full)
    ├── ServerError         "server error"    ``{"error": ...}`` (Watson); a Transcribe exception by its type
    ├── UnexpectedClose     "close CODE"      the socket closed before the request's results were complete
    ├── ResponseTimeout     "timeout"         no end of results within the deadline after the end of audio
    └── BadServerMessage    "bad message"     a message the dialect does not allow

:attr:`ClientError.kind` is the short label a load test counts errors by.
"""

from __future__ import annotations


class ClientError(Exception):
    """Base of every error the client library raises."""

    kind = "client error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadInput(ClientError):
    """An argument, URL or audio file the client cannot use; the message says what was expected."""

    kind = "bad input"


class ConnectFailed(ClientError):
    """No connection: refused, unresolvable host, or reset before the WebSocket handshake finished."""

    kind = "connect failed"


class HandshakeRejected(ClientError):
    """The server answered the WebSocket upgrade with an HTTP error status.

    Attributes:
        status: the HTTP status (503 when the server has no room for another session).
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status

    @property
    def kind(self) -> str:  # type: ignore[override]
        """``http STATUS``, so that a load test tells "full" (503) from "unauthorised" (401)."""
        return f"http {self.status}"


class ServerError(ClientError):
    """The server reported an error in the dialect's own way.

    Attributes:
        error_type: the Transcribe ``:exception-type`` (e.g. ``LimitExceededException``), or None for Watson.
    """

    def __init__(self, message: str, error_type: str | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type

    @property
    def kind(self) -> str:  # type: ignore[override]
        """The Transcribe exception type (``LimitExceededException``, ...), or ``server error``."""
        return self.error_type or "server error"


class UnexpectedClose(ClientError):
    """The WebSocket closed before the request's results were complete.

    Attributes:
        code: the close code (None when the connection dropped without a close frame).
    """

    def __init__(self, code: int | None, message: str) -> None:
        super().__init__(message)
        self.code = code

    @property
    def kind(self) -> str:  # type: ignore[override]
        """``close CODE``, or ``connection lost`` without a close frame."""
        return f"close {self.code}" if self.code is not None else "connection lost"


class ResponseTimeout(ClientError):
    """The server did not finish the request's results within the deadline after the end of audio."""

    kind = "timeout"


class BadServerMessage(ClientError):
    """The server sent a message that its dialect does not allow (not JSON, a binary frame on Watson, ...)."""

    kind = "bad message"
