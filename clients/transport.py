"""The WebSocket under both dialects: connect, send and receive, with aiohttp's errors mapped to :mod:`clients.errors`.

aiohttp reports one failure in many shapes (``ClientConnectorError``,
``WSServerHandshakeError``, ``ConnectionResetError`` on a closing transport,
a ``CLOSE`` message, an ``ERROR`` message); the dialects and the load
generator only want to know which of the kinds in :mod:`clients.errors` it was.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Mapping
from http import HTTPStatus
from typing import TypeVar

import aiohttp
from yarl import URL

from clients.errors import BadInput, ConnectFailed, HandshakeRejected, UnexpectedClose

#: Frames up to the protocol's own limit (4 MB) plus headroom; results are small, but a server may batch them.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
T = TypeVar("T")
_CLOSED = (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED)


def run_event_loop(main: Coroutine[object, object, T]) -> T:
    """Run `main` to completion on uvloop when it is installed (asyncio's own loop otherwise).

    A load generator shares the machine with the server it measures; uvloop's
    cheaper I/O leaves more of the CPU to the server and keeps the send schedule.
    """
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def new_session() -> aiohttp.ClientSession:
    """A client session without aiohttp's default cap of 100 connections (a load test opens hundreds)."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))


async def connect(session: aiohttp.ClientSession, url: URL, *, headers: Mapping[str, str] | None = None,
                  timeout_s: float = 30.0) -> aiohttp.ClientWebSocketResponse:
    """Open a WebSocket.

    Raises:
        BadInput: a URL aiohttp cannot use.
        HandshakeRejected: the server answered with an HTTP status instead of switching protocols.
        ConnectFailed: refused, unresolvable, reset, or no handshake within `timeout_s`.
    """
    try:
        async with asyncio.timeout(timeout_s):
            return await session.ws_connect(url, headers=dict(headers or {}), max_msg_size=MAX_MESSAGE_BYTES,
                                            autoping=True)
    except aiohttp.WSServerHandshakeError as exc:
        # aiohttp's own message ("Invalid response status") says nothing the status does not.
        try:
            phrase = f" {HTTPStatus(exc.status).phrase}"
        except ValueError:
            phrase = ""
        message = f"the server refused the WebSocket upgrade: HTTP {exc.status}{phrase}"
        raise HandshakeRejected(exc.status, message) from exc
    except aiohttp.InvalidURL as exc:
        raise BadInput(f"bad URL {url}: {exc}") from exc
    except TimeoutError:
        raise ConnectFailed(f"no WebSocket handshake with {url} within {timeout_s:g} s") from None
    except (aiohttp.ClientError, OSError) as exc:
        raise ConnectFailed(f"cannot connect to {url}: {_describe(exc)}") from exc


def _describe(exc: BaseException) -> str:
    """A short reason: ``connection refused`` rather than aiohttp's full repr."""
    os_error = exc.os_error if isinstance(exc, aiohttp.ClientConnectorError) else exc
    if isinstance(os_error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(os_error, OSError) and os_error.strerror:
        return os_error.strerror.lower()
    return str(exc) or type(exc).__name__


async def send(ws: aiohttp.ClientWebSocketResponse, data: bytes | str) -> None:
    """Send one binary or text frame.

    Raises:
        UnexpectedClose: the socket is closing or closed.
    """
    try:
        if isinstance(data, str):
            await ws.send_str(data)
        else:
            await ws.send_bytes(data)
    except (ConnectionError, aiohttp.ClientError) as exc:
        raise UnexpectedClose(ws.close_code, f"the connection closed while sending: {_describe(exc)}") from exc


async def receive(ws: aiohttp.ClientWebSocketResponse) -> aiohttp.WSMessage:
    """The next text or binary message.

    Raises:
        UnexpectedClose: a close frame (with its code) or a dropped connection; the caller decides
            whether a close at this point is normal (by catching the error and checking its code).
    """
    msg = await ws.receive()
    if msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
        return msg
    if msg.type in _CLOSED:
        code = ws.close_code
        reason = f" ({msg.extra})" if msg.type == aiohttp.WSMsgType.CLOSE and msg.extra else ""
        raise UnexpectedClose(code, f"the server closed the connection with code {code}{reason}")
    raise UnexpectedClose(None, f"the connection failed: {_describe(msg.data) if msg.data else msg.type.name}")


async def close(ws: aiohttp.ClientWebSocketResponse) -> None:
    """Close with 1000 (normal), ignoring a peer that is already gone."""
    try:
        await ws.close()
    except (ConnectionError, aiohttp.ClientError):
        pass
