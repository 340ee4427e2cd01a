"""A real server on a loopback port, run in its own thread and event loop, for real clients to call."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from server.app import make_app
from server.config import Config, parse_config
from server.http.keys import MODELS
from server.runtime.models import LoadedModels


async def handshake_status(http: aiohttp.ClientSession, url: str, headers: dict | None = None) -> int:
    """The HTTP status a WebSocket handshake gets: 101 when it upgrades, the refusal's status otherwise."""
    try:
        async with http.ws_connect(url, headers=headers):
            return 101
    except aiohttp.WSServerHandshakeError as exc:
        return exc.status


class ServerThread:
    """``make_app`` served on 127.0.0.1:<free port> from a background thread."""

    def __init__(self, models_dir: Path, config: Config, **options) -> None:
        self.app = make_app(models_dir, config, **options)
        self.port = 0
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="test-server", daemon=True)

    @property
    def models(self) -> LoadedModels:
        """The running app's base versions."""
        return self.app[MODELS]

    @property
    def http(self) -> str:
        """Base URL for HTTP."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        """Base URL for WebSockets."""
        return f"ws://127.0.0.1:{self.port}"

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread by stop()
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        runner = web.AppRunner(self.app, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # the port the OS chose
        self._ready.set()
        await self._stop.wait()
        await runner.cleanup()

    def start(self) -> ServerThread:
        """Start and wait until the socket listens."""
        self._thread.start()
        self._ready.wait(timeout=60)
        if self._error:
            raise self._error
        return self

    def stop(self) -> None:
        """Graceful shutdown (as on SIGTERM); wait for it to finish."""
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout=60)
        self._loop.close()
        if self._error:
            raise self._error


@pytest.fixture()
def server_factory(tiny_bundle, tmp_path) -> Iterator:
    """Start servers over the tiny bundle's models folder with a given config dict; stop them afterwards.

    Each test's servers share a fresh data directory (``tmp_path/data``) unless ``data_dir`` is given.
    """
    started: list[ServerThread] = []

    def start(config: dict | None = None, models_dir: Path | None = None, **options) -> ServerThread:
        options.setdefault("data_dir", tmp_path / "data")
        server = ServerThread(models_dir or tiny_bundle.path.parents[1], parse_config(config or {}), **options)
        started.append(server.start())
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture()
def server(server_factory) -> ServerThread:
    """An open server (no credentials) over the tiny model."""
    return server_factory()
