"""The IBM Watson Speech to Text dialect (PROTOCOLS.md §1): recognition, models, custom models, jobs."""

from __future__ import annotations

from aiohttp import web

from server.http.watson import acoustic, callbacks, customizations, jobs, models, recognize


def routes() -> list[web.RouteDef]:
    """Every Watson route."""
    return [*models.routes(), *recognize.routes(), *customizations.routes(), *acoustic.routes(), *jobs.routes(),
            *callbacks.routes()]
