"""Real-time pacing: due times from the start (no drift), late chunks at once, the lag measured."""

import asyncio

import pytest

from clients.pacing import (PacingSchedule, container_chunk_bytes, paced, pcm_chunk_bytes, split_bytes)


class FakeClock:
    """A monotonic clock that moves only when the code under test sleeps (plus a chosen overshoot)."""

    def __init__(self, start: float = 100.0, overshoot_s: float = 0.0) -> None:
        self.now = start
        self.overshoot_s = overshoot_s
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds + self.overshoot_s


async def _collect(chunks, clock: FakeClock, chunk_s: float = 0.1, work_s: float = 0.0):
    out = []
    async for chunk in paced(chunks, chunk_s=chunk_s, clock=clock, sleep=clock.sleep):
        out.append((chunk, clock.now))
        clock.now += work_s  # the send itself takes time
    return out


def test_schedule_due_times_are_absolute() -> None:
    schedule = PacingSchedule(chunk_s=0.1, start=5.0)
    assert [schedule.due(k) for k in range(4)] == pytest.approx([5.0, 5.1, 5.2, 5.3])
    assert schedule.wait_s(3, now=5.25) == pytest.approx(0.05)
    assert schedule.wait_s(3, now=5.4) == 0.0  # late: no wait, never negative
    with pytest.raises(ValueError, match="positive"):
        PacingSchedule(chunk_s=0.0, start=0.0)


def test_overshooting_sleeps_do_not_accumulate() -> None:
    # Every sleep overshoots by 7 ms and every send takes 3 ms: cumulative sleeps would drift by 1 s
    # over 100 chunks; the schedule keeps each release within one overshoot of its due time.
    clock = FakeClock(overshoot_s=0.007)
    out = asyncio.run(_collect([b"x"] * 100, clock, work_s=0.003))
    for chunk, released in out:
        assert chunk.due == pytest.approx(100.0 + chunk.index * 0.1)
        assert released - chunk.due == pytest.approx(0.0 if chunk.index == 0 else 0.007)
        assert chunk.lag_s == pytest.approx(released - chunk.due)
    assert len(clock.sleeps) == 99  # chunk 0 is due at the start
    assert out[-1][1] == pytest.approx(100.0 + 9.9 + 0.007)  # after 100 chunks, still one overshoot late


def test_late_chunks_go_at_once_and_the_schedule_resumes() -> None:
    clock = FakeClock()

    async def run():
        released = []
        async for chunk in paced([b"a", b"b", b"c", b"d"], chunk_s=0.1, clock=clock, sleep=clock.sleep):
            released.append((chunk.index, clock.now, chunk.lag_s))
            if chunk.index == 0:
                clock.now += 0.25  # a stall: chunks 1 and 2 are overdue
        return released

    released = asyncio.run(run())
    assert [r[0] for r in released] == [0, 1, 2, 3]
    assert released[1][1] == pytest.approx(100.25) and released[1][2] == pytest.approx(0.15)
    assert released[2][1] == pytest.approx(100.25) and released[2][2] == pytest.approx(0.05)
    assert released[3][1] == pytest.approx(100.3) and released[3][2] == pytest.approx(0.0)
    assert len(clock.sleeps) == 1  # only chunk 3 had to wait


def test_real_clock_releases_in_order() -> None:
    async def run():
        return [chunk.index async for chunk in paced([b"1", b"2", b"3"], chunk_s=0.05)]

    assert asyncio.run(run()) == [0, 1, 2]


def test_chunk_sizes() -> None:
    assert pcm_chunk_bytes(16000, 0.1) == 3200
    assert pcm_chunk_bytes(8000, 0.02, channels=2) == 640
    assert pcm_chunk_bytes(8000, 0.00001) == 2  # at least one frame
    assert container_chunk_bytes(1000, 1.0, 0.1) == 100
    assert container_chunk_bytes(1001, 1.0, 0.1) == 101  # the rounding goes up: never more chunks than due times
    assert container_chunk_bytes(10, 0.05, 0.1) == 10
    assert split_bytes(b"abcdefg", 3) == [b"abc", b"def", b"g"]
    assert split_bytes(b"", 3) == []
    with pytest.raises(ValueError):
        split_bytes(b"a", 0)
    with pytest.raises(ValueError):
        container_chunk_bytes(10, 0.0, 0.1)
