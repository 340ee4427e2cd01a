"""Routes of no dialect: health and metrics."""

from __future__ import annotations

from aiohttp import web

from server.http.keys import METRICS, MODELS, SESSIONS
from server.runtime.metrics import CONTENT_TYPE


async def healthz(request: web.Request) -> web.Response:
    """``GET /healthz``: 200 with the installed model versions and those loaded so far."""
    models = request.app[MODELS]
    return web.json_response({"status": "ok", "models": sorted(models.versions),
                              "loaded": sorted(v for v, m in models.versions.items() if m.loaded),
                              "sessions": len(request.app[SESSIONS])})


async def metrics(request: web.Request) -> web.Response:
    """``GET /metrics``: Prometheus text format."""
    return web.Response(body=request.app[METRICS].render(), headers={"Content-Type": CONTENT_TYPE})


def routes() -> list[web.RouteDef]:
    """``/healthz`` and ``/metrics``."""
    return [web.get("/healthz", healthz), web.get("/metrics", metrics)]
