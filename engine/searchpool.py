"""Live streams' beam searches in a worker process.

flashlight-text's decoder holds the GIL while it searches, and for a live
stream the search (run along the utterance, :class:`engine.beam.OnlineSearch`)
costs about as much CPU as the model step. :class:`SearchPool` moves every
live search of one model version into one worker process, so it runs on
another core beside the event loop and the batch step.

The step thread queues operations (a chunk for a stream's search, the end of
an utterance) while it files a batch's outputs, then :meth:`SearchPool.flush`
sends the whole batch's operations as one task: one round trip per batch step,
not per stream. One worker runs the tasks in order, so each stream's chunks
reach its search in order. The end of an utterance gives a future of its
tokens, which the server awaits before it sends that final.

A search with a custom LM carries the custom LM's folder and weight in its
operations; the worker loads it once and keeps the built decoder in the LRU
cache of :func:`engine.customlm.custom_decoder`. Its end gives words, not tokens
(:meth:`engine.recognizer.Recognizer.words_of` takes either).
"""

from __future__ import annotations

import itertools
import multiprocessing
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

import torch

from engine.customlm import CustomLM, custom_decoder
from engine.decoding import Token, Word
from engine.lifeline import follow_parent

_BUNDLE = None  # the worker's ModelBundle
_BEAM = None  # its BeamDecoder
_CUSTOM: dict = {}  # custom LM folder -> CustomLM, as loaded by this worker
_SEARCHES: dict = {}  # the worker's live searches, by stream key
_DROPPED: set = set()  # keys of abandoned streams (a step in flight when one went away may still arrive)


def _start_worker(bundle_path: str) -> None:
    global _BEAM, _BUNDLE
    from engine.bundle import load_bundle

    follow_parent()
    torch.set_num_threads(1)
    _BUNDLE = load_bundle(Path(bundle_path), search_only=True)
    _BEAM = _BUNDLE.beam


def _ready() -> bool:
    return _BEAM is not None


def _new_search(custom: tuple[str, float] | None):
    """A search of the base LM, or mixed with the custom LM ``(folder, weight)``."""
    if custom is None:
        return _BEAM.online()
    path, weight = custom
    lm = _CUSTOM.get(path)
    if lm is None:
        lm = _CUSTOM[path] = CustomLM.load(Path(path))
    else:  # rebuilt in place since it was loaded? (the build id changes)
        fresh = CustomLM.load(Path(path))
        if fresh.build_id != lm.build_id:
            lm = _CUSTOM[path] = fresh
    return custom_decoder(_BUNDLE, lm, weight).online()


def _run(ops: list[tuple]) -> list[list[Token] | list[Word]]:
    """Apply a batch's operations in order; return the result of each ``end`` (tokens, or words
    for a custom search)."""
    ends = []
    for op in ops:
        kind, key = op[0], op[1]
        if kind == "drop":  # the stream went away
            _SEARCHES.pop(key, None)
            _DROPPED.add(key)
        elif kind == "step" and key not in _DROPPED:
            search = _SEARCHES.get(key)
            if search is None:
                search = _SEARCHES[key] = _new_search(op[3])
            search.step(torch.from_numpy(op[2]))
        elif kind == "end":
            search = _SEARCHES.pop(key, None)
            log_probs = torch.from_numpy(op[2])
            if key in _DROPPED:
                ends.append([])
                continue
            if search is None:  # never stepped: search the whole utterance now
                search = _new_search(op[4])
                search.step(log_probs)
            ends.append(search.end(log_probs, frame_offset=op[3]))
    return ends


class RemoteSearch:
    """One stream's utterance search in the pool; the interface of :class:`engine.beam.OnlineSearch`,
    except that :meth:`end` returns a future of the tokens (of the words, with a custom LM)."""

    def __init__(self, pool: SearchPool, key: int, custom: tuple[str, float] | None = None) -> None:
        self._pool = pool
        self._key = key
        self._custom = custom

    def step(self, log_probs: torch.Tensor) -> None:
        """Queue ``(U, V)`` log posteriors for the search (sent at the pool's next flush)."""
        if log_probs.shape[0]:
            self._pool._queue(("step", self._key, log_probs.float().contiguous().numpy().copy(), self._custom))

    def end(self, log_probs: torch.Tensor, *, frame_offset: int = 0) -> Future[list[Token] | list[Word]]:
        """Queue the end of the utterance; the future gives its tokens (words) after the next flush."""
        future: Future[list[Token] | list[Word]] = Future()
        self._pool._queue(("end", self._key, log_probs.float().contiguous().numpy().copy(), frame_offset,
                           self._custom), future)
        return future

    def drop(self) -> None:
        """Forget the search (the stream went away)."""
        self._pool._queue(("drop", self._key))
        self._pool.flush()


class SearchPool:
    """A worker process running the live beam searches of one bundle.

    Args:
        bundle_path: the bundle folder (the worker loads its lexicon and LM).
    """

    def __init__(self, bundle_path: Path) -> None:
        # spawn: forking a process with live torch threads is unsafe.
        self._executor = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_start_worker, initargs=(str(bundle_path),))
        self._warm = self._executor.submit(_ready)
        self._keys = itertools.count()
        self._lock = threading.Lock()
        self._ops: list[tuple] = []
        self._ends: list[Future] = []

    def wait_ready(self) -> None:
        """Block until the worker has loaded the bundle (raises what its start raised)."""
        self._warm.result()

    def search(self, *, custom_lm: CustomLM | None = None, customization_weight: float = 0.3) -> RemoteSearch:
        """A new utterance search, with ``custom_lm`` mixed in at ``customization_weight`` when given."""
        custom = None if custom_lm is None else (str(Path(custom_lm.path).resolve()), float(customization_weight))
        return RemoteSearch(self, next(self._keys), custom)

    def _queue(self, op: tuple, future: Future | None = None) -> None:
        with self._lock:
            self._ops.append(op)
            if future is not None:
                self._ends.append(future)

    def flush(self) -> None:
        """Send what was queued as one task."""
        with self._lock:
            ops, ends, self._ops, self._ends = self._ops, self._ends, [], []
        if not ops:
            return
        task = self._executor.submit(_run, ops)

        def distribute(done: Future) -> None:
            # Every end's future is resolved, also when the worker died or the pool was shut down.
            error = RuntimeError("the search worker stopped") if done.cancelled() else done.exception()
            results = None if error is not None else done.result()
            for i, future in enumerate(ends):
                if error is not None:
                    future.set_exception(error)
                else:
                    future.set_result(results[i])

        task.add_done_callback(distribute)

    def close(self) -> None:
        """Stop the worker."""
        self._executor.shutdown(wait=True, cancel_futures=True)
