"""Amazon Transcribe's error answer, for every Transcribe handler."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from aiohttp.typedefs import Handler

from protocol.errors import http_status_for, public_message
from server.http.errors import dialect


def aws_error(error: BaseException) -> web.Response:
    """An HTTP error in Amazon's shape: the status, ``x-amzn-errortype`` and ``{"Message": ...}``."""
    kind = getattr(error, "aws_type", "InternalFailureException")
    return web.json_response({"Message": public_message(error)}, status=http_status_for(error),
                             headers={"x-amzn-errortype": kind})


def transcribe(label: str) -> Callable[[Handler], Handler]:
    """Mark a Transcribe handler: its errors are answered in Amazon's shape and counted under ``label``."""
    return dialect(aws_error, label)
