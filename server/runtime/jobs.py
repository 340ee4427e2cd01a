"""Asynchronous recognition jobs (Watson dialect, PROTOCOLS.md §1.4): stored, run in the background, resumed.

A job's audio is stored in the data directory and the job recorded
(``waiting``); :class:`JobRunner` recognises it (``processing``) and stores
the results (``completed``) or the reason (``failed``). Models are resolved
as batch requests: a job that names an expired model is refused at once
with 400 and a message naming the model and its deadline (and fails the
same way if the model expired while it waited). Jobs left ``waiting`` or
``processing`` by a stopped server run again at the next start. With a
``callback_url`` registered by the same instance, the job's events are also
posted to it (:mod:`server.runtime.notifier`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping

from protocol.errors import InvalidParameter, VoxgateError, public_message
from protocol.watson import parse_query_options, results_message
from server.catalog import Catalog, Job
from server.runtime.models import CustomModels
from server.runtime.notifier import Notifier, parse_events
from server.runtime.recognition import Recognitions, hypothesis
from server.runtime.resolution import Resolver

log = logging.getLogger("voxgate.jobs")

#: parameters of a job that are not recognition options
JOB_PARAMS = frozenset({"callback_url", "events", "user_token", "results_ttl"})
#: jobs recognised at once
CONCURRENT_JOBS = 2
READ_BYTES = 64 * 1024


class JobRunner:
    """Runs waiting jobs in the background, a few at a time.

    Args:
        catalog: where jobs, their audio and their results are stored.
        resolve: resolves a job's models (as a batch request).
        recognitions: makes the jobs' recognitions.
        custom: counts the custom models a running job uses.
        notifier: sends the jobs' events to their callback URLs.
    """

    def __init__(self, catalog: Catalog, resolve: Resolver, recognitions: Recognitions, custom: CustomModels,
                 notifier: Notifier) -> None:
        self.catalog = catalog
        self.resolve = resolve
        self.recognitions = recognitions
        self.custom = custom
        self.notifier = notifier
        self._slots = asyncio.Semaphore(CONCURRENT_JOBS)
        self._tasks: set[asyncio.Task] = set()

    async def start(self) -> None:
        """Queue the jobs a stopped server left unfinished."""
        for job_id in await self.catalog.unfinished_jobs():
            self.submit(job_id)

    def submit(self, job_id: str) -> None:
        """Run a job in the background."""
        task = asyncio.get_running_loop().create_task(self._run(job_id), name=f"job {job_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, job_id: str) -> None:
        catalog = self.catalog
        async with self._slots:
            job = await catalog.update_job(job_id, status="processing")
            if job is None or job.audio_path is None:
                return
            await self.notifier.notify(job, "recognitions.started")
            try:
                results = await self._recognise(job)
            except VoxgateError as exc:
                job = await catalog.update_job(job_id, status="failed", error=public_message(exc))
            except asyncio.CancelledError:
                raise  # server stopping: the job stays processing and runs again at the next start
            except Exception:  # noqa: BLE001 - the job fails with a generic message; the log has the detail
                log.exception("recognition job %s failed", job_id)
                job = await catalog.update_job(job_id, status="failed", error="internal error while recognising")
            else:
                job = await catalog.update_job(job_id, status="completed", results=results)
            if job is not None:
                await self.notifier.notify(job, f"recognitions.{job.status}")

    async def _recognise(self, job: Job) -> dict:
        params = {k: v for k, v in job.params.items() if k not in JOB_PARAMS and k != "content_type"}
        options = parse_query_options(params, job.params.get("content_type"))
        resolved = await self.resolve(job.owner, params, batch=True)
        finals = []

        async def keep(results) -> None:
            finals.extend(r for r in results if r.final)

        recognition = self.recognitions.for_watson(resolved, options, keep, route="job")
        try:
            with self.custom.using(resolved.language_id, resolved.acoustic_id), \
                    self.catalog.data.path(job.audio_path).open("rb") as fh:
                while chunk := await asyncio.to_thread(fh.read, READ_BYTES):
                    recognition.feed(chunk)
                await recognition.finish()
        finally:
            recognition.close()
        return json.loads(results_message(0, [hypothesis(r) for r in finals if r.words], options,
                                          options.warnings + resolved.warnings + recognition.warnings,
                                          resolved.recognized_with()))

    async def close(self) -> None:
        """Stop the runner (unfinished jobs run again at the next start)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self.notifier.close()

    async def check(self, owner: str, params: Mapping[str, str], content_type: str | None) -> dict[str, str]:
        """Validate a new job's parameters before its audio is read, so that bad ones fail at once.

        Returns:
            Its recognition options (the parameters that are not the job's own).

        Raises:
            InvalidParameter: an unregistered ``callback_url``, bad ``events``, bad options.
            NotFoundError, ModelExpired: as :class:`~server.runtime.resolution.Resolver`.
        """
        if params.get("callback_url"):
            if await self.catalog.callback(owner, params["callback_url"]) is None:
                raise InvalidParameter(f"callback_url {params['callback_url']} is not registered for these "
                                       "credentials; register it with POST /v1/register_callback first")
            parse_events(params.get("events"))
        elif params.get("events"):
            raise InvalidParameter("events needs a callback_url")
        options_query = {k: v for k, v in params.items() if k not in JOB_PARAMS}
        parse_query_options(options_query, content_type)  # bad options fail now, not in the job
        await self.resolve(owner, options_query, batch=True)
        return options_query

    async def create(self, owner: str, params: dict[str, str], audio: bytes, content_type: str | None) -> Job:
        """Store a checked job (see :meth:`check`) with its audio and run it in the background."""
        params = {**params, **({"content_type": content_type} if content_type else {})}
        job = await self.catalog.create_job(owner, params, audio, params.get("user_token"))
        self.submit(job.id)
        return job
