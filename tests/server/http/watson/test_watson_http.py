"""Sessionless POST /v1/recognize over a real socket: whole and chunked bodies, errors in the Watson shape."""

from __future__ import annotations

import asyncio

import aiohttp

from tests.conftest import FIXTURES
from tests.server.http.watson.test_watson_ws import l16

L16 = "audio/l16;rate=16000;endianness=little-endian"


async def _post(url: str, data, content_type: str | None, **params) -> tuple[int, dict]:
    headers = {"Content-Type": content_type} if content_type else {}
    async with aiohttp.ClientSession() as http, http.post(url, data=data, headers=headers, params=params) as resp:
        return resp.status, await resp.json()


def test_whole_and_chunked_bodies_give_the_same_results(server) -> None:
    audio = l16(2.0, 3)

    async def chunks():
        for i in range(0, len(audio), 1000):
            yield audio[i : i + 1000]

    url = f"{server.http}/v1/recognize"
    whole = asyncio.run(_post(url, audio, L16, timestamps="true"))
    chunked = asyncio.run(_post(url, chunks(), L16, timestamps="true"))
    assert whole[0] == chunked[0] == 200
    assert whole[1] == chunked[1]
    assert whole[1]["results"] and all(r["final"] for r in whole[1]["results"])
    assert "timestamps" in whole[1]["results"][0]["alternatives"][0]


def test_containers_are_detected(server) -> None:
    status, body = asyncio.run(_post(f"{server.http}/v1/recognize", (FIXTURES / "hello.wav").read_bytes(), None))
    assert status == 200 and isinstance(body["results"], list)


def test_errors(server) -> None:
    url = f"{server.http}/v1/recognize"
    cases = [
        (_post(url, b"", L16), 400, "Stream was 0 bytes but needs to be at least 100 bytes."),
        (_post(url, b"\0" * 50, L16), 400, "Stream was 50 bytes"),  # as the WebSocket and jobs refuse it
        (_post(url, b"\0" * 1000, "audio/x-foo"), 415, "unsupported"),
        (_post(url, b"\0" * 1000, "audio/l16;rate=8000"), 400, "8000"),
        (_post(url, b"\0" * 1000, "audio/l16"), 400, "rate"),
        (_post(url, b"garbage" * 100, "audio/flac"), 400, ""),
        # protocol.wav reads the header of a streamed WAV; a broken one is the request's error
        (_post(url, b"RIFF\0\0\0\0WAVEfmt \x08\0\0\0" + bytes(200), "audio/wav"), 400, "fmt chunk of 8 bytes"),
        (_post(url, b"\0" * 1000, L16, model="xx_Nothing"), 404, "Model xx_Nothing not found"),
        (_post(url, b"\0" * 1000, L16, inactivity_timeout="soon"), 400, "inactivity_timeout must be an integer"),
    ]
    for call, status, text in cases:
        got, body = asyncio.run(call)
        assert got == status, (status, body)
        assert body["code"] == status and body["code_description"] and text in body["error"]


def test_request_size_limit(server_factory) -> None:
    server = server_factory({"server": {"max_request_bytes": 5000}})
    status, body = asyncio.run(_post(f"{server.http}/v1/recognize", b"\0" * 6000, L16))
    assert status == 413 and "exceeds the limit of 5000 bytes" in body["error"]


def test_version_is_the_older_name_of_base_model_version(server) -> None:
    """Issue 13, deviation 4: ``?version=<older>`` answered ``Unknown arguments: version.`` and used the newest."""
    url = f"{server.http}/v1/recognize"
    [version] = server.models.versions
    status, body = asyncio.run(_post(url, l16(1.0, 1), L16, version=version))
    assert status == 200 and "warnings" not in body
    status, body = asyncio.run(_post(url, b"\0" * 1000, L16, version="en-US_BroadbandModel.v1999-01-01"))
    assert status == 404 and "base_model_version en-US_BroadbandModel.v1999-01-01 not found" in body["error"]
    status, body = asyncio.run(_post(url, b"\0" * 1000, L16, version=version,
                                     base_model_version="en-US_BroadbandModel.v1999-01-01"))
    assert status == 400 and "disagree" in body["error"]


def test_word_alternatives_on_a_ctc_final_pass_are_none_and_say_so(server) -> None:
    # the tiny model has no Whisper decoder: its finals come from the CTC search, which has no N-best here
    status, body = asyncio.run(_post(f"{server.http}/v1/recognize", l16(2.0, 3), L16,
                                     word_alternatives_threshold="0.2"))
    assert status == 200
    assert any("word_alternatives_threshold" in w and "carry none" in w for w in body["warnings"])
    assert all(r["word_alternatives"] == [] for r in body["results"] if r["final"])
