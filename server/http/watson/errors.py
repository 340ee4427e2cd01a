"""Watson's error answer and the caller's instance, for every Watson handler."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from aiohttp.typedefs import Handler

from protocol.errors import watson_error_body
from server.http.errors import dialect
from server.http.keys import AUTH


def watson_error(error: BaseException) -> web.Response:
    """An HTTP error response in the Watson shape (``{"code", "code_description", "error"}``)."""
    body = watson_error_body(error)
    return web.json_response(body, status=body["code"])


def watson(label: str) -> Callable[[Handler], Handler]:
    """Mark a Watson handler: its errors are answered in the Watson shape and counted under ``label``."""
    return dialect(watson_error, label)


def instance(request: web.Request) -> str:
    """The caller's instance, from its API key.

    Raises:
        AuthenticationError: no key, or a wrong one (401).
    """
    return request.app[AUTH].api_key_instance(request.headers, request.query)
