"""Hostile bodies (issue 13): a body that stops arriving is cut at ``session_timeout_s`` and frees its slot
(defect 5, slow-loris); a client that resets its connection mid-body is a clean 499 that frees its slot too."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import queue
import socket
import struct
from collections.abc import Iterator

import aiohttp
import pytest

from tests.server.http.transcribe.test_transcribe import audio_events
from tests.server.http.watson.test_watson_ws import l16

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


class _AccessLog(logging.Handler):
    """The statuses of the server's access-log lines as they are written: the sign that a request has ended."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.statuses: queue.Queue[int] = queue.Queue()

    def emit(self, record: logging.LogRecord) -> None:
        self.statuses.put(int(record.response_status))


@pytest.fixture()
def access_log(caplog) -> Iterator[_AccessLog]:
    """aiohttp's access log (INFO, enabled before the server starts) and every record in ``caplog``."""
    caplog.set_level(logging.INFO)
    handler = _AccessLog()
    logger = logging.getLogger("aiohttp.access")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def _reset_mid_body(port: int, path: str, headers: dict, body_head: bytes, *, chunked: bool) -> None:
    """Send a request's headers and the first part of its body, then reset the connection (RST, not FIN).

    ``Expect: 100-continue`` makes the server say when its handler has started, so the reset reaches a
    handler that is reading the body rather than a request still being parsed.
    """
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {10 * len(body_head)}"
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{framing}\r\n"
                     f"Expect: 100-continue\r\n{head}\r\n".encode())
        answer = b""
        while b"\r\n\r\n" not in answer and (more := sock.recv(1024)):
            answer += more
        assert answer.startswith(b"HTTP/1.1 100"), answer
        sock.sendall(f"{len(body_head):x}\r\n".encode() + body_head + b"\r\n" if chunked else body_head)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close() now sends RST


TRANSCRIBE = {"Content-Type": "application/vnd.amazon.eventstream", "x-amzn-transcribe-language-code": "en-US",
              "x-amzn-transcribe-media-encoding": "pcm", "x-amzn-transcribe-sample-rate": "16000"}


@pytest.mark.parametrize("route, chunked", [
    ("/v1/recognize", True), ("/v1/recognize", False), ("/v1/recognitions", False),
    ("/stream-transcription", True), ("audio resource", False),
], ids=["sessionless-chunked", "sessionless-content-length", "job", "transcribe-http", "audio-resource"])
def test_a_client_reset_mid_body_is_a_clean_499_that_frees_its_slot(server_factory, tiny_bundle, access_log, caplog,
                                                                   route: str, chunked: bool) -> None:
    server = server_factory({"server": {"max_sessions": 1}})
    headers, body_head = {"Content-Type": L16}, l16(0.2, 1)
    if route == "/stream-transcription":
        headers, body_head = TRANSCRIBE, audio_events(l16(0.2, 1))[0]
    elif route == "audio resource":
        async def create() -> str:
            async with aiohttp.ClientSession() as http, http.post(
                    f"{server.http}/v1/acoustic_customizations",
                    json={"name": "voices", "base_model_name": tiny_bundle.name}) as resp:
                assert resp.status == 201
                return (await resp.json())["customization_id"]
        route, headers = f"/v1/acoustic_customizations/{asyncio.run(create())}/audio/a1", {"Content-Type": "audio/wav"}
        access_log.statuses.get(timeout=20)  # the create request's line
    # Earlier tests' garbage goes now, not during the reset: a request refused before its body was read and
    # then dropped by its client leaves aiohttp (3.14) lingering forever, and that task logs ERROR when collected.
    gc.collect()
    caplog.clear()

    _reset_mid_body(server.port, route, headers, body_head, chunked=chunked)

    assert access_log.statuses.get(timeout=20) == 499  # nginx's "client closed request", not 500
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert any("client went away" in r.getMessage() for r in caplog.records if r.levelno == logging.INFO)
    assert asyncio.run(_recognize(server.port)) == 200  # the server still serves, and the one slot is free again
