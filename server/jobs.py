"""Asynchronous recognition jobs: ``/v1/recognitions`` (Watson dialect, PROTOCOLS.md §1.4).

``POST`` stores the audio in the data directory and records the job
(``waiting``); a background runner recognises it (``processing``) and stores
the results (``completed``) or the reason (``failed``). Models are resolved
as batch requests: a job that names an expired model is refused at once
with 400 and a message naming the model and its deadline (and fails the
same way if the model expired while it waited). Jobs left ``waiting`` or
``processing`` by a stopped server run again at the next start.
With a ``callback_url`` registered by the same instance
(:mod:`server.callbacks`), the job's events are also posted to it.
"""

from __future__ import annotations

import asyncio
import json
import logging

from aiohttp import web

from protocol.errors import InvalidParameter, VoxgateError, public_message
from protocol.session import MIN_REQUEST_BYTES
from protocol.watson import parse_query_options, results_message
from server.bodies import read_body
from server.catalog import Job
from server.callbacks import Notifier, parse_events
from server.customization import resolve_request
from server.recognition import hypothesis
from server.state import DEFAULT_MODEL, STATE, ServerState
from server.watson_routes import watson_error, watson_recognition

log = logging.getLogger("voxgate.jobs")

#: parameters of a job that are not recognition options
JOB_PARAMS = frozenset({"callback_url", "events", "user_token", "results_ttl"})
#: jobs recognised at once
CONCURRENT_JOBS = 2
READ_BYTES = 64 * 1024


def job_json(job: Job, base_url: str, *, full: bool) -> dict:
    """A Watson ``RecognitionJob``."""
    body = {"id": job.id, "created": _iso(job.created), "updated": _iso(job.updated), "status": job.status,
            "url": f"{base_url}/v1/recognitions/{job.id}"}
    if job.user_token:
        body["user_token"] = job.user_token
    if full and job.status == "completed" and job.results is not None:
        body["results"] = [job.results]
        if job.results.get("warnings"):
            body["warnings"] = job.results["warnings"]
    if full and job.status == "failed" and job.error:
        body["error"] = job.error
    return body


def _iso(t) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


class JobRunner:
    """Runs waiting jobs in the background, a few at a time."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self._slots = asyncio.Semaphore(CONCURRENT_JOBS)
        self._tasks: set[asyncio.Task] = set()
        self.notifier = Notifier(state)

    async def start(self) -> None:
        """Queue the jobs a stopped server left unfinished."""
        for job_id in await self.state.catalog.unfinished_jobs():
            self.submit(job_id)

    def submit(self, job_id: str) -> None:
        """Run a job in the background."""
        task = asyncio.get_running_loop().create_task(self._run(job_id), name=f"job {job_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, job_id: str) -> None:
        catalog = self.state.catalog
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
        state = self.state
        params = {k: v for k, v in job.params.items() if k not in JOB_PARAMS and k != "content_type"}
        options = parse_query_options(params, job.params.get("content_type"))
        resolved = await resolve_request(state.customizations, state.models, job.owner, params,
                                         default_model=DEFAULT_MODEL, batch=True)
        finals = []

        async def keep(results) -> None:
            finals.extend(r for r in results if r.final)

        recognition = watson_recognition(state, resolved, options, keep, route="job")
        try:
            with state.customizations.using(resolved.language_id, resolved.acoustic_id), \
                    state.catalog.data.path(job.audio_path).open("rb") as fh:
                while chunk := fh.read(READ_BYTES):
                    recognition.feed(chunk)
                    await asyncio.sleep(0)  # let the stepper and other requests run
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


def _base(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


async def create_job(request: web.Request) -> web.Response:
    """``POST /v1/recognitions``: 201 ``{"id", "created", "url", "status"}``."""
    state: ServerState = request.app[STATE]
    try:
        owner = state.auth.api_key_instance(request.headers, request.query)
        params = {k: v for k, v in request.query.items() if k != "access_token"}
        if params.get("callback_url"):
            if await state.catalog.callback(owner, params["callback_url"]) is None:
                raise InvalidParameter(f"callback_url {params['callback_url']} is not registered for these "
                                       "credentials; register it with POST /v1/register_callback first")
            parse_events(params.get("events"))
        elif params.get("events"):
            raise InvalidParameter("events needs a callback_url")
        content_type = request.headers.get("Content-Type")
        if content_type and content_type.lower().startswith("multipart/"):
            raise InvalidParameter("multipart requests are not supported; send the audio as the body")
        options_query = {k: v for k, v in params.items() if k not in JOB_PARAMS}
        parse_query_options(options_query, content_type)  # bad options fail now, not in the job
        await resolve_request(state.customizations, state.models, owner, options_query, default_model=DEFAULT_MODEL,
                              batch=True)
        audio = await read_body(request, limit_bytes=state.config.limits.max_request_bytes,
                                idle_timeout_s=state.config.limits.session_timeout_s)
        if len(audio) < MIN_REQUEST_BYTES:
            raise InvalidParameter(f"Stream was {len(audio)} bytes but needs to be at least {MIN_REQUEST_BYTES} bytes.")
        if content_type:
            params["content_type"] = content_type
        job = await state.catalog.create_job(owner, params, bytes(audio), params.get("user_token"))
    except VoxgateError as exc:
        state.metrics.errors.labels("watson-jobs", type(exc).__name__).inc()
        return watson_error(exc)
    state.jobs.submit(job.id)
    body = job_json(job, _base(request), full=False)
    return web.json_response({k: body[k] for k in ("id", "created", "url", "status")}, status=201,
                             headers={"Location": body["url"]})


async def list_jobs(request: web.Request) -> web.Response:
    """``GET /v1/recognitions``: the instance's jobs (without results)."""
    state: ServerState = request.app[STATE]
    try:
        owner = state.auth.api_key_instance(request.headers, request.query)
    except VoxgateError as exc:
        return watson_error(exc)
    jobs = await state.catalog.jobs(owner)
    return web.json_response({"recognitions": [job_json(j, _base(request), full=False) for j in jobs]})


async def get_job(request: web.Request) -> web.Response:
    """``GET /v1/recognitions/{id}``: the job, with ``results`` once completed."""
    state: ServerState = request.app[STATE]
    try:
        owner = state.auth.api_key_instance(request.headers, request.query)
        job = await state.catalog.job(owner, request.match_info["id"])
    except VoxgateError as exc:
        return watson_error(exc)
    return web.json_response(job_json(job, _base(request), full=True))


async def delete_job(request: web.Request) -> web.Response:
    """``DELETE /v1/recognitions/{id}``: 204; 409 while processing."""
    state: ServerState = request.app[STATE]
    try:
        owner = state.auth.api_key_instance(request.headers, request.query)
        await state.catalog.delete_job(owner, request.match_info["id"])
    except VoxgateError as exc:
        return watson_error(exc)
    return web.Response(status=204)


def routes() -> list[web.RouteDef]:
    """The ``/v1/recognitions`` routes."""
    return [web.post("/v1/recognitions", create_job), web.get("/v1/recognitions", list_jobs),
            web.get("/v1/recognitions/{id}", get_job), web.delete("/v1/recognitions/{id}", delete_job)]
