"""The HTTP server. For now: health and the base-model list, over the really loaded models.

The streaming routes (``/v1/recognize`` and the Transcribe dialect) arrive
with the gateway issue; this app already loads the newest version of every
shipped base model at start, so a broken artifact fails the start, not the
first request.
"""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path

from aiohttp import web

from engine.bundle import ModelBundle, find_models, load_bundle
from engine.catalog import default_models_dir

log = logging.getLogger("voxgate.server")
MODELS_KEY = web.AppKey("models", dict)


def load_newest(models_dir: Path) -> dict[str, ModelBundle]:
    """Load the newest version of each installed model.

    Raises:
        RuntimeError: when no model is installed.
    """
    newest = {m.name: m for m in find_models(models_dir)}
    if not newest:
        raise RuntimeError(f"no model artifacts under {models_dir}")
    return {name: load_bundle(m.path) for name, m in newest.items()}


async def healthz(request: web.Request) -> web.Response:
    """``GET /healthz``: 200 with the loaded model versions."""
    return web.json_response({"status": "ok", "models": sorted(b.version for b in request.app[MODELS_KEY].values())})


def _speech_model(bundle: ModelBundle, base_url: str) -> dict:
    return {"name": bundle.name, "language": bundle.manifest["locale"], "rate": bundle.sample_rate_hz,
            "url": f"{base_url}/v1/models/{bundle.name}", "description": bundle.manifest.get("description", ""),
            "supported_features": {"custom_language_model": False, "custom_acoustic_model": False,
                                   "speaker_labels": False, "low_latency": True}}


async def list_models(request: web.Request) -> web.Response:
    """``GET /v1/models``: the Watson SpeechModels list."""
    base = f"{request.scheme}://{request.host}"
    return web.json_response({"models": [_speech_model(b, base) for b in request.app[MODELS_KEY].values()]})


async def get_model(request: web.Request) -> web.Response:
    """``GET /v1/models/{model_id}``: one SpeechModel, or 404 in the Watson error shape."""
    bundle = request.app[MODELS_KEY].get(request.match_info["model_id"])
    if bundle is None:
        message = f"Model {request.match_info['model_id']} not found"
        return web.json_response({"code": 404, "code_description": "Not Found", "error": message}, status=404)
    return web.json_response(_speech_model(bundle, f"{request.scheme}://{request.host}"))


def make_app(models_dir: Path | None = None) -> web.Application:
    """Build the application, loading the models now."""
    app = web.Application()
    app[MODELS_KEY] = load_newest(models_dir or default_models_dir())
    app.add_routes([web.get("/healthz", healthz), web.get("/v1/models", list_models),
                    web.get("/v1/models/{model_id}", get_model)])
    return app


def serve(*, host: str, port: int, models_dir: str | None) -> int:
    """Run the server until interrupted; return the exit status."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not ipaddress.ip_address(host if host != "localhost" else "127.0.0.1").is_loopback:
        log.error("no credentials can be configured yet, so voxgate only serves on loopback; refusing %s", host)
        return 2
    app = make_app(Path(models_dir) if models_dir else None)
    log.info("loaded %s", ", ".join(sorted(b.version for b in app[MODELS_KEY].values())))
    log.warning("no credentials configured: serving without authentication, on loopback only")
    web.run_app(app, host=host, port=port, print=lambda msg: log.info(msg.strip()))
    return 0
