"""Worker processes die with their parent (issue 13, defect 4: after a ``kill -9`` of the server its
search workers and training worker ran on under PID 1, and a restarted server resumed the training
beside the orphan).

Every worker voxgate spawns (``multiprocessing``'s spawn start method) calls :func:`follow_parent`
first. Spawned children hold a *sentinel* of their parent: the read end of a pipe whose write end
only the parent holds, so it becomes readable the moment the parent is gone — however it died.
A daemon thread blocks on it (no polling) and ends the worker with ``os._exit``.
"""

from __future__ import annotations

import multiprocessing
import os
import threading

#: The exit status of a worker whose parent died.
ORPHANED_EXIT = 70


def follow_parent() -> bool:
    """In a spawned worker: exit as soon as the parent process is gone.

    Returns:
        False when this process has no multiprocessing parent (called outside a worker), else True.
    """
    parent = multiprocessing.parent_process()
    if parent is None:
        return False

    def watch() -> None:
        parent.join()  # waits on the parent's sentinel: returns only once the parent has exited
        os._exit(ORPHANED_EXIT)

    threading.Thread(target=watch, name="follow-parent", daemon=True).start()
    return True
