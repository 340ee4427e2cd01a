"""Reading a request body: size-limited and with an inactivity timeout (issue 13, defect 5: slow-loris).

Every route that reads a body as a stream — sessionless recognition, jobs, Transcribe's HTTP
stream, audio resources — takes it through :func:`body_chunks`, so a client that opens a request
and then sends nothing (or a byte now and then, too slowly to matter) cannot hold a session slot
for longer than the server's ``session_timeout_s`` between two reads, and a body announced larger
than the limit is refused from its ``Content-Length`` before a byte of it is read.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web

from protocol.errors import Timeout, TooLarge

CHUNK_BYTES = 64 * 1024


async def body_chunks(request: web.Request, *, limit_bytes: int, idle_timeout_s: float,
                      what: str = "the request's audio") -> AsyncIterator[bytes]:
    """The body's chunks as they arrive.

    Args:
        request: the request whose body to read.
        limit_bytes: the most bytes allowed.
        idle_timeout_s: the longest wait for the next bytes.
        what: how the error messages name the body.

    Raises:
        TooLarge: ``Content-Length`` or the bytes so far exceed ``limit_bytes``.
        Timeout: no byte arrived for ``idle_timeout_s``.
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
        if not chunk:
            return
        received += len(chunk)
        if received > limit_bytes:
            raise TooLarge(f"{what} exceeds the limit of {limit_bytes} bytes")
        yield chunk


async def read_body(request: web.Request, *, limit_bytes: int, idle_timeout_s: float,
                    what: str = "the request's audio") -> bytes:
    """The whole body, read through :func:`body_chunks`."""
    data = bytearray()
    async for chunk in body_chunks(request, limit_bytes=limit_bytes, idle_timeout_s=idle_timeout_s, what=what):
        data += chunk
    return bytes(data)
