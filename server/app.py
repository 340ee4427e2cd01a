"""The composition root: builds every service once, in order, and the application that serves them.

Routes (handlers in :mod:`server.http`, one package per dialect):
    GET  /, /ui/{file}                     the web page (server.http.ui)
    GET  /healthz                          loaded model versions (server.http.common)
    GET  /metrics                          Prometheus metrics
    GET  /v1/models, /v1/models/{id}       Watson SpeechModels (server.http.watson.models)
    GET  /v1/recognize                     Watson WebSocket (server.http.watson.recognize)
    POST /v1/recognize                     Watson sessionless (whole or chunked body)
    GET  /stream-transcription-websocket   Transcribe, presigned URL, event stream (server.http.transcribe)
    POST /stream-transcription             Transcribe, event stream over chunked HTTP/1.1
    /v1/customizations[/...]               Watson custom language models (server.http.watson.customizations)
    /v1/acoustic_customizations[/...]      Watson custom acoustic models (server.http.watson.acoustic)
    /v1/recognitions[/{id}]                Watson asynchronous jobs (server.http.watson.jobs)
    POST /v1/(un)register_callback         job notifications (server.http.watson.callbacks)
    POST /                                 Transcribe JSON 1.1: X-Amz-Target Transcribe.<Op> (server.http.transcribe.control)

Services (:mod:`server.runtime`) are put on the application under the typed keys of
:mod:`server.http.keys`. Those that need the event loop start in one ``cleanup_ctx`` each, in
order — catalog (the database, migrated to the newest schema; a SQLite file in the data directory
unless a ``database_url`` names another), custom models, training (interrupted jobs resume),
recognition jobs with their notifier, Transcribe's custom language models and jobs, the release watch — and stop in the reverse order, after
the base models' schedulers were the last to stop.

Shutdown (SIGINT/SIGTERM): new sessions are refused, every open session
flushes its finals and closes (WebSocket close 1012), then the services stop.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import torch
import uvloop
from aiohttp import web

from engine.catalog import default_models_dir
from server.catalog import Catalog, Clock, DataDir, Database, default_data_dir, sqlite_url, utcnow
from server.config import Config, ConfigError, load_config
from server.http import common, transcribe, ui, watson
from server.http.bodies import client_disconnects
from server.http.errors import errors
from server.http.keys import (AUTH, CATALOG, CONFIG, CUSTOM_MODELS, JOBS, METRICS, MODELS, NOTIFIER, RECOGNITIONS,
                              RELEASES, RESOLVER, SESSIONS, TRAINING, TRANSCRIBE_JOBS, TRANSCRIBE_MODELS)
from server.runtime.auth import Authenticator
from server.runtime.jobs import JobRunner
from server.runtime.metrics import Metrics
from server.runtime.models import CustomModels, LoadedModels
from server.runtime.notifier import Notifier
from server.runtime.recognition import Recognitions
from server.runtime.releases import Releases, installed_bases
from server.runtime.resolution import Resolver
from server.runtime.sessions import Sessions
from server.runtime.s3text import s3_client
from server.runtime.training import Training
from server.runtime.transcribe_jobs import TranscribeJobs
from server.runtime.transcribe_models import TranscribeModels

log = logging.getLogger("voxgate.server")

Context = Callable[[web.Application], AsyncIterator[None]]


async def _models(app: web.Application) -> AsyncIterator[None]:
    """The base versions were loaded by :func:`make_app`; their schedulers and workers stop last."""
    yield
    await app[MODELS].close()


def _catalog(data: DataDir, database_url: str | None, clock: Clock) -> Context:
    async def context(app: web.Application) -> AsyncIterator[None]:
        db = Database(database_url or sqlite_url(data.database))
        await db.migrate()
        catalog = Catalog(db, data, clock=clock)
        await catalog.sync_base_versions(installed_bases(app[MODELS].versions.values()))
        app[CATALOG] = catalog
        try:
            yield
        finally:
            await db.close()
    return context


async def _custom_models(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    custom = app[CUSTOM_MODELS] = CustomModels(app[CATALOG].data, scheduler=config.scheduler, metrics=app[METRICS])
    app[RESOLVER] = Resolver(app[CATALOG], app[MODELS], custom)
    yield
    await custom.close()


async def _training(app: web.Application) -> AsyncIterator[None]:
    training = app[TRAINING] = Training(app[CATALOG], app[MODELS])
    await training.start()
    yield
    await training.close()


async def _jobs(app: web.Application) -> AsyncIterator[None]:
    notifier = app[NOTIFIER] = Notifier(app[CATALOG])
    jobs = app[JOBS] = JobRunner(app[CATALOG], app[RESOLVER], app[RECOGNITIONS], app[CUSTOM_MODELS], notifier)
    await jobs.start()
    yield
    await jobs.close()


async def _transcribe(app: web.Application) -> AsyncIterator[None]:
    s3 = s3_client(app[CONFIG].s3)
    clms = app[TRANSCRIBE_MODELS] = TranscribeModels(app[CATALOG], app[TRAINING], app[MODELS], app[CUSTOM_MODELS], s3)
    jobs = app[TRANSCRIBE_JOBS] = TranscribeJobs(app[CATALOG], clms, app[RESOLVER], app[RECOGNITIONS],
                                                 app[CUSTOM_MODELS], s3)
    await clms.start()
    yield
    await jobs.close()
    await clms.close()
    s3.close()


async def _releases(app: web.Application) -> AsyncIterator[None]:
    releases = app[RELEASES] = Releases(app[MODELS], app[CATALOG], app[CONFIG].limits.release_check_s)
    await releases.refresh()  # versions another replica registered while this one was down
    watch = asyncio.get_running_loop().create_task(releases.watch(), name="release watch")
    yield
    watch.cancel()
    await asyncio.gather(watch, return_exceptions=True)


async def _on_shutdown(app: web.Application) -> None:
    await app[SESSIONS].shutdown()


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
    metrics = Metrics()
    data = DataDir(data_dir or default_data_dir())
    models = LoadedModels(models_dir or default_models_dir(), config.scheduler, metrics, extra_dirs=(data.models,))
    # Request bodies are streamed by the routes (which enforce max_request_bytes); this bounds only
    # the bodies aiohttp would buffer whole.
    app = web.Application(client_max_size=config.limits.max_request_bytes, middlewares=[client_disconnects, errors])
    app[CONFIG], app[METRICS], app[MODELS] = config, metrics, models
    app[AUTH] = Authenticator(config.credentials)
    app[SESSIONS] = Sessions(config.limits.max_sessions, metrics)
    app[RECOGNITIONS] = Recognitions(config.recognition, metrics)
    app.cleanup_ctx.extend([_models, _catalog(data, database_url, clock), _custom_models, _training, _jobs,
                            _transcribe, _releases])
    app.on_shutdown.append(_on_shutdown)
    app.add_routes([*common.routes(), *watson.routes(), *transcribe.routes(), *ui.routes()])
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
             ", ".join(sorted(app[MODELS].versions)), workers, config.scheduler.max_batch,
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
