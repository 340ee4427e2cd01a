"""Job notifications: registering a callback URL (the challenge), and signed events of a real job."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import threading

import aiohttp
from aiohttp import web

from tests.conftest import FIXTURES

CREDENTIALS = {"credentials": [{"instance": "acme", "api_key": "acme-key"}]}
ACME = {"Authorization": "Bearer acme-key"}


class Receiver:
    """A callback endpoint on loopback: answers challenges (or not) and keeps the events it is sent."""

    def __init__(self, answer_challenge: bool = True) -> None:
        self.answer_challenge = answer_challenge
        self.challenges: list[tuple[str, str | None]] = []
        self.events: list[tuple[bytes, str | None]] = []
        self.got_events = threading.Event()
        self.port = 0
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        threading.Thread(target=self._main, daemon=True).start()
        self._ready.wait(10)

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve())
        self._loop.run_forever()

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_get("/cb", self._challenge)
        app.router.add_post("/cb", self._event)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        self._ready.set()

    async def _challenge(self, request: web.Request) -> web.Response:
        challenge = request.query["challenge_string"]
        self.challenges.append((challenge, request.headers.get("X-Callback-Signature")))
        return web.Response(text=challenge if self.answer_challenge else "nope")

    async def _event(self, request: web.Request) -> web.Response:
        self.events.append((await request.read(), request.headers.get("X-Callback-Signature")))
        if len(self.events) >= 2:
            self.got_events.set()
        return web.Response(text="ok")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/cb"


def sign(secret: str, payload: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), payload, hashlib.sha256).digest()).decode()


def post(server, path: str, params: dict, data: bytes | None = None, headers: dict | None = None):
    async def main():
        async with aiohttp.ClientSession(server.http) as http, http.post(
                path, params=params, data=data, headers={**ACME, **(headers or {})}) as r:
            return r.status, await r.json()
    return asyncio.run(main())


def test_registration_proves_the_url_answers(server_factory):
    server = server_factory(CREDENTIALS)
    good, silent = Receiver(), Receiver(answer_challenge=False)
    assert post(server, "/v1/register_callback", {"callback_url": good.url, "user_secret": "s3"}) == (
        201, {"status": "created", "url": good.url})
    challenge, signed = good.challenges[0]
    assert signed == sign("s3", challenge.encode())
    assert post(server, "/v1/register_callback", {"callback_url": good.url})[0] == 200
    status, body = post(server, "/v1/register_callback", {"callback_url": silent.url})
    assert status == 400 and "did not answer the challenge" in body["error"]
    status, body = post(server, "/v1/register_callback", {"callback_url": "ftp://example.com/x"})
    assert status == 400 and "http:// or https://" in body["error"]
    status, body = post(server, "/v1/register_callback", {"callback_url": "http://127.0.0.1:9/none"})
    assert status == 400 and "could not be reached" in body["error"]
    assert post(server, "/v1/unregister_callback", {"callback_url": good.url})[0] == 200
    assert post(server, "/v1/unregister_callback", {"callback_url": good.url})[0] == 404


def test_a_job_posts_its_signed_events(server_factory):
    server = server_factory(CREDENTIALS)
    receiver = Receiver()
    assert post(server, "/v1/register_callback", {"callback_url": receiver.url, "user_secret": "s3"})[0] == 201
    wav = (FIXTURES / "hello.wav").read_bytes()
    status, body = post(server, "/v1/recognitions", {"events": "recognitions.started,bogus"}, wav,
                        {"Content-Type": "audio/wav"})
    assert status == 400 and "events needs a callback_url" in body["error"]
    status, body = post(server, "/v1/recognitions", {"callback_url": receiver.url, "events": "bogus"}, wav,
                        {"Content-Type": "audio/wav"})
    assert status == 400 and "unknown events ['bogus']" in body["error"]
    status, job = post(server, "/v1/recognitions", {
        "callback_url": receiver.url, "user_token": "tok",
        "events": "recognitions.started,recognitions.completed_with_results"}, wav, {"Content-Type": "audio/wav"})
    assert status == 201
    assert receiver.got_events.wait(60)
    events = [json.loads(payload) for payload, _ in receiver.events]
    assert [(e["id"], e["event"], e["user_token"]) for e in events] == [
        (job["id"], "recognitions.started", "tok"), (job["id"], "recognitions.completed_with_results", "tok")]
    assert "results" in events[1] and "results" in events[1]["results"][0]
    assert all(signed == sign("s3", payload) for payload, signed in receiver.events)
