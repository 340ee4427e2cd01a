"""Admission control alone: the limit, the slot given back, the shutdown that waits for open sessions."""

from __future__ import annotations

import asyncio

import pytest

from protocol.errors import LimitExceeded, ShuttingDown
from server.runtime.metrics import Metrics
from server.runtime.sessions import Sessions


def test_the_limit_refuses_and_a_released_slot_admits_again() -> None:
    sessions = Sessions(2, Metrics())
    first, _second = sessions.admit("watson-ws"), sessions.admit("watson-ws")
    with pytest.raises(LimitExceeded, match="limit of 2 concurrent sessions"):
        sessions.admit("watson-http")
    with first:
        pass
    assert len(sessions) == 1
    sessions.admit("watson-http")
    assert len(sessions) == 2


def test_shutdown_refuses_new_sessions_and_waits_for_open_ones_to_close() -> None:
    async def scenario() -> list[str]:
        sessions = Sessions(4, Metrics())
        admission = sessions.admit("watson-ws")
        seen: list[str] = []

        async def session() -> None:
            with admission:
                await admission.stopping.wait()
                seen.append("flushed")

        task = asyncio.create_task(session())
        await asyncio.sleep(0)
        await sessions.shutdown(timeout_s=10)
        seen.append("shut down")
        await task
        with pytest.raises(ShuttingDown):
            sessions.admit("watson-ws")
        return seen

    assert asyncio.run(scenario()) == ["flushed", "shut down"]
