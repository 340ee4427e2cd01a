"""One place where a failed request becomes its dialect's answer: the error middleware.

A handler raises; it does not answer errors itself. :func:`dialect` marks a handler with the
function that renders a :class:`~protocol.errors.VoxgateError` in its dialect's body and status
(Watson's ``{"error", "code"}``, Transcribe's ``x-amzn-errortype``) and the label its errors are
counted under; :func:`errors` catches what the handler raised, counts it and renders it. Anything
else is a server fault: logged with its traceback, answered as a 500 in the dialect's shape without
internals. (A WebSocket handler, once upgraded, reports errors on its socket: 1011 for faults.)
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiohttp import web
from aiohttp.typedefs import Handler

from protocol.errors import VoxgateError
from server.http.keys import METRICS

log = logging.getLogger("voxgate.server")

Render = Callable[[BaseException], web.Response]


def dialect(render: Render, label: str) -> Callable[[Handler], Handler]:
    """Mark a handler: its errors are rendered by ``render`` and counted under ``label``."""
    def mark(handler: Handler) -> Handler:
        handler.error_render = render  # type: ignore[attr-defined]
        handler.error_label = label  # type: ignore[attr-defined]
        return handler
    return mark


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Render the errors of handlers marked with :func:`dialect` (others' errors pass through)."""
    route_handler = request.match_info.handler
    render: Render | None = getattr(route_handler, "error_render", None)
    if render is None:
        return await handler(request)
    try:
        return await handler(request)
    except VoxgateError as exc:
        request.app[METRICS].errors.labels(route_handler.error_label, type(exc).__name__).inc()
        return render(exc)
    except (web.HTTPException, ConnectionError):
        raise  # aiohttp's own answers; a gone client is client_disconnects' to log
    except Exception as exc:  # noqa: BLE001 - the peer gets a 500 and no internals; the log gets the detail
        log.exception("unexpected error in %s %s", request.method, request.path)
        request.app[METRICS].errors.labels(route_handler.error_label, type(exc).__name__).inc()
        return render(exc)  # renderers answer a non-VoxgateError with 500 and protocol.errors.public_message
