"""Reading a WebSocket of an admitted session: the next message, or None once the server is shutting down."""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import WSMessage, web

from server.runtime.sessions import Admission


async def receive(admission: Admission, ws: web.WebSocketResponse, timeout_s: float,
                  interrupt: asyncio.Event | None = None) -> WSMessage | None:
    """The next message, or None when the server began shutting down (or ``interrupt`` was set) first, so the
    handler itself (the only task reading its socket) flushes its finals and closes with 1012.

    Raises:
        TimeoutError: no message within ``timeout_s``.
    """
    events = [admission.stopping] + ([interrupt] if interrupt is not None else [])
    if any(e.is_set() for e in events):
        return None
    receiving = asyncio.ensure_future(ws.receive(timeout=timeout_s))
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait({receiving, *waiters}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
    if receiving.done():
        return receiving.result()
    # aiohttp's receive() may be cancelled; let it unwind so the socket is usable for close().
    receiving.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await receiving
    return None
