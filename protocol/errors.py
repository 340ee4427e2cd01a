"""The error tree of voxgate's wire protocols.

::

    VoxgateError                      1011 / 500  unexpected condition (details stay in the log)
    ├── ProtocolError                 1002 / 400  a message that breaks the protocol
    │   ├── MalformedMessage          1002 / 400  undecodable JSON or event-stream bytes
    │   ├── InvalidParameter          1002 / 400  a field with a wrong type or value
    │   └── IllegalState              1002 / 400  a message the session's state does not allow
    ├── AuthenticationError           1008 / 401  missing, unknown or bad credentials / signature
    ├── ForbiddenError                1008 / 403  valid credentials that may not do this
    ├── NotFoundError                 1008 / 404  unknown model or custom model
    ├── ConflictError                 1008 / 409  the resource is busy (training, upgrading, ...)
    ├── UnsupportedMedia              1003 / 415  an audio format we do not decode
    ├── TooLarge                      1009 / 413  a frame over 4 MB or a request over 100 MB
    ├── LimitExceeded                 1013 / 503  no capacity for another session right now
    ├── Timeout                       1000 / 408  inactivity or session time limit reached
    └── ShuttingDown                  1012 / 503  the server is restarting

Each class names its WebSocket close code (RFC 6455 §7.4.1) and HTTP status;
:func:`close_code_for` and :func:`http_status_for` are the single mapping.
"""

from __future__ import annotations

from enum import IntEnum


class CloseCode(IntEnum):
    """WebSocket close codes (RFC 6455 §7.4.1, IANA registry)."""

    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013


class VoxgateError(Exception):
    """Base of every error voxgate reports to a peer."""

    close_code: CloseCode = CloseCode.INTERNAL_ERROR
    http_status: int = 500
    #: The Transcribe exception type (``:exception-type``) for the event-stream dialect.
    aws_type: str = "InternalFailureException"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ProtocolError(VoxgateError):
    """A message that breaks the protocol."""

    close_code, http_status, aws_type = CloseCode.PROTOCOL_ERROR, 400, "BadRequestException"


class MalformedMessage(ProtocolError):
    """Bytes or text that cannot be decoded as the expected message."""


class InvalidParameter(ProtocolError):
    """A field with a wrong type or value; the message names the field, what was expected and what came."""


class IllegalState(ProtocolError):
    """A message that the session's current state does not allow."""


class AuthenticationError(VoxgateError):
    """Missing, unknown or bad credentials, or a bad signature."""

    close_code, http_status, aws_type = CloseCode.POLICY_VIOLATION, 401, "UnrecognizedClientException"


class ForbiddenError(VoxgateError):
    """Valid credentials that may not perform this operation."""

    close_code, http_status, aws_type = CloseCode.POLICY_VIOLATION, 403, "AccessDeniedException"


class NotFoundError(VoxgateError):
    """An unknown model, version or custom model."""

    close_code, http_status, aws_type = CloseCode.POLICY_VIOLATION, 404, "BadRequestException"


class ConflictError(VoxgateError):
    """A resource that is busy with another request."""

    close_code, http_status, aws_type = CloseCode.POLICY_VIOLATION, 409, "ConflictException"


class UnsupportedMedia(VoxgateError):
    """An audio format that voxgate does not decode."""

    close_code, http_status, aws_type = CloseCode.UNSUPPORTED_DATA, 415, "BadRequestException"


class TooLarge(VoxgateError):
    """A frame or request over its size limit."""

    close_code, http_status, aws_type = CloseCode.MESSAGE_TOO_BIG, 413, "BadRequestException"


class LimitExceeded(VoxgateError):
    """No capacity for another session right now; try again later."""

    close_code, http_status, aws_type = CloseCode.TRY_AGAIN_LATER, 503, "LimitExceededException"


class Timeout(VoxgateError):
    """An inactivity or session time limit was reached."""

    close_code, http_status, aws_type = CloseCode.NORMAL, 408, "BadRequestException"


class ShuttingDown(VoxgateError):
    """The server is restarting; finals were flushed."""

    close_code, http_status, aws_type = CloseCode.SERVICE_RESTART, 503, "ServiceUnavailableException"


_REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 408: "Request Timeout",
            409: "Conflict", 413: "Payload Too Large", 415: "Unsupported Media Type", 500: "Internal Server Error",
            503: "Service Unavailable"}


def close_code_for(error: BaseException) -> CloseCode:
    """The WebSocket close code for any exception (unexpected ones are 1011)."""
    return error.close_code if isinstance(error, VoxgateError) else CloseCode.INTERNAL_ERROR


def http_status_for(error: BaseException) -> int:
    """The HTTP status for any exception (unexpected ones are 500)."""
    return error.http_status if isinstance(error, VoxgateError) else 500


def public_message(error: BaseException) -> str:
    """What the peer may see: our own message, never an unexpected exception's internals."""
    return error.message if isinstance(error, VoxgateError) else "Internal error: the server could not process the request."


def watson_error_body(error: BaseException) -> dict:
    """The Watson HTTP error body: ``{"code", "code_description", "error"}``."""
    status = http_status_for(error)
    return {"code": status, "code_description": _REASONS.get(status, "Error"), "error": public_message(error)}
