"""Admission control: how many recognition sessions are open, and the graceful shutdown that lets them finish."""

from __future__ import annotations

import asyncio
import logging

from protocol.errors import LimitExceeded, ShuttingDown
from server.runtime.metrics import Metrics

log = logging.getLogger("voxgate.server")


class Admission:
    """One admitted session's slot; a context manager that gives the slot back.

    ``stopping`` is set once the server begins shutting down: a WebSocket handler (the only task
    reading its socket) then flushes its finals and closes with 1012, and sets ``closed`` on leaving.
    """

    def __init__(self, sessions: Sessions, route: str) -> None:
        self._sessions = sessions
        self.route = route
        self.stopping = asyncio.Event()
        self.closed = asyncio.Event()

    def __enter__(self) -> Admission:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.closed.set()
        self._sessions.release(self)


class Sessions:
    """The open recognition sessions of one server, at most ``max_sessions``.

    Args:
        max_sessions: the limit (a request past it gets :class:`LimitExceeded`, 503).
        metrics: where sessions are counted.
    """

    def __init__(self, max_sessions: int, metrics: Metrics) -> None:
        self.max_sessions = max_sessions
        self._metrics = metrics
        self.open: set[Admission] = set()
        self.shutting_down = False

    def __len__(self) -> int:
        return len(self.open)

    def admit(self, route: str) -> Admission:
        """Take a session slot.

        Raises:
            ShuttingDown: the server is stopping.
            LimitExceeded: ``max_sessions`` sessions are open.
        """
        if self.shutting_down:
            raise ShuttingDown("The server is restarting; try again shortly.")
        if len(self.open) >= self.max_sessions:
            self._metrics.sessions_refused.labels(route).inc()
            raise LimitExceeded(f"The server is at its limit of {self.max_sessions} concurrent "
                                "sessions; try again later.")
        admission = Admission(self, route)
        self.open.add(admission)
        self._metrics.sessions.labels(route).inc()
        self._metrics.sessions_active.labels(route).inc()
        return admission

    def release(self, admission: Admission) -> None:
        """Give a slot back (idempotent)."""
        if admission in self.open:
            self.open.remove(admission)
            self._metrics.sessions_active.labels(admission.route).dec()

    async def shutdown(self, timeout_s: float = 30.0) -> None:
        """Refuse new sessions; let every open WebSocket session flush its finals and close; wait for them."""
        self.shutting_down = True
        open_sessions = list(self.open)
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
