"""Job notifications: registering a callback URL (the challenge), and signed events of a real job."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import socket
import threading

import aiohttp
from aiohttp import web

from tests.conftest import FIXTURES

CREDENTIALS = {"credentials": [{"instance": "acme", "api_key": "acme-key"}]}
ACME = {"Authorization": "Bearer acme-key"}


class Receiver:
    """A callback endpoint on loopback: answers challenges (or not) and keeps the events it is sent.

    ``/moved`` redirects (302) to ``/cb``; ``banner_port`` is an open port that speaks no HTTP.
    """

    def __init__(self, answer_challenge: bool = True) -> None:
        self.answer_challenge = answer_challenge
        self.challenges: list[tuple[str, str | None]] = []
        self.events: list[tuple[bytes, str | None]] = []
        self.got_events = threading.Event()
        self.port = 0
        self.banner_port = 0
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
        app.router.add_get("/moved", self._moved)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        banner = await asyncio.start_server(self._banner, "127.0.0.1", 0)
        self.banner_port = banner.sockets[0].getsockname()[1]
        self._ready.set()

    async def _moved(self, request: web.Request) -> web.Response:
        raise web.HTTPFound(f"/cb?{request.query_string}")  # to a URL that would answer the challenge

    async def _banner(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n")
        await writer.drain()
        writer.close()

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
    assert post(server, "/v1/unregister_callback", {"callback_url": good.url})[0] == 200
    assert post(server, "/v1/unregister_callback", {"callback_url": good.url})[0] == 404


def _closed_port() -> int:
    """A loopback port with nothing listening (bound by the OS for us, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _refusal(server, url: str) -> tuple[int, str]:
    """Register ``url``; return the status and the error message with the URL itself taken out."""
    status, body = post(server, "/v1/register_callback", {"callback_url": url})
    assert "error" in body, (status, body)
    return status, body["error"].replace(url, "<url>")


def test_a_redirect_to_a_url_that_would_answer_is_refused(server_factory):
    server = server_factory(CREDENTIALS)
    receiver = Receiver()
    status, message = _refusal(server, f"http://127.0.0.1:{receiver.port}/moved")
    assert status == 400 and message.startswith("Verification of callback URL <url> failed")
    assert receiver.challenges == []  # the redirect's target was never asked


def test_every_failed_verification_gives_one_message_so_ports_cannot_be_scanned(server_factory, caplog):
    caplog.set_level(logging.INFO, logger="voxgate.callbacks")
    server = server_factory(CREDENTIALS)
    receiver, silent = Receiver(), Receiver(answer_challenge=False)
    closed = _refusal(server, f"http://127.0.0.1:{_closed_port()}/cb")
    assert closed == (400, "Verification of callback URL <url> failed: the server did not answer the challenge with "
                           "status 200 and the challenge string. Make the URL answer a GET with its challenge_string "
                           "query parameter as the body, status 200 and no redirect.")
    open_but_wrong = {
        "wrong body": silent.url,
        "404": f"http://127.0.0.1:{receiver.port}/elsewhere",
        "redirect": f"http://127.0.0.1:{receiver.port}/moved",
        "not HTTP": f"http://127.0.0.1:{receiver.banner_port}/cb",
    }
    refusals = {case: _refusal(server, url) for case, url in open_but_wrong.items()}
    assert refusals == dict.fromkeys(open_but_wrong, closed)
    # the reasons are for the operator's log only, at INFO
    logged = [r for r in caplog.records if r.name == "voxgate.callbacks"]
    assert [r.levelno for r in logged] == [logging.INFO] * 5
    reasons = [r.getMessage() for r in logged]
    assert "Connect" in reasons[0] and "not the challenge string" in reasons[1] and "status 404" in reasons[2]
    assert "a redirect (302" in reasons[3] and "no answer" in reasons[4]


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
