"""The Watson custom acoustic model API: ``/v1/acoustic_customizations`` (PROTOCOLS.md §1.8, §1.9).

Audio resources are stored as sent and processed in the background
(:mod:`server.runtime.audio_resources`: ``being_processed → ok | invalid``).
Training fine-tunes the model's base version on them in a worker process
(:mod:`server.runtime.training`), with the transcripts the resources carry
(``transcripts.tsv`` in an archive, a ``Transcript`` header on a single file)
or, without them, transcripts the base model makes with the helper custom
language model (``custom_language_model_id``). ``progress`` counts 0-100.
voxgate extension: ``POST …/{id}/cancel_training`` stops a training or upgrade
at once (the model keeps the versions it had).
"""

from __future__ import annotations

from urllib.parse import unquote

from aiohttp import web

from protocol.errors import InvalidParameter, NotFoundError
from server.catalog import ACOUSTIC, AudioResource, CustomModel
from server.http.bodies import read_body
from server.http.keys import CATALOG, CONFIG, MODELS, RELEASES, TRAINING
from server.http.watson.customizations import iso, model_routes, query_bool, shared_routes, watson_route

MAX_AUDIO_BYTES = 100 * 1024 * 1024


def acoustic_model_json(m: CustomModel) -> dict:
    """A Watson ``AcousticModel``."""
    body = {"customization_id": m.id, "created": iso(m.created), "updated": iso(m.updated), "language": m.language,
            "versions": [v.base_version for v in m.versions] or [m.base_version], "owner": m.owner, "name": m.name,
            "description": m.description, "base_model_name": m.base_model_name, "status": m.status,
            "progress": m.progress}
    if m.warnings:
        body["warnings"] = m.warnings
    if m.error:
        body["error"] = m.error
    return body


def audio_json(a: AudioResource) -> dict:
    """A Watson ``AudioResource``."""
    body = {"duration": round(a.duration_s, 2), "name": a.name, "details": a.details or {}, "status": a.status}
    if a.error:
        body["error"] = a.error
    return body


def _id(request: web.Request) -> str:
    return request.match_info["customization_id"]


ACOUSTIC_ROUTES = model_routes(ACOUSTIC, acoustic_model_json, frozenset({"name", "base_model_name", "description"}))


@watson_route(("custom_language_model_id", "strict"))
async def train(request: web.Request, owner: str):
    """``POST …/{id}/train?custom_language_model_id=&strict=``: 200 ``{"warnings"}``, training in the background."""
    warnings = await request.app[CATALOG].start_acoustic_training(
        owner, _id(request), language_id=request.query.get("custom_language_model_id") or None,
        strict=query_bool(request, "strict", True), min_minutes=request.app[CONFIG].customization.min_acoustic_minutes)
    request.app[TRAINING].train_later(_id(request))
    return 200, {"warnings": warnings} if warnings else {}


@watson_route(("custom_language_model_id", "force"))
async def upgrade(request: web.Request, owner: str):
    """``POST …/{id}/upgrade_model?custom_language_model_id=&force=``."""
    await request.app[RELEASES].refresh()  # a release registered a moment ago is installed and servable first
    await request.app[CATALOG].start_acoustic_upgrade(
        owner, _id(request), language_id=request.query.get("custom_language_model_id") or None,
        force=query_bool(request, "force", False), installed=request.app[MODELS].versions)
    request.app[TRAINING].train_later(_id(request))
    return 200, {}


@watson_route()
async def list_audio(request: web.Request, owner: str):
    """``GET …/audio``: ``{"total_minutes_of_audio", "audio"}``."""
    audio = (await request.app[CATALOG].get(owner, ACOUSTIC, _id(request))).audio
    minutes = sum(a.duration_s for a in audio if a.status == "ok") / 60
    return 200, {"total_minutes_of_audio": round(minutes, 2), "audio": [audio_json(a) for a in audio]}


def _resource(model: CustomModel, name: str) -> AudioResource:
    for a in model.audio:
        if a.name == name:
            return a
    raise NotFoundError(f"Audio resource {name} not found for custom model {model.id}")


@watson_route()
async def get_audio(request: web.Request, owner: str):
    """``GET …/audio/{name}``: an ``AudioListing`` (an archive lists its files under ``audio``)."""
    model = await request.app[CATALOG].get(owner, ACOUSTIC, _id(request))
    resource = _resource(model, request.match_info["audio_name"])
    if (resource.details or {}).get("type") == "archive":
        files = [{"name": f"{resource.name}/{i}", "duration": round(item["duration"], 2), "status": "ok",
                  "details": {"type": "audio"}} for i, item in enumerate(resource.items or [])]
        return 200, {"container": audio_json(resource), "audio": files}
    return 200, audio_json(resource)


@watson_route(("allow_overwrite",))
async def add_audio(request: web.Request, owner: str):
    """``POST …/audio/{name}``: one audio file, or a zip / tar.gz archive (``Contained-Content-Type``); 201."""
    content_type = request.headers.get("Content-Type")
    if not content_type:
        raise InvalidParameter("Content-Type is required: the audio's type, or application/zip or application/gzip")
    contained = request.headers.get("Contained-Content-Type")
    transcript = request.headers.get("Transcript")
    if transcript is not None:
        transcript = unquote(transcript).strip() or None
    data = await read_body(request, limit_bytes=MAX_AUDIO_BYTES,
                           idle_timeout_s=request.app[CONFIG].limits.session_timeout_s, what="an audio resource")
    name = request.match_info["audio_name"]
    await request.app[CATALOG].add_audio(owner, _id(request), name, data, content_type=content_type,
                                         contained_content_type=contained, transcript=transcript,
                                         allow_overwrite=query_bool(request, "allow_overwrite", False))
    request.app[TRAINING].process_audio_later(_id(request), name)
    return 201, {}


@watson_route()
async def delete_audio(request: web.Request, owner: str):
    """``DELETE …/audio/{name}``."""
    await request.app[CATALOG].delete_audio(owner, _id(request), request.match_info["audio_name"])
    return 200, {}


def routes() -> list[web.RouteDef]:
    """Every route of the custom acoustic model API."""
    base = "/v1/acoustic_customizations"
    one = base + "/{customization_id}"
    return [
        *shared_routes(base, ACOUSTIC_ROUTES),
        web.post(one + "/train", train), web.post(one + "/upgrade_model", upgrade),
        web.get(one + "/audio", list_audio), web.post(one + "/audio/{audio_name}", add_audio),
        web.get(one + "/audio/{audio_name}", get_audio), web.delete(one + "/audio/{audio_name}", delete_audio),
    ]
