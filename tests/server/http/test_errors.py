"""The error middleware and the body reader on a real loopback server: one answer per dialect, 500 without internals."""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import web

from protocol.errors import NotFoundError
from protocol.session import MIN_REQUEST_BYTES
from server.http.bodies import read_body, refuse_multipart
from server.http.errors import errors
from server.http.keys import METRICS
from server.http.transcribe.errors import transcribe
from server.http.watson.errors import watson
from server.runtime.metrics import Metrics


@watson("test-watson")
async def watson_missing(request: web.Request) -> web.Response:
    raise NotFoundError("Model x not found")


@transcribe("test-transcribe")
async def transcribe_missing(request: web.Request) -> web.Response:
    raise NotFoundError("The language model y was not found")


@watson("test-watson")
async def fault(request: web.Request) -> web.Response:
    raise RuntimeError("secret internal detail")


@watson("test-watson")
async def upload(request: web.Request) -> web.Response:
    refuse_multipart(request.headers.get("Content-Type"))
    data = await read_body(request, limit_bytes=1000, idle_timeout_s=5, minimum=MIN_REQUEST_BYTES)
    return web.json_response({"bytes": len(data)})


async def _exchange(calls: list[tuple[str, str, dict]]) -> tuple[list[tuple[int, dict, dict]], str]:
    app = web.Application(middlewares=[errors])
    app[METRICS] = Metrics()
    app.add_routes([web.get("/w", watson_missing), web.get("/t", transcribe_missing), web.get("/fault", fault),
                    web.post("/upload", upload)])
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    out = []
    try:
        async with aiohttp.ClientSession() as http:
            for method, path, kwargs in calls:
                async with http.request(method, f"http://127.0.0.1:{port}{path}", **kwargs) as r:
                    out.append((r.status, dict(r.headers), await r.json()))
    finally:
        metrics = app[METRICS].render().decode()
        await runner.cleanup()
    return out, metrics


def test_each_dialect_answers_its_own_shape_and_faults_are_500_without_internals() -> None:
    (w, t, f), metrics = asyncio.run(_exchange([("GET", "/w", {}), ("GET", "/t", {}), ("GET", "/fault", {})]))
    assert w[0] == 404 and w[2] == {"code": 404, "code_description": "Not Found", "error": "Model x not found"}
    assert t[0] == 404 and t[1]["x-amzn-errortype"] == "BadRequestException"
    assert t[2] == {"Message": "The language model y was not found"}
    assert f[0] == 500 and "secret" not in str(f[2]) and f[2]["code"] == 500
    assert 'voxgate_errors_total{route="test-watson",type="NotFoundError"} 1.0' in metrics
    assert 'voxgate_errors_total{route="test-watson",type="RuntimeError"} 1.0' in metrics


def test_the_body_reader_has_one_minimum_and_one_multipart_answer() -> None:
    form = aiohttp.FormData()
    form.add_field("audio", b"x" * 200, filename="a.wav")
    (short, multipart, ok, big), _ = asyncio.run(_exchange([
        ("POST", "/upload", {"data": b"x" * 50}), ("POST", "/upload", {"data": form}),
        ("POST", "/upload", {"data": b"x" * 200}), ("POST", "/upload", {"data": b"x" * 2000})]))
    assert short[0] == 400 and short[2]["error"] == "Stream was 50 bytes but needs to be at least 100 bytes."
    assert multipart[0] == 415 and "multipart requests are not supported" in multipart[2]["error"]
    assert ok[0] == 200 and ok[2] == {"bytes": 200}
    assert big[0] == 413
