"""The Transcribe routes over real sockets: botocore signs the URLs and parses our events."""

from __future__ import annotations

import asyncio
import json

import aiohttp
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.eventstream import EventStreamBuffer

from protocol.eventstream import Message
from tests.server.conftest import handshake_status
from tests.server.http.watson.test_watson_ws import l16

CREDS = {"credentials": [{"instance": "acme", "access_key_id": "AKIDVOX", "secret_access_key": "wJalr/secret"}]}
PARAMS = "language-code=en-US&media-encoding=pcm&sample-rate=16000"


def presigned(server, params: str = PARAMS, secret: str = "wJalr/secret") -> str:
    """A URL signed by botocore's SigV4 query signer."""
    request = AWSRequest(method="GET", url=f"{server.ws}/stream-transcription-websocket?{params}")
    SigV4QueryAuth(Credentials("AKIDVOX", secret), "transcribe", "us-east-1", expires=300).add_auth(request)
    return request.url


def audio_events(audio: bytes, chunk: int = 3200) -> list[bytes]:
    events = [Message.build({":message-type": "event", ":event-type": "AudioEvent",
                             ":content-type": "application/octet-stream"}, audio[i : i + chunk]).encode()
              for i in range(0, len(audio), chunk)]
    return events + [Message.build({":message-type": "event", ":event-type": "AudioEvent"}, b"").encode()]


async def _stream(url: str, frames: list[bytes]) -> tuple[list, int | None]:
    buffer = EventStreamBuffer()
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        for f in frames:
            await ws.send_bytes(f)
        async for msg in ws:
            buffer.add_data(msg.data)
        return list(buffer), ws.close_code


def _status(url: str) -> int:
    async def main():
        async with aiohttp.ClientSession() as http:
            return await handshake_status(http, url)

    return asyncio.run(main())


def test_presigned_stream_gives_transcript_events(server_factory) -> None:
    server = server_factory(CREDS)
    # Two events per frame here and there: the server must not care how messages are framed.
    events = audio_events(l16(2.5, 4))
    frames = [events[i] + (events[i + 1] if i % 3 == 0 and i + 1 < len(events) else b"") for i in range(len(events))
              if not (i > 0 and (i - 1) % 3 == 0)]
    messages, code = asyncio.run(_stream(presigned(server), frames))
    assert code == 1000
    results = [json.loads(m.payload)["Transcript"]["Results"][0] for m in messages]
    assert all(m.headers[":event-type"] == "TranscriptEvent" for m in messages)
    assert any(r["IsPartial"] for r in results) and any(not r["IsPartial"] for r in results)
    # A partial keeps its ResultId until its final; the next utterance gets a new one.
    finals_seen: set[str] = set()
    for r in results:
        assert r["ResultId"] not in finals_seen
        if not r["IsPartial"]:
            finals_seen.add(r["ResultId"])
        assert r["Alternatives"][0]["Items"] is not None


def test_presigned_auth_failures(server_factory) -> None:
    server = server_factory(CREDS)
    good = presigned(server)
    assert _status(good) == 101
    assert _status(good) == 101  # reusable until it expires, as on AWS (issue 13, defect 6)
    refused = presigned(server, PARAMS.replace("16000", "4000"))
    assert _status(refused) == _status(refused) == 400  # a refused handshake uses nothing up
    assert _status(presigned(server)) == _status(presigned(server)) == 101  # same-second signs are identical URLs
    assert _status(presigned(server).replace("sample-rate=16000", "sample-rate=8000")) == 401  # tampered
    assert _status(presigned(server, secret="wrong")) == 401
    assert _status(f"{server.ws}/stream-transcription-websocket?{PARAMS}") == 401  # unsigned


def test_bad_parameters_and_bad_streams(server) -> None:
    base = f"{server.ws}/stream-transcription-websocket?"
    assert _status(base + "language-code=en-US&media-encoding=mp3&sample-rate=16000") == 400
    assert _status(base + "language-code=fr-FR&media-encoding=pcm&sample-rate=16000") == 404
    assert _status(base + PARAMS.replace("16000", "4000")) == 400
    messages, code = asyncio.run(_stream(base + PARAMS, [b"\x00\x00\x00\x30garbage-garbage-garbage"]))
    assert code == 1002
    assert messages[-1].headers[":message-type"] == "exception"
    assert messages[-1].headers[":exception-type"] == "BadRequestException"
    assert "CRC" in json.loads(messages[-1].payload)["Message"]


