"""The batch scheduler: batched results equal one-by-one results, failures reach every waiter."""

import asyncio

import pytest

from engine.recognizer import Recognizer
from engine.scheduler import BatchScheduler, SchedulerClosed, SchedulerConfig, StepStats
from tests.engine.test_recognizer import noise


async def _finals_through(scheduler: BatchScheduler, stream, samples) -> list[str]:
    stream.accept_audio(samples)
    stream.end_audio()
    finals = []
    while not stream.finished:
        finals += [r.transcript for r in await scheduler.step(stream) if r.final]
    return finals


def test_concurrent_streams_are_batched_and_match_single_runs(tiny_bundle) -> None:
    recognizer = Recognizer(tiny_bundle)
    signals = [noise(1.0 + 0.25 * i, seed=10 + i) for i in range(6)]
    singles = [[r.transcript for r in recognizer.run(recognizer.new_stream(), s)] for s in signals]
    stats: list[StepStats] = []

    async def main() -> list[list[str]]:
        scheduler = BatchScheduler(recognizer, SchedulerConfig(max_batch=4, max_wait_ms=50), on_step=stats.append)
        try:
            return await asyncio.gather(*(_finals_through(scheduler, recognizer.new_stream(), s) for s in signals))
        finally:
            await scheduler.close()

    assert asyncio.run(main()) == singles
    assert any(singles)
    assert max(s.batch_size for s in stats) == 4  # six streams at once, capped at max_batch
    assert all(not s.failed and len(s.queue_wait_s) == s.batch_size for s in stats)


def test_a_failing_step_fails_every_waiter_and_the_scheduler_goes_on(tiny_bundle) -> None:
    recognizer = Recognizer(tiny_bundle)
    real_step = recognizer.step
    calls = []

    def failing_once(streams):
        calls.append(len(streams))
        if len(calls) == 1:
            raise RuntimeError("device lost")
        return real_step(streams)

    recognizer.step = failing_once  # the real step, made to fail once: the failure path under test

    async def main():
        scheduler = BatchScheduler(recognizer, SchedulerConfig(max_batch=8, max_wait_ms=50))
        streams = [recognizer.new_stream() for _ in range(3)]
        for s in streams:
            s.accept_audio(noise(0.5, seed=3))
        try:
            first = await asyncio.gather(*(scheduler.step(s) for s in streams), return_exceptions=True)
            fresh = recognizer.new_stream()
            fresh.accept_audio(noise(0.5, seed=4))
            after = await scheduler.step(fresh)
        finally:
            await scheduler.close()
        return first, after

    first, after = asyncio.run(main())
    assert calls[0] == 3
    assert all(isinstance(e, RuntimeError) and str(e) == "device lost" for e in first)
    assert isinstance(after, list)


def test_closed_scheduler_refuses_steps(tiny_bundle) -> None:
    recognizer = Recognizer(tiny_bundle)

    async def main():
        scheduler = BatchScheduler(recognizer)
        await scheduler.close()
        stream = recognizer.new_stream()
        stream.accept_audio(noise(0.5, seed=5))
        await scheduler.step(stream)

    with pytest.raises(SchedulerClosed):
        asyncio.run(main())


@pytest.mark.parametrize("kwargs", [{"max_batch": 0}, {"max_wait_ms": -1}])
def test_config_is_validated(kwargs) -> None:
    with pytest.raises(ValueError):
        SchedulerConfig(**kwargs)
