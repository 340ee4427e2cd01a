"""Slow-loris (issue 13, defect 5): a body that stops arriving is cut at ``session_timeout_s`` and frees its slot."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from tests.server.test_transcribe import audio_events
from tests.server.test_watson_ws import l16

pytestmark = pytest.mark.timeout(60)

L16 = "audio/l16;rate=16000;endianness=little-endian"


async def _stalled(port: int, path: str, headers: dict, chunk: bytes) -> tuple[int, bytes]:
    """Send the headers and one chunk of a chunked body, then nothing; return the status and body received."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    writer.write(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nTransfer-Encoding: chunked\r\n{head}\r\n".encode()
                 + f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
    await writer.drain()
    rest = b""
    try:  # the server must answer within a few timeouts; without the fix it waits as long as the socket stays open
        status_line = await asyncio.wait_for(reader.readline(), 20)
        while b"no data for" not in rest and (more := await asyncio.wait_for(reader.read(1 << 16), 20)):
            rest += more
    finally:
        writer.close()
    return int(status_line.split()[1]), rest


async def _recognize(port: int) -> int:
    async with aiohttp.ClientSession() as http, http.post(
            f"http://127.0.0.1:{port}/v1/recognize", data=l16(1.0, 2), headers={"Content-Type": L16}) as resp:
        return resp.status


def test_a_stalled_sessionless_body_times_out_and_frees_its_slot(server_factory) -> None:
    server = server_factory({"server": {"max_sessions": 1, "session_timeout_s": 0.5}})

    async def scenario():
        stalled = asyncio.create_task(_stalled(server.port, "/v1/recognize", {"Content-Type": L16}, l16(0.2, 1)))
        status, body = await stalled
        return status, body, await _recognize(server.port)

    status, body, after = asyncio.run(scenario())
    assert status == 408 and b"no data for 0.5 s" in body
    assert after == 200  # the slot is free again


def test_a_stalled_transcribe_http_stream_gets_an_exception_event(server_factory) -> None:
    server = server_factory({"server": {"max_sessions": 1, "session_timeout_s": 0.5}})
    headers = {"Content-Type": "application/vnd.amazon.eventstream", "x-amzn-transcribe-language-code": "en-US",
               "x-amzn-transcribe-media-encoding": "pcm", "x-amzn-transcribe-sample-rate": "16000"}

    async def scenario():
        status, body = await _stalled(server.port, "/stream-transcription", headers, audio_events(l16(0.2, 1))[0])
        return status, body, await _recognize(server.port)

    status, body, after = asyncio.run(scenario())
    assert status == 200  # the stream had started; the timeout arrives as an exception event
    assert b"no data for 0.5 s" in body
    assert after == 200


def test_an_announced_oversize_body_is_refused_before_it_is_read(server_factory) -> None:
    server = server_factory({"server": {"max_request_bytes": 5000}})

    async def scenario():
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(f"POST /v1/recognize HTTP/1.1\r\nHost: x\r\nContent-Type: {L16}\r\n"
                     f"Content-Length: 10000000\r\n\r\n".encode())  # and never the body
        await writer.drain()
        try:
            status_line = await asyncio.wait_for(reader.readline(), 20)
            body = await asyncio.wait_for(reader.read(1 << 16), 20)
        finally:
            writer.close()
        return int(status_line.split()[1]), body

    status, body = asyncio.run(scenario())
    assert status == 413
    assert json.loads(body.split(b"\r\n\r\n", 1)[1])["error"].endswith("(Content-Length 10000000)")
