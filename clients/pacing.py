"""Real-time pacing: chunk ``k`` of a stream is sent at ``start + k * chunk_s`` on a monotonic clock.

Sleeping ``chunk_s`` after every send would drift: each sleep overshoots a
little and the send itself takes time, so after a minute the stream runs
late by the sum of every overshoot, and a loaded load generator would
report the server slower than it is. Due times computed from the start
never accumulate error: a late chunk is sent at once and the next one is
due on the original schedule again.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class PacingSchedule:
    """When each chunk of a real-time stream is due.

    Attributes:
        chunk_s: seconds of audio per chunk, and so seconds between due times.
        start: the monotonic time chunk 0 is due.
    """

    chunk_s: float
    start: float

    def __post_init__(self) -> None:
        if not self.chunk_s > 0:
            raise ValueError(f"chunk_s must be positive, got {self.chunk_s}")

    def due(self, index: int) -> float:
        """The monotonic time chunk `index` (0-based) is due."""
        return self.start + index * self.chunk_s

    def wait_s(self, index: int, now: float) -> float:
        """Seconds to wait at time `now` before sending chunk `index` (0 when it is already due or late)."""
        return max(0.0, self.due(index) - now)


@dataclass(frozen=True)
class PacedChunk:
    """One chunk released by :func:`paced`.

    Attributes:
        index: 0-based position in the stream.
        data: the chunk's bytes.
        due: the monotonic time it was due.
        lag_s: how late the chunk was released after its due time (the sender's own delay, ≥ 0).
    """

    index: int
    data: bytes
    due: float
    lag_s: float


def split_bytes(data: bytes, chunk_bytes: int) -> list[bytes]:
    """`data` cut into pieces of `chunk_bytes` (the last may be shorter).

    Raises:
        ValueError: `chunk_bytes` is not positive.
    """
    if chunk_bytes <= 0:
        raise ValueError(f"chunk_bytes must be positive, got {chunk_bytes}")
    return [data[i : i + chunk_bytes] for i in range(0, len(data), chunk_bytes)]


def pcm_chunk_bytes(sample_rate_hz: int, chunk_s: float, *, channels: int = 1, sample_bytes: int = 2) -> int:
    """Bytes of `chunk_s` seconds of PCM, a whole number of frames (at least one)."""
    frame_bytes = channels * sample_bytes
    return max(1, round(sample_rate_hz * chunk_s)) * frame_bytes


def container_chunk_bytes(total_bytes: int, duration_s: float, chunk_s: float) -> int:
    """Bytes per chunk of an encoded file (WAV, FLAC) so that `chunk_s` of audio goes out per chunk on average.

    A compressed file has no fixed byte rate, but the server decodes whatever
    arrives, so an even share of the bytes per due time keeps the stream
    real-time on average, which is what the server sees.
    """
    if duration_s <= 0:
        raise ValueError(f"duration_s must be positive, got {duration_s}")
    chunks = max(1, math.ceil(duration_s / chunk_s))
    return max(1, math.ceil(total_bytes / chunks))


async def paced(chunks: Iterable[bytes], *, chunk_s: float, clock: Callable[[], float] = time.monotonic,
                sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> AsyncIterator[PacedChunk]:
    """Release `chunks` in real time: chunk ``k`` at ``start + k * chunk_s``, start = the first call.

    Args:
        chunks: the stream's pieces, each holding `chunk_s` seconds of audio.
        chunk_s: seconds of audio per chunk.
        clock: a monotonic clock (injected by tests).
        sleep: the coroutine that waits (injected by tests).

    Yields:
        Each chunk with its index and how late it was released.
    """
    schedule: PacingSchedule | None = None
    for index, data in enumerate(chunks):
        if schedule is None:
            schedule = PacingSchedule(chunk_s, clock())
        wait = schedule.wait_s(index, clock())
        if wait > 0:
            await sleep(wait)
        due = schedule.due(index)
        yield PacedChunk(index, data, due, max(0.0, clock() - due))
