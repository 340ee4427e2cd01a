"""``GET /v1/models`` and ``GET /v1/models/{model_id}``: Watson's SpeechModels, with every base version and its deadlines."""

from __future__ import annotations

import datetime as dt

from aiohttp import web

from engine.bundle import ModelBundle
from protocol.errors import NotFoundError
from server.catalog import Entry, Kind
from server.http.keys import CATALOG, MODELS
from server.http.watson.errors import watson


def _speech_model(bundle: ModelBundle, base_url: str, versions: list, today: dt.date, newest: str) -> dict:
    return {"name": bundle.name, "language": bundle.manifest["locale"], "rate": bundle.sample_rate_hz,
            "url": f"{base_url}/v1/models/{bundle.name}", "description": bundle.manifest.get("description", ""),
            "supported_features": {"custom_language_model": bundle.beam is not None, "custom_acoustic_model": True,
                                   "speaker_labels": False, "low_latency": True},
            # voxgate extension: every version with its stored deadlines and its state today
            "versions": [Entry(v.model, v.version, Kind.BASE, v.created, newest_base=v.version == newest).to_json(today)
                         for v in versions]}


async def _models_json(request: web.Request) -> dict[str, dict]:
    catalog, models = request.app[CATALOG], request.app[MODELS]
    base = f"{request.scheme}://{request.host}"
    rows = [r for r in await catalog.base_versions() if r.version in models.versions]
    today = catalog.today()
    return {name: _speech_model(loaded.bundle, base, [r for r in rows if r.model == name], today, loaded.version)
            for name, loaded in models.newest().items()}


@watson("watson-models")
async def list_models(request: web.Request) -> web.Response:
    """``GET /v1/models``: the Watson SpeechModels list, each with its versions and their deadlines."""
    return web.json_response({"models": list((await _models_json(request)).values())})


@watson("watson-models")
async def get_model(request: web.Request) -> web.Response:
    """``GET /v1/models/{model_id}``: one SpeechModel, or 404 in the Watson error shape."""
    model_id = request.match_info["model_id"]
    model = (await _models_json(request)).get(model_id)
    if model is None:
        raise NotFoundError(f"Model {model_id} not found")
    return web.json_response(model)


def routes() -> list[web.RouteDef]:
    """The SpeechModels routes."""
    return [web.get("/v1/models", list_models), web.get("/v1/models/{model_id}", get_model)]
