"""Asynchronous recognition jobs: ``/v1/recognitions`` (Watson dialect, PROTOCOLS.md §1.4).

``POST`` checks the job's parameters (a job that names an expired model is refused at once with 400),
reads its audio and hands it to :class:`~server.runtime.jobs.JobRunner`, which stores and runs it.
"""

from __future__ import annotations

from aiohttp import web

from protocol.session import MIN_REQUEST_BYTES
from server.catalog import Job
from server.http.bodies import read_body, refuse_multipart
from server.http.keys import CATALOG, CONFIG, JOBS
from server.http.watson.errors import instance, watson


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


def _base(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


@watson("watson-jobs")
async def create_job(request: web.Request) -> web.Response:
    """``POST /v1/recognitions``: 201 ``{"id", "created", "url", "status"}``."""
    owner = instance(request)
    limits = request.app[CONFIG].limits
    params = {k: v for k, v in request.query.items() if k != "access_token"}
    content_type = request.headers.get("Content-Type")
    runner = request.app[JOBS]
    await runner.check(owner, params, content_type)
    refuse_multipart(content_type)
    audio = await read_body(request, limit_bytes=limits.max_request_bytes, idle_timeout_s=limits.session_timeout_s,
                            minimum=MIN_REQUEST_BYTES)
    job = await runner.create(owner, params, audio, content_type)
    body = job_json(job, _base(request), full=False)
    return web.json_response({k: body[k] for k in ("id", "created", "url", "status")}, status=201,
                             headers={"Location": body["url"]})


@watson("watson-jobs")
async def list_jobs(request: web.Request) -> web.Response:
    """``GET /v1/recognitions``: the instance's jobs (without results)."""
    jobs = await request.app[CATALOG].jobs(instance(request))
    return web.json_response({"recognitions": [job_json(j, _base(request), full=False) for j in jobs]})


@watson("watson-jobs")
async def get_job(request: web.Request) -> web.Response:
    """``GET /v1/recognitions/{id}``: the job, with ``results`` once completed."""
    job = await request.app[CATALOG].job(instance(request), request.match_info["id"])
    return web.json_response(job_json(job, _base(request), full=True))


@watson("watson-jobs")
async def delete_job(request: web.Request) -> web.Response:
    """``DELETE /v1/recognitions/{id}``: 204; 409 while processing."""
    await request.app[CATALOG].delete_job(instance(request), request.match_info["id"])
    return web.Response(status=204)


def routes() -> list[web.RouteDef]:
    """The ``/v1/recognitions`` routes."""
    return [web.post("/v1/recognitions", create_job), web.get("/v1/recognitions", list_jobs),
            web.get("/v1/recognitions/{id}", get_job), web.delete("/v1/recognitions/{id}", delete_job)]
