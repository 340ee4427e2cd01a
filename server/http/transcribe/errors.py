"""Amazon Transcribe's error answers: the streaming routes' ``x-amzn-errortype`` and the JSON 1.1 ``__type`` body."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from aiohttp.typedefs import Handler

from protocol.errors import http_status_for, public_message
from protocol.transcribe_api import error_response
from server.http.errors import dialect


def aws_error(error: BaseException) -> web.Response:
    """An HTTP error in Amazon's shape: the status, ``x-amzn-errortype`` and ``{"Message": ...}``."""
    kind = getattr(error, "aws_type", "InternalFailureException")
    return web.json_response({"Message": public_message(error)}, status=http_status_for(error),
                             headers={"x-amzn-errortype": kind})


def transcribe(label: str) -> Callable[[Handler], Handler]:
    """Mark a Transcribe handler: its errors are answered in Amazon's shape and counted under ``label``."""
    return dialect(aws_error, label)


def json_error(error: BaseException) -> web.Response:
    """An error of the JSON 1.1 control plane: ``{"__type", "Message"}`` with the status of its type.

    The operation, when the handler knew it, rides on the exception as ``transcribe_operation``
    (:mod:`server.http.transcribe.control` sets it): a type the operation does not declare is sent as
    ``BadRequestException``, as the service model would have it.
    """
    answer = error_response(error, getattr(error, "transcribe_operation", None))
    return web.Response(body=answer.serialize(), status=answer.status, headers=answer.headers)


def transcribe_json(label: str) -> Callable[[Handler], Handler]:
    """Mark a JSON 1.1 handler: its errors are answered by :func:`json_error`, counted under ``label``."""
    return dialect(json_error, label)
