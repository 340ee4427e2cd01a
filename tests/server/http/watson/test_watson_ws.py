"""The Watson WebSocket over a real socket: messages, close codes, limits, auth, shutdown."""

from __future__ import annotations

import asyncio
import base64
import json

import aiohttp
import pytest
import torch

from tests.engine.test_recognizer import noise
from tests.server.conftest import handshake_status

START = {"action": "start", "content-type": "audio/l16;rate=16000;endianness=little-endian", "interim_results": True,
         "timestamps": True, "word_confidence": True}


def l16(seconds: float, seed: int) -> bytes:
    """Little-endian 16-bit PCM of the test noise (the tiny model emits words on it)."""
    return (noise(seconds, seed).clamp(-1, 1) * 32767).to(torch.int16).numpy().tobytes()


async def _receive_json(ws: aiohttp.ClientWebSocketResponse) -> dict:
    msg = await ws.receive()
    assert msg.type is aiohttp.WSMsgType.TEXT, (msg.type, msg.data, msg.extra)
    return json.loads(msg.data)


async def _request(ws, audio: bytes, start: dict | None = None, frame: int = 3200) -> list[dict]:
    """One request on an open socket: start, audio, stop; every message up to the closing listening."""
    if start is not None:
        await ws.send_json(start)
        assert await _receive_json(ws) == {"state": "listening"}
    for i in range(0, len(audio), frame):
        await ws.send_bytes(audio[i : i + frame])
    await ws.send_json({"action": "stop"})
    messages = []
    while (m := await _receive_json(ws)) != {"state": "listening"}:
        messages.append(m)
    return messages


async def _closing(ws) -> tuple[list[dict], int]:
    """Messages until the server closes; then the close code."""
    messages = []
    async for msg in ws:
        messages.append(json.loads(msg.data))
    return messages, ws.close_code


def test_two_requests_on_one_connection_with_interim_results(server) -> None:
    async def main():
        async with aiohttp.ClientSession() as http, http.ws_connect(f"{server.ws}/v1/recognize") as ws:
            first = await _request(ws, l16(2.0, 1), START)
            second = await _request(ws, l16(1.5, 2), {"action": "start"})  # options persist
            return first, second

    for messages in asyncio.run(main()):
        finals = [r for m in messages for r in m["results"] if r["final"]]
        interims = [r for m in messages for r in m["results"] if not r["final"]]
        assert finals and interims
        assert [m["result_index"] for m in messages if m["results"][0]["final"]] == list(range(len(finals)))
        for r in finals:
            alt = r["alternatives"][0]
            assert alt["transcript"].endswith(" ") and 0 <= alt["confidence"] <= 1
            assert len(alt["timestamps"]) == len(alt["word_confidence"]) == len(alt["transcript"].split())
        assert finals[-1]["end_of_utterance"] == "end_of_data"


def test_without_interim_results_one_message_after_stop(server) -> None:
    async def main():
        async with aiohttp.ClientSession() as http, http.ws_connect(f"{server.ws}/v1/recognize") as ws:
            return await _request(ws, l16(2.0, 1), {**START, "interim_results": False, "colour": "red"})

    [message] = asyncio.run(main())
    assert message["result_index"] == 0 and all(r["final"] for r in message["results"])
    assert message["warnings"] == ["Unknown arguments: colour."]


def test_keywords_result_on_every_final(server) -> None:
    async def main():
        async with aiohttp.ClientSession() as http, http.ws_connect(f"{server.ws}/v1/recognize") as ws:
            return await _request(ws, l16(2.0, 1), {**START, "interim_results": False, "keywords": ["zzz"],
                                                    "keywords_threshold": 0.0})

    [message] = asyncio.run(main())
    finals = [r for r in message["results"] if r["final"]]
    assert finals and all(r["keywords_result"] == {} for r in finals)  # a word the tiny model never says
    assert "warnings" not in message  # keywords are no longer "accepted and ignored"


def test_whole_file_types_are_decoded(server) -> None:
    from tests.conftest import FIXTURES

    async def main():
        async with aiohttp.ClientSession() as http, http.ws_connect(f"{server.ws}/v1/recognize") as ws:
            return await _request(ws, (FIXTURES / "hello.flac").read_bytes(),
                                  {"action": "start", "content_type": "audio/flac"}, frame=1024)

    messages = asyncio.run(main())
    assert all(isinstance(m["results"], list) for m in messages)


@pytest.mark.parametrize("frames,expected_code,expected_error", [
    (["not json"], 1002, "JSON"),
    ([{"action": "start", "interim_results": "yes"}], 1002, "interim_results must be a boolean"),
    ([b"\0" * 200], 1002, "send a start message first"),
    ([{"action": "stop"}], 1002, "cannot stop"),
    ([{"action": "start", "content-type": "audio/x-foo"}], 1003, "unsupported"),
    ([{"action": "start", "content-type": "audio/l16;rate=8000"}], 1002, "8000"),
    ([START, b"\0" * 50, {"action": "stop"}], 1002, "Stream was 50 bytes but needs to be at least 100 bytes."),
])
def test_bad_input_gets_an_error_then_the_right_close_code(server, frames, expected_code, expected_error) -> None:
    async def main():
        async with aiohttp.ClientSession() as http, http.ws_connect(f"{server.ws}/v1/recognize") as ws:
            for f in frames:
                if isinstance(f, bytes):
                    await ws.send_bytes(f)
                elif isinstance(f, dict):
                    await ws.send_json(f)
                else:
                    await ws.send_str(f)
            return await _closing(ws)

    messages, code = asyncio.run(main())
    assert code == expected_code
    assert expected_error in messages[-1]["error"]


