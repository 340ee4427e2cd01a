"""Jobs in a worker process: result, progress, errors, a dying process, cancellation."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from server.runtime.subprocess_job import JobFailed, run_job


def add(a: int, b: int, *, progress) -> int:
    progress(0.5)
    progress(1.0)
    return a + b


def bad(*, progress) -> None:
    raise ValueError("nothing to train on")


def die(*, progress) -> None:
    os._exit(3)


def write_pid_and_sleep(path: str, *, progress) -> None:
    with open(path, "w") as fh:
        fh.write(str(os.getpid()))
    progress(0.1)
    time.sleep(60)


def test_result_and_progress():
    seen: list[float] = []
    assert asyncio.run(run_job(add, 2, 3, on_progress=seen.append)) == 5
    assert seen == [0.5, 1.0]


def test_errors_and_a_dead_process_raise_job_failed():
    with pytest.raises(JobFailed, match="^nothing to train on$"):
        asyncio.run(run_job(bad))
    with pytest.raises(JobFailed, match="exit code 3"):
        asyncio.run(run_job(die))


def test_cancelling_terminates_the_process_at_once(tmp_path):
    pid_file = tmp_path / "pid"

    async def main():
        started = asyncio.Event()
        task = asyncio.create_task(run_job(write_pid_and_sleep, str(pid_file), on_progress=lambda f: started.set()))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    asyncio.run(main())
    with pytest.raises(ProcessLookupError):  # terminated and reaped, not left sleeping
        os.kill(int(pid_file.read_text()), 0)
