"""What every route shares: configuration, authentication, metrics, loaded models, and admission control."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from aiohttp import WSMessage, web

from protocol.errors import LimitExceeded, ShuttingDown
from server.auth import Authenticator
from server.catalog import InstalledBase
from server.config import Config
from server.metrics import Metrics
from server.recognition import LoadedModels

if TYPE_CHECKING:
    from server.catalog import Catalog
    from server.customization import Customizations
    from server.jobs import JobRunner

log = logging.getLogger("voxgate.server")
DEFAULT_MODEL = "en-US_BroadbandModel"


class Admission:
    """One admitted session's slot; a context manager that gives the slot back.

    WebSocket handlers read through :meth:`receive`, which returns None once
    the server is shutting down, so the handler itself (the only task reading
    its socket) flushes its finals and closes with 1012.
    """

    def __init__(self, state: ServerState, route: str) -> None:
        self._state = state
        self.route = route
        self.stopping = asyncio.Event()
        self.closed = asyncio.Event()

    def __enter__(self) -> Admission:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.closed.set()
        self._state._release(self)

    async def receive(self, ws: web.WebSocketResponse, timeout_s: float,
                      interrupt: asyncio.Event | None = None) -> WSMessage | None:
        """The next message, or None when the server began shutting down (or ``interrupt`` was set) first.

        Raises:
            TimeoutError: no message within ``timeout_s``.
        """
        events = [self.stopping] + ([interrupt] if interrupt is not None else [])
        if any(e.is_set() for e in events):
            return None
        receiving = asyncio.ensure_future(ws.receive(timeout=timeout_s))
        waiters = [asyncio.ensure_future(e.wait()) for e in events]
        try:
            await asyncio.wait({receiving, *waiters}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
        if receiving.done():
            return receiving.result()
        # aiohttp's receive() may be cancelled; let it unwind so the socket is usable for close().
        receiving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await receiving
        return None

class ServerState:
    """The shared state of one server."""

    def __init__(self, config: Config, models: LoadedModels, metrics: Metrics) -> None:
        self.config = config
        self.models = models
        self.metrics = metrics
        self.auth = Authenticator(config.credentials)
        self.sessions: set[Admission] = set()
        self.shutting_down = False
        # Set at startup (they need the event loop): see server.app._start_catalog.
        self.catalog: Catalog | None = None
        self.customizations: Customizations | None = None
        self.jobs: JobRunner | None = None

    async def refresh_models(self) -> list[str]:
        """Serve base versions registered since start (see :meth:`LoadedModels.discover`) and record them in
        the catalog; return their ids."""
        assert self.catalog is not None
        added = await self.models.discover()
        if added:
            await self.catalog.sync_base_versions(
                InstalledBase(b.name, b.version, b.manifest["locale"], b.sample_rate_hz, b.created, str(b.path))
                for b in (self.models.versions[v].installed for v in added))
        return added

    async def watch_releases(self) -> None:
        """Every ``release_check_s`` seconds, :meth:`refresh_models` (until cancelled)."""
        interval = self.config.limits.release_check_s
        while interval > 0:
            await asyncio.sleep(interval)
            try:
                await self.refresh_models()
            except Exception:  # noqa: BLE001 - the next look may succeed; serving goes on meanwhile
                log.exception("looking for newly registered base model versions failed")

    def admit(self, route: str) -> Admission:
        """Take a session slot.

        Raises:
            ShuttingDown: the server is stopping.
            LimitExceeded: ``max_sessions`` sessions are open.
        """
        if self.shutting_down:
            raise ShuttingDown("The server is restarting; try again shortly.")
        if len(self.sessions) >= self.config.limits.max_sessions:
            self.metrics.sessions_refused.labels(route).inc()
            raise LimitExceeded(f"The server is at its limit of {self.config.limits.max_sessions} concurrent "
                                "sessions; try again later.")
        admission = Admission(self, route)
        self.sessions.add(admission)
        self.metrics.sessions.labels(route).inc()
        self.metrics.sessions_active.labels(route).inc()
        return admission

    def _release(self, admission: Admission) -> None:
        if admission in self.sessions:
            self.sessions.remove(admission)
            self.metrics.sessions_active.labels(admission.route).dec()

    async def shutdown(self, timeout_s: float = 30.0) -> None:
        """Refuse new sessions; let every open WebSocket session flush its finals and close; wait for them."""
        self.shutting_down = True
        open_sessions = list(self.sessions)
        if not open_sessions:
            return
        log.info("shutting down: flushing %d session(s)", len(open_sessions))
        for admission in open_sessions:
            admission.stopping.set()
        waits = [asyncio.ensure_future(a.closed.wait()) for a in open_sessions]
        _done, pending = await asyncio.wait(waits, timeout=timeout_s)
        for w in pending:
            w.cancel()
        if pending:
            log.warning("%d session(s) did not finish within %.0f s of the shutdown", len(pending), timeout_s)


STATE = web.AppKey("state", ServerState)
