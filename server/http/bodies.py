"""Reading a request body: size-limited, with an inactivity timeout (issue 13, defect 5: slow-loris), a
minimum size where one applies, and one answer to a multipart body where the audio must be the body.

Every route that reads a body as a stream — sessionless recognition, jobs, Transcribe's HTTP
stream, audio resources — takes it through :func:`body_chunks`, so a client that opens a request
and then sends nothing (or a byte now and then, too slowly to matter) cannot hold a session slot
for longer than the server's ``session_timeout_s`` between two reads, and a body announced larger
than the limit is refused from its ``Content-Length`` before a byte of it is read.

A client that resets or closes its connection before the body has arrived (issue 13) is an expected
event, not a server fault: :func:`body_chunks` raises :class:`ClientDisconnected`, every handler lets it
pass (its ``with`` blocks give the session slot back; no route stores a partial body, since each keeps
the body in memory until it is complete), and the :func:`client_disconnects` middleware ends the request
with one INFO line and status 499 in the access log instead of aiohttp's ERROR traceback and a 500.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web
from aiohttp.typedefs import Handler

from protocol.errors import InvalidParameter, Timeout, TooLarge, UnsupportedMedia

log = logging.getLogger("voxgate.server")

CHUNK_BYTES = 64 * 1024
#: nginx's status for a request whose client went away before it was answered ("client closed request").
CLIENT_CLOSED_REQUEST = 499


class ClientDisconnected(ConnectionResetError):
    """The client reset or closed its connection before its request's body had arrived.

    Not a :class:`~protocol.errors.VoxgateError`: those are reported to the peer, and this peer is gone.
    Handlers let it propagate to :func:`client_disconnects`.
    """


def refuse_multipart(content_type: str | None) -> None:
    """Audio is sent as the body itself, with its own Content-Type; every route answers a multipart body alike.

    Raises:
        UnsupportedMedia: a ``multipart/*`` body (415).
    """
    if content_type and content_type.strip().lower().startswith("multipart/"):
        raise UnsupportedMedia("multipart requests are not supported; send the audio as the body with its "
                               "Content-Type and the options as query parameters")


async def body_chunks(request: web.Request, *, limit_bytes: int, idle_timeout_s: float,
                      what: str = "the request's audio", minimum: int = 0) -> AsyncIterator[bytes]:
    """The body's chunks as they arrive.

    Args:
        request: the request whose body to read.
        limit_bytes: the most bytes allowed.
        idle_timeout_s: the longest wait for the next bytes.
        what: how the error messages name the body.
        minimum: the fewest bytes a complete body may have (the Watson rule for audio: 100).

    Raises:
        TooLarge: ``Content-Length`` or the bytes so far exceed ``limit_bytes``.
        Timeout: no byte arrived for ``idle_timeout_s``.
        InvalidParameter: the body ended with fewer than ``minimum`` bytes.
        ClientDisconnected: the client reset or closed the connection before the body ended.
    """
    if request.content_length is not None and request.content_length > limit_bytes:
        raise TooLarge(f"{what} exceeds the limit of {limit_bytes} bytes (Content-Length {request.content_length})")
    received = 0
    while True:
        try:
            async with asyncio.timeout(idle_timeout_s):
                chunk = await request.content.read(CHUNK_BYTES)
        except TimeoutError:
            raise Timeout(f"no data for {idle_timeout_s:g} s while reading {what}: the request was closed") from None
        except ConnectionError as exc:  # aiohttp hands the transport's error (or "Connection lost") to the reader
            raise ClientDisconnected(f"connection closed after {received} bytes of {what} ({exc})") from exc
        if not chunk:
            if received < minimum:
                raise InvalidParameter(f"Stream was {received} bytes but needs to be at least {minimum} bytes.")
            return
        received += len(chunk)
        if received > limit_bytes:
            raise TooLarge(f"{what} exceeds the limit of {limit_bytes} bytes")
        yield chunk


async def read_body(request: web.Request, *, limit_bytes: int, idle_timeout_s: float,
                    what: str = "the request's audio", minimum: int = 0) -> bytes:
    """The whole body, read through :func:`body_chunks`.

    Raises:
        TooLarge: ``Content-Length`` or the bytes so far exceed ``limit_bytes``.
        Timeout: no byte arrived for ``idle_timeout_s``.
        InvalidParameter: the body ended with fewer than ``minimum`` bytes.
        ClientDisconnected: the client reset or closed the connection before the body ended.
    """
    data = bytearray()
    async for chunk in body_chunks(request, limit_bytes=limit_bytes, idle_timeout_s=idle_timeout_s, what=what,
                                   minimum=minimum):
        data += chunk
    return bytes(data)


def _connection_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


@web.middleware
async def client_disconnects(request: web.Request, handler: Handler) -> web.StreamResponse:
    """End a request whose client went away with an INFO line and 499, not an ERROR traceback and 500.

    Catches :class:`ClientDisconnected` from the body readers, and any other ``ConnectionError`` raised
    while this request's own connection is gone (a handler writing its answer to a client that left, or
    a body read with ``request.read()``). A ``ConnectionError`` while the client is still connected comes
    from elsewhere (an outgoing connection of the server's own) and is re-raised to be logged as a fault.

    Args:
        request: the incoming request.
        handler: the route's handler (or the next middleware).

    Returns:
        The handler's response, or an empty 499 that aiohttp writes to the access log (nobody receives it).

    Raises:
        ConnectionError: one raised while the client is still connected.
    """
    try:
        return await handler(request)
    except ConnectionError as exc:
        if not isinstance(exc, ClientDisconnected) and not _connection_gone(request):
            raise
        log.info("%s %s from %s: the client went away: %s; logged as %d",
                 request.method, request.path, request.remote, exc, CLIENT_CLOSED_REQUEST)
        return web.Response(status=CLIENT_CLOSED_REQUEST, reason="Client Closed Request")