async def _http_stream(server, body_chunks: list[bytes], headers: dict) -> tuple[int, dict, list]:
    """Full-duplex chunked HTTP/1.1 on a raw socket: send events while reading events back."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    writer.write(f"POST /stream-transcription HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
                 f"Content-Type: application/vnd.amazon.eventstream\r\nTransfer-Encoding: chunked\r\n{head}\r\n".encode())
    for chunk in body_chunks:
        writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        await writer.drain()
    writer.write(b"0\r\n\r\n")
    await writer.drain()
    status_line = await reader.readline()
    response_headers = {}
    while (line := await reader.readline()) != b"\r\n":
        name, _, value = line.decode().partition(":")
        response_headers[name.strip().lower()] = value.strip()
    body = b""
    if response_headers.get("transfer-encoding") == "chunked":
        while True:
            size = int((await reader.readline()).strip(), 16)
            if size == 0:
                await reader.readline()
                break
            body += await reader.readexactly(size)
            await reader.readline()
    else:
        body = await reader.readexactly(int(response_headers["content-length"]))
    writer.close()
    await writer.wait_closed()
    status = int(status_line.split()[1])
    if status != 200:
        return status, response_headers, [json.loads(body)]
    buffer = EventStreamBuffer()
    buffer.add_data(body)
    return status, response_headers, list(buffer)


def test_http_stream_echoes_headers_and_streams_events(server) -> None:
    headers = {"x-amzn-transcribe-language-code": "en-US", "x-amzn-transcribe-media-encoding": "pcm",
               "x-amzn-transcribe-sample-rate": "16000",
               "X-Amz-Target": "com.amazonaws.transcribe.Transcribe.StartStreamTranscription"}
    status, response_headers, messages = asyncio.run(_http_stream(server, audio_events(l16(2.0, 5)), headers))
    assert status == 200
    assert response_headers["x-amzn-transcribe-sample-rate"] == "16000"
    assert response_headers["x-amzn-request-id"] and response_headers["x-amzn-transcribe-session-id"]
    results = [json.loads(m.payload)["Transcript"]["Results"][0] for m in messages]
    assert results and not results[-1]["IsPartial"]


def test_http_stream_errors(server) -> None:
    bad = {"x-amzn-transcribe-language-code": "en-US", "x-amzn-transcribe-media-encoding": "pcm"}
    status, headers, [body] = asyncio.run(_http_stream(server, [], bad))
    assert status == 400 and headers["x-amzn-errortype"] == "BadRequestException"
    assert body == {"Message": "the sample-rate parameter is required"}


def _signed_headers(server, secret: str = "wJalr/secret") -> dict:
    """Headers of a POST /stream-transcription signed by botocore's SigV4 header signer."""
    from botocore.auth import SigV4Auth

    headers = {"x-amzn-transcribe-language-code": "en-US", "x-amzn-transcribe-media-encoding": "pcm",
               "x-amzn-transcribe-sample-rate": "16000", "X-Amz-Content-SHA256": "STREAMING-AWS4-HMAC-SHA256-EVENTS",
               "X-Amz-Target": "com.amazonaws.transcribe.Transcribe.StartStreamTranscription"}
    request = AWSRequest(method="POST", url=f"{server.http}/stream-transcription", headers=headers)
    SigV4Auth(Credentials("AKIDVOX", secret), "transcribe", "us-east-1").add_auth(request)
    return dict(request.headers.items())


def test_http_stream_with_a_sigv4_signed_request(server_factory) -> None:
    server = server_factory(CREDS)
    status, _, messages = asyncio.run(_http_stream(server, audio_events(l16(1.5, 6)), _signed_headers(server)))
    assert status == 200 and messages
    status, headers, [body] = asyncio.run(_http_stream(server, [], _signed_headers(server, secret="nope")))
    assert status == 401 and headers["x-amzn-errortype"] == "UnrecognizedClientException"
    assert "signature does not match" in body["Message"]


def test_shutdown_sends_the_finals_then_closes_with_1012(server_factory) -> None:
    server = server_factory()
    url = f"{server.ws}/stream-transcription-websocket?{PARAMS}"

    async def main():
        buffer = EventStreamBuffer()
        async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
            for frame in audio_events(l16(2.0, 7))[:-1]:  # no end-of-stream event: the server ends it
                await ws.send_bytes(frame)
            stopped = asyncio.get_running_loop().run_in_executor(None, server.stop)
            async for msg in ws:
                buffer.add_data(msg.data)
            await stopped
            return list(buffer), ws.close_code

    messages, code = asyncio.run(main())
    assert code == 1012
    results = [json.loads(m.payload)["Transcript"]["Results"][0] for m in messages]
    assert results and not results[-1]["IsPartial"]
