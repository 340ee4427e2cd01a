"""Amazon Transcribe's JSON 1.1 control plane: ``POST /`` with ``X-Amz-Target: Transcribe.<Operation>``.

The body is read whole (at most :data:`MAX_BODY_BYTES`), its SigV4 signature checked over the
body's hash (botocore signs it without a header), then :func:`protocol.transcribe_api.parse_request`
validates it and the operation runs on :class:`~server.runtime.transcribe_models.TranscribeModels`
(custom language models) or :class:`~server.runtime.transcribe_jobs.TranscribeJobs` (batch jobs).
Errors are ``{"__type", "Message"}`` bodies (:func:`server.http.transcribe.errors.json_error`). Only
``POST`` is routed at ``/``, so a page served at ``GET /`` does not clash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from protocol.transcribe_api import CONTENT_TYPE, Operation, parse_request, parse_target
from protocol.transcribe_responses import (create_language_model_response, describe_language_model_response,
                                           list_language_models_response, list_transcription_jobs_response,
                                           transcription_job_response)
from server.http.bodies import read_body
from server.http.keys import AUTH, CONFIG, TRANSCRIBE_JOBS, TRANSCRIBE_MODELS
from server.http.transcribe.errors import transcribe_json

#: The largest control request (the service's own requests are a few kB).
MAX_BODY_BYTES = 1024 * 1024

Operate = Callable[[web.Application, str, Any], Awaitable[dict]]


async def _create_model(app: web.Application, owner: str, request: Any) -> dict:
    return create_language_model_response(await app[TRANSCRIBE_MODELS].create(owner, request))


async def _describe_model(app: web.Application, owner: str, request: Any) -> dict:
    return describe_language_model_response(await app[TRANSCRIBE_MODELS].describe(owner, request.model_name))


async def _list_models(app: web.Application, owner: str, request: Any) -> dict:
    return list_language_models_response(*await app[TRANSCRIBE_MODELS].list(owner, request))


async def _delete_model(app: web.Application, owner: str, request: Any) -> dict:
    await app[TRANSCRIBE_MODELS].delete(owner, request.model_name)
    return {}


async def _start_job(app: web.Application, owner: str, request: Any) -> dict:
    return transcription_job_response(await app[TRANSCRIBE_JOBS].start(owner, request))


async def _get_job(app: web.Application, owner: str, request: Any) -> dict:
    return transcription_job_response(await app[TRANSCRIBE_JOBS].get(owner, request.transcription_job_name))


async def _list_jobs(app: web.Application, owner: str, request: Any) -> dict:
    jobs, token = await app[TRANSCRIBE_JOBS].list(owner, request)
    return list_transcription_jobs_response(jobs, token, request.status)


async def _delete_job(app: web.Application, owner: str, request: Any) -> dict:
    await app[TRANSCRIBE_JOBS].delete(owner, request.transcription_job_name)
    return {}


OPERATIONS: dict[Operation, Operate] = {
    Operation.CREATE_LANGUAGE_MODEL: _create_model, Operation.DESCRIBE_LANGUAGE_MODEL: _describe_model,
    Operation.LIST_LANGUAGE_MODELS: _list_models, Operation.DELETE_LANGUAGE_MODEL: _delete_model,
    Operation.START_TRANSCRIPTION_JOB: _start_job, Operation.GET_TRANSCRIPTION_JOB: _get_job,
    Operation.LIST_TRANSCRIPTION_JOBS: _list_jobs, Operation.DELETE_TRANSCRIPTION_JOB: _delete_job,
}


@transcribe_json("transcribe-api")
async def control(request: web.Request) -> web.Response:
    """``POST /``: one Transcribe operation; 200 with its JSON 1.1 response."""
    app = request.app
    operation = None
    try:
        body = await read_body(request, limit_bytes=MAX_BODY_BYTES, idle_timeout_s=app[CONFIG].limits.session_timeout_s,
                               what="the request body")
        owner = app[AUTH].signed_request_instance(method=request.method, path=request.path,
                                                  raw_query=request.query_string, headers=request.headers,
                                                  query=request.query, payload_sha256=hashlib.sha256(body).hexdigest())
        target = request.headers.get("X-Amz-Target")
        operation = parse_target(target)
        _operation, parsed = parse_request(target, body)
        answer = await OPERATIONS[operation](app, owner, parsed)
    except Exception as exc:
        exc.transcribe_operation = operation  # type: ignore[attr-defined]  # read by json_error
        raise
    return web.Response(body=json.dumps(answer).encode(), headers={"Content-Type": CONTENT_TYPE})


def routes() -> list[web.RouteDef]:
    """The control plane's one route."""
    return [web.post("/", control)]
