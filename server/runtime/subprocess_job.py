"""Run one CPU-heavy job (a training) in a fresh worker process: progress back, cancellable.

Training is Python- and torch-heavy; in a thread it would take the GIL from
live streams. Each job gets its own spawned process (forking a process with
live torch threads is unsafe) that reports ``progress(fraction)`` through a
pipe. Cancelling the awaiting task terminates the process at once, so a
stopping server never waits for a long training (the job runs again at the
next start), and a user's cancel takes effect immediately. The process ends with
the server however the server ends (:mod:`engine.lifeline`), so a job resumed after a crash
never races an orphan of the previous run.
"""

from __future__ import annotations

import asyncio
import importlib
import multiprocessing
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from engine.lifeline import follow_parent


class JobFailed(RuntimeError):
    """The job raised in its process (the message is the exception's) or the process died."""


def _target(fn: Callable | str) -> Callable:
    """``fn`` itself, or the function a ``"module:function"`` name names (imported here, in the worker)."""
    if callable(fn):
        return fn
    module, _, name = fn.partition(":")
    return getattr(importlib.import_module(module), name)


def _child(conn: Connection, fn: Callable | str, args: tuple) -> None:
    follow_parent()

    def progress(fraction: float) -> None:
        conn.send(("progress", float(fraction)))

    try:
        result = _target(fn)(*args, progress=progress)
        conn.send(("done", result))
    except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent
        conn.send(("error", f"{type(exc).__name__}: {exc}" if not isinstance(exc, ValueError) else str(exc),
                   traceback.format_exc()))
    finally:
        conn.close()


def _receive(conn: Connection, on_progress: Callable[[float], None], loop: asyncio.AbstractEventLoop) -> tuple:
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return ("died",)
        if message[0] == "progress":
            loop.call_soon_threadsafe(on_progress, message[1])
        else:
            return message


async def run_job(fn: Callable[..., Any] | str, *args: Any,
                  on_progress: Callable[[float], None] = lambda f: None) -> Any:
    """Run ``fn(*args, progress=callback)`` in a new process; return its result.

    ``fn`` may be named as ``"module:function"``: the worker imports it, the caller need not (training
    code stays out of the server process).

    Raises:
        JobFailed: ``fn`` raised (message: a ValueError's text, else the type and text), or the process died.
        asyncio.CancelledError: the awaiting task was cancelled (the process is terminated).
    """
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_child, args=(child, fn, args), daemon=True)
    process.start()
    child.close()
    loop = asyncio.get_running_loop()
    try:
        message = await asyncio.to_thread(_receive, parent, on_progress, loop)
    except asyncio.CancelledError:
        process.terminate()  # the receiving thread then sees EOF and ends
        raise
    finally:
        await asyncio.to_thread(process.join, 10)
        parent.close()
    if message[0] == "done":
        return message[1]
    if message[0] == "error":
        raise JobFailed(message[1])
    raise JobFailed(f"the worker process died (exit code {process.exitcode})")