def test_frame_over_the_limit_closes_with_1009(server_factory) -> None:
    server = server_factory({"server": {"max_frame_bytes": 10_000}})

    async def main():
        async with aiohttp.ClientSession() as http, http.ws_connect(f"{server.ws}/v1/recognize") as ws:
            await ws.send_json(START)
            await _receive_json(ws)
            await ws.send_bytes(b"\0" * 20_000)
            return await _closing(ws)

    messages, code = asyncio.run(main())
    assert code == 1009
    assert messages == [{"error": "frame exceeds the limit of 10000 bytes (text and binary frames alike)"}]


def test_a_text_frame_over_the_limit_gets_the_error_message_too(server_factory) -> None:
    """Issue 13: a 4.3 MB text frame closed 1009 without the ``{"error"}`` message the README promises."""
    server = server_factory({"server": {"max_frame_bytes": 10_000}})

    async def main():
        async with aiohttp.ClientSession() as http, http.ws_connect(f"{server.ws}/v1/recognize") as ws:
            await ws.send_str(json.dumps({**START, "padding": "x" * 20_000}))
            return await _closing(ws)

    messages, code = asyncio.run(main())
    assert code == 1009 and len(messages) == 1 and "exceeds the limit of 10000 bytes" in messages[0]["error"]


def test_handshake_errors_are_http_statuses(server_factory) -> None:
    server = server_factory({"server": {"max_sessions": 1}})

    async def main():
        async with aiohttp.ClientSession() as http:
            unknown = await handshake_status(http, f"{server.ws}/v1/recognize?model=xx_NoModel")
            version = await handshake_status(http, f"{server.ws}/v1/recognize?base_model_version=en-US_BroadbandModel.v1999-01-01")
            custom = await handshake_status(http, f"{server.ws}/v1/recognize?language_customization_id=abc")
            async with http.ws_connect(f"{server.ws}/v1/recognize"):
                full = await handshake_status(http, f"{server.ws}/v1/recognize")
            return unknown, version, custom, full

    assert asyncio.run(main()) == (404, 404, 404, 503)


def test_api_keys(server_factory) -> None:
    server = server_factory({"credentials": [{"instance": "acme", "api_key": "s3cret"}]})
    basic = base64.b64encode(b"apikey:s3cret").decode()

    async def main():
        url = f"{server.ws}/v1/recognize"
        async with aiohttp.ClientSession() as http:
            return [await handshake_status(http, url), await handshake_status(http, url, {"Authorization": "Bearer wrong"}),
                    await handshake_status(http, url, {"Authorization": "Bearer s3cret"}),
                    await handshake_status(http, url, {"Authorization": f"Basic {basic}"}),
                    await handshake_status(http, f"{url}?access_token=s3cret"),
                    await handshake_status(http, url, {"Authorization": "Digest x"})]

    assert asyncio.run(main()) == [401, 401, 101, 101, 101, 401]


def test_session_timeout_closes_an_idle_connection(server_factory) -> None:
    server = server_factory({"server": {"session_timeout_s": 0.3}})

    async def main():
        async with aiohttp.ClientSession() as http, http.ws_connect(f"{server.ws}/v1/recognize") as ws:
            await ws.send_json(START)
            await _receive_json(ws)
            return await _closing(ws)

    messages, code = asyncio.run(main())
    assert code == 1000 and messages[-1]["error"].startswith("Session timed out")


def test_shutdown_flushes_finals_and_closes_with_1012(server_factory) -> None:
    server = server_factory()

    async def main():
        async with aiohttp.ClientSession() as http, http.ws_connect(f"{server.ws}/v1/recognize") as ws:
            await ws.send_json({**START, "interim_results": False})
            await _receive_json(ws)
            await ws.send_bytes(l16(2.0, 1))
            # The server is told to stop while the request is open (no stop sent); the client keeps reading.
            stopped = asyncio.get_running_loop().run_in_executor(None, server.stop)
            closing = await _closing(ws)
            await stopped
            return closing

    messages, code = asyncio.run(main())
    assert code == 1012
    assert messages and messages[0]["results"] and all(r["final"] for r in messages[0]["results"])


def test_metrics_after_a_session(server) -> None:
    async def main():
        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(f"{server.ws}/v1/recognize") as ws:
                await _request(ws, l16(1.0, 1), START)
            async with http.get(f"{server.http}/metrics") as resp:
                return resp.status, await resp.text()

    status, text = asyncio.run(main())
    assert status == 200
    for name in ("voxgate_sessions_total", "voxgate_audio_seconds_total", "voxgate_batch_size_bucket",
                 "voxgate_queue_wait_seconds_bucket", "voxgate_step_seconds_bucket", "voxgate_sessions_active"):
        assert name in text
