"""The HTTP server: routes, startup (load every model version), graceful shutdown.

Routes:
    GET  /healthz                          loaded model versions
    GET  /metrics                          Prometheus metrics
    GET  /v1/models, /v1/models/{id}       Watson SpeechModels
    GET  /v1/recognize                     Watson WebSocket
    POST /v1/recognize                     Watson sessionless (whole or chunked body)
    GET  /stream-transcription-websocket   Transcribe, presigned URL, event stream
    POST /stream-transcription             Transcribe, event stream over chunked HTTP/1.1
    /v1/customizations[/...]               Watson custom language models (server.customization_routes)
    /v1/acoustic_customizations[/...]      Watson custom acoustic models (server.acoustic_routes)
    /v1/recognitions[/{id}]                Watson asynchronous jobs (server.jobs)
    POST /v1/(un)register_callback         job notifications (server.callbacks)

The catalog (base versions, custom models) lives in a database, a SQLite file
in the data directory unless a ``database_url`` names another; it is
migrated to the newest schema at start, and interrupted jobs resume.

Shutdown (SIGINT/SIGTERM): new sessions are refused, every open session
flushes its finals and closes (WebSocket close 1012), then the schedulers stop.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import logging
import os
import signal
from pathlib import Path

import torch
import uvloop
from aiohttp import web

from engine.bundle import ModelBundle
from engine.catalog import default_models_dir
from protocol.errors import NotFoundError
from server import acoustic_routes, callbacks, customization_routes, jobs
from server.jobs import JobRunner
from server.bodies import client_disconnects
from server.catalog.artifacts import DataDir, default_data_dir
from server.catalog.db import Database, sqlite_url
from server.catalog.lifecycle import Entry, Kind
from server.catalog.store import Catalog, Clock, InstalledBase, utcnow
from server.config import Config, ConfigError, load_config
from server.customization import Customizations
from server.http import ui
from server.metrics import CONTENT_TYPE, Metrics
from server.recognition import LoadedModels
from server.state import STATE, ServerState
from server.transcribe_routes import transcribe_http, transcribe_websocket
from server.watson_routes import recognize_http, recognize_websocket, watson_error

log = logging.getLogger("voxgate.server")
RELEASE_WATCH = web.AppKey("release_watch", asyncio.Task)


async def healthz(request: web.Request) -> web.Response:
    """``GET /healthz``: 200 with the installed model versions and those loaded so far."""
    state = request.app[STATE]
    return web.json_response({"status": "ok", "models": sorted(state.models.versions),
                              "loaded": sorted(v for v, m in state.models.versions.items() if m.loaded),
                              "sessions": len(state.sessions)})


async def metrics(request: web.Request) -> web.Response:
    """``GET /metrics``: Prometheus text format."""
    body = request.app[STATE].metrics.render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


def _speech_model(bundle: ModelBundle, base_url: str, versions: list, today: dt.date) -> dict:
    newest = versions[-1].version if versions else None
    return {"name": bundle.name, "language": bundle.manifest["locale"], "rate": bundle.sample_rate_hz,
            "url": f"{base_url}/v1/models/{bundle.name}", "description": bundle.manifest.get("description", ""),
            "supported_features": {"custom_language_model": bundle.beam is not None, "custom_acoustic_model": True,
                                   "speaker_labels": False, "low_latency": True},
            # voxgate extension: every version with its stored deadlines and its state today
            "versions": [Entry(v.model, v.version, Kind.BASE, v.created, newest_base=v.version == newest).to_json(today)
                         for v in versions]}


async def _models_json(request: web.Request) -> dict[str, dict]:
    state = request.app[STATE]
    base = f"{request.scheme}://{request.host}"
    rows = [r for r in await state.catalog.base_versions() if r.version in state.models.versions]
    today = state.catalog.today()
    return {name: _speech_model(bundle, base, [r for r in rows if r.model == name], today)
            for name, loaded in state.models.newest().items() for bundle in (loaded.bundle,)}


async def list_models(request: web.Request) -> web.Response:
    """``GET /v1/models``: the Watson SpeechModels list, each with its versions and their deadlines."""
    return web.json_response({"models": list((await _models_json(request)).values())})


async def get_model(request: web.Request) -> web.Response:
    """``GET /v1/models/{model_id}``: one SpeechModel, or 404 in the Watson error shape."""
    model_id = request.match_info["model_id"]
    model = (await _models_json(request)).get(model_id)
    if model is None:
        return watson_error(NotFoundError(f"Model {model_id} not found"))
    return web.json_response(model)


async def _on_shutdown(app: web.Application) -> None:
    await app[STATE].shutdown()


async def _on_cleanup(app: web.Application) -> None:
    state = app[STATE]
    watch = app.get(RELEASE_WATCH)
    if watch is not None:
        watch.cancel()
        await asyncio.gather(watch, return_exceptions=True)
    if state.jobs is not None:
        await state.jobs.close()
    if state.customizations is not None:
        await state.customizations.close()
    if state.catalog is not None:
        await state.catalog.db.close()
    await state.models.close()


def _catalog_starter(data: DataDir, database_url: str | None, clock: Clock):
    async def start(app: web.Application) -> None:
        state = app[STATE]
        db = Database(database_url or sqlite_url(data.database))
        await db.migrate()
        catalog = Catalog(db, data, clock=clock)
        await catalog.sync_base_versions(
            InstalledBase(b.name, b.version, b.manifest["locale"], b.sample_rate_hz, b.created, str(b.path))
            for b in (m.installed for m in state.models.versions.values()))
        state.catalog = catalog
        state.customizations = Customizations(catalog, state.models, scheduler=state.config.scheduler,
                                              metrics=state.metrics)
        await state.customizations.start()
        state.jobs = JobRunner(state)
        await state.jobs.start()
        await state.refresh_models()  # versions another replica registered while this one was down
        app[RELEASE_WATCH] = asyncio.get_running_loop().create_task(state.watch_releases(), name="release watch")
    return start


def make_app(models_dir: Path | None = None, config: Config | None = None, *, data_dir: Path | None = None,
             database_url: str | None = None, clock: Clock = utcnow) -> web.Application:
    """Build the application, loading every installed model version now (the catalog opens at startup).

    Args:
        models_dir: the shipped base models (default: ``models/`` of the checkout).
        config: limits, batching, credentials.
        data_dir: catalog database, custom models, registered base versions (default: :func:`default_data_dir`).
        database_url: an async SQLAlchemy URL instead of the SQLite file in ``data_dir``.
        clock: naive UTC now (injected for lifecycle tests).

    Raises:
        RuntimeError: no model installed.
    """
    config = config or Config()
    metrics_ = Metrics()
    data = DataDir(data_dir or default_data_dir())
    models = LoadedModels(models_dir or default_models_dir(), config.scheduler, metrics_, extra_dirs=(data.models,))
    # Request bodies are streamed by the routes (which enforce max_request_bytes); this bounds only
    # the bodies aiohttp would buffer whole.
    app = web.Application(client_max_size=config.limits.max_request_bytes, middlewares=[client_disconnects])
    app[STATE] = ServerState(config, models, metrics_)
    app.on_startup.append(_catalog_starter(data, database_url, clock))
    app.on_shutdown.append(_on_shutdown)
    app.on_cleanup.append(_on_cleanup)
    app.add_routes([
        web.get("/healthz", healthz), web.get("/metrics", metrics),
        web.get("/v1/models", list_models), web.get("/v1/models/{model_id}", get_model),
        web.get("/v1/recognize", recognize_websocket), web.post("/v1/recognize", recognize_http),
        web.get("/stream-transcription-websocket", transcribe_websocket),
        web.post("/stream-transcription", transcribe_http),
        *customization_routes.routes(), *acoustic_routes.routes(), *jobs.routes(),
        *callbacks.routes(),
        *ui.routes(),
    ])
    return app


async def _run(app: web.Application, host: str, port: int) -> None:
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    log.info("serving on http://%s:%d (WebSocket: ws://%s:%d/v1/recognize)", host, port, host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("stopping: flushing open sessions")
    await runner.cleanup()


def serve(*, host: str, port: int, models_dir: str | None, config_path: str | None = None,
          data_dir: str | None = None, database_url: str | None = None) -> int:
    """Run the server until SIGINT/SIGTERM; return the exit status."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(Path(config_path) if config_path else None)
    except ConfigError as exc:
        log.error("%s", exc)
        return 2
    loopback = host == "localhost" or _is_loopback(host)
    if not config.credentials and not loopback:
        log.error("no credentials are configured, so voxgate serves only on loopback; refusing %s "
                  "(add [[credentials]] to the --config file)", host)
        return 2
    workers = config.scheduler.workers
    if workers > 1 and not torch.cuda.is_available():
        # Each concurrent step gets its share of the cores; more torch threads would only fight.
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))
    app = make_app(Path(models_dir) if models_dir else None, config,
                   data_dir=Path(data_dir) if data_dir else None, database_url=database_url)
    log.info("loaded %s; %d concurrent model step(s) of up to %d streams, %d torch thread(s) each",
             ", ".join(sorted(app[STATE].models.versions)), workers, config.scheduler.max_batch,
             torch.get_num_threads())
    if not config.credentials:
        log.warning("no credentials configured: serving WITHOUT authentication, on loopback only")
    else:
        log.info("%d credential(s) configured; every request must authenticate", len(config.credentials))
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(_run(app, host, port))
    return 0


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
