"""Workers die with their parent, even one killed with SIGKILL (issue 13, defect 4)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.lifeline import follow_parent

# A parent that starts one worker of each kind voxgate has, through the production code: a search
# pool over a bundle (engine.searchpool) and a training-style job (server.runtime.subprocess_job); it
# prints their pids, then waits to be killed.
PARENT = r"""
import asyncio, os, sys, time
from engine.searchpool import SearchPool
from server.runtime.subprocess_job import run_job
from tests.engine.test_lifeline import report_and_sleep

async def main():
    pool = SearchPool(sys.argv[1])
    pool.wait_ready()
    print(next(iter(pool._executor._processes)), flush=True)
    await run_job(report_and_sleep, sys.argv[2])

if __name__ == "__main__":
    asyncio.run(main())
"""


def report_and_sleep(pid_file: str, *, progress) -> None:
    """A job that writes its pid and then sleeps (a stand-in for a long training)."""
    Path(pid_file).write_text(str(os.getpid()))
    time.sleep(600)


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


@pytest.mark.timeout(120)
def test_workers_exit_when_the_parent_is_killed(tmp_path: Path, tiny_bundle) -> None:
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    root = Path(__file__).resolve().parents[2]
    pid_file = tmp_path / "job.pid"
    parent = subprocess.Popen([sys.executable, str(script), str(tiny_bundle.path), str(pid_file)],
                              stdout=subprocess.PIPE, text=True, cwd=root, env={**os.environ, "PYTHONPATH": str(root)})
    try:
        workers = [int(parent.stdout.readline())]
        deadline = time.monotonic() + 60
        while not pid_file.exists() or not pid_file.read_text():
            assert time.monotonic() < deadline and parent.poll() is None, "the job worker did not start"
            time.sleep(0.1)
        workers.append(int(pid_file.read_text()))
        assert all(_alive(p) for p in workers)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 60  # a bound for a loaded machine, not a timing claim
        while any(_alive(p) for p in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(p) for p in workers), "a worker outlived its parent"
    finally:
        parent.kill()
        parent.wait()
        parent.stdout.close()


def test_outside_a_worker_it_does_nothing() -> None:
    assert follow_parent() is False
