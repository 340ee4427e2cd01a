"""The batch scheduler: one model step for many live streams at once.

One :class:`BatchScheduler` serves one loaded model version. Sessions call
:meth:`BatchScheduler.step` with a :class:`~engine.recognizer.Stream` that
has a chunk ready; the scheduler's loop waits for the first such request,
gathers more until ``max_batch`` streams or the ``max_wait_ms`` deadline,
runs :meth:`~engine.recognizer.Recognizer.step` (which stacks the states,
steps the model on its device and splits the states back) in its own
executor, and resolves every waiting future — with the exception when the
step failed, so no session ever hangs. With ``workers = 1`` (the default)
one step runs at a time; more let steps overlap, each on its own thread.

Nothing here polls: the loop sleeps in ``Queue.get`` (first item), in
``asyncio.wait_for`` (the gathering deadline) and on a free worker.

A stream must not be touched by its session while its step is in flight
(the step mutates it in the executor thread): sessions await :meth:`step`
before feeding more audio.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from engine.recognizer import Recognizer, Result, Stream


@dataclass(frozen=True)
class SchedulerConfig:
    """How a scheduler gathers batches.

    Attributes:
        max_batch: most streams in one model step.
        max_wait_ms: how long to wait for more streams after the first one arrived.
        workers: steps that may run at once, each on its own executor thread (on a CPU, one per
            core lets the model use every core; the traced step runs without the GIL).
    """

    max_batch: int = 64
    max_wait_ms: float = 10.0
    workers: int = 1

    def __post_init__(self) -> None:
        if self.max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {self.max_batch}")
        if self.workers < 1:
            raise ValueError(f"workers must be at least 1, got {self.workers}")
        if self.max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must not be negative, got {self.max_wait_ms}")


@dataclass(frozen=True)
class StepStats:
    """What one batched step cost, for metrics.

    Attributes:
        batch_size: streams in the step.
        queue_wait_s: per stream, seconds from its request to the start of the step.
        step_s: seconds the step took in the executor.
        failed: True when the step raised.
    """

    batch_size: int
    queue_wait_s: tuple[float, ...]
    step_s: float
    failed: bool


@dataclass
class _Request:
    stream: Stream
    future: asyncio.Future[list[Result]]
    queued_at: float


class SchedulerClosed(RuntimeError):
    """A step was requested from a scheduler that is closed."""


class BatchScheduler:
    """Batches the model steps of every stream of one model version.

    Args:
        recognizer: the model version's recognizer.
        config: batch size and gathering deadline.
        on_step: called on the event loop after every step (metrics).
    """

    def __init__(self, recognizer: Recognizer, config: SchedulerConfig | None = None, *,
                 on_step: Callable[[StepStats], None] | None = None) -> None:
        self.recognizer = recognizer
        self.config = config or SchedulerConfig()
        self._on_step = on_step
        self._queue: asyncio.Queue[_Request] = asyncio.Queue()
        self._executor = ThreadPoolExecutor(max_workers=self.config.workers,
                                            thread_name_prefix=f"step-{recognizer.bundle.version}")
        self._free_workers = asyncio.Semaphore(self.config.workers)
        self._running: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def start(self) -> None:
        """Start the gathering loop on the running event loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="batch-scheduler")

    async def step(self, stream: Stream) -> list[Result]:
        """Run the stream's next chunk in the next batch; return that chunk's results.

        Raises:
            SchedulerClosed: when the scheduler is closed.
            Exception: whatever the model step raised.
        """
        if self._closed:
            raise SchedulerClosed("the recognizer is shutting down")
        self.start()
        future: asyncio.Future[list[Result]] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Request(stream, future, time.perf_counter()))
        return await future

    async def close(self) -> None:
        """Stop the loop; fail every request still queued; release the executor thread."""
        self._closed = True
        for task in [self._task, *self._running]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        while not self._queue.empty():
            request = self._queue.get_nowait()
            if not request.future.done():
                request.future.set_exception(SchedulerClosed("the recognizer is shutting down"))
        self._executor.shutdown(wait=True)

    async def _gather(self) -> list[_Request]:
        batch = [await self._queue.get()]
        deadline = time.perf_counter() + self.config.max_wait_ms / 1000
        while len(batch) < self.config.max_batch:
            if not self._queue.empty():
                batch.append(self._queue.get_nowait())
                continue
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except TimeoutError:
                break
        return batch

    async def _run(self) -> None:
        while True:
            # Gather the next batch only once a worker is free, so it holds every stream that came meanwhile.
            await self._free_workers.acquire()
            try:
                batch = await self._gather()
            except asyncio.CancelledError:
                self._free_workers.release()
                raise
            # A session that went away while queued has cancelled its future: skip its stream.
            batch = [r for r in batch if not r.future.done()]
            if not batch:
                self._free_workers.release()
                continue
            task = asyncio.get_running_loop().create_task(self._step(batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _step(self, batch: list[_Request]) -> None:
        loop = asyncio.get_running_loop()
        began = time.perf_counter()
        waits = tuple(began - r.queued_at for r in batch)
        try:
            results = await loop.run_in_executor(self._executor, self.recognizer.step, [r.stream for r in batch])
        except asyncio.CancelledError:
            for r in batch:
                if not r.future.done():
                    r.future.set_exception(SchedulerClosed("the recognizer is shutting down"))
            raise
        except Exception as exc:  # noqa: BLE001 - every waiter gets the step's exception
            for r in batch:
                if not r.future.done():
                    r.future.set_exception(exc)
            self._report(StepStats(len(batch), waits, time.perf_counter() - began, failed=True))
            return
        finally:
            self._free_workers.release()
        for r, res in zip(batch, results):
            if not r.future.done():
                r.future.set_result(res)
        self._report(StepStats(len(batch), waits, time.perf_counter() - began, failed=False))

    def _report(self, stats: StepStats) -> None:
        if self._on_step is not None:
            self._on_step(stats)
