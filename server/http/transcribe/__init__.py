"""The Amazon Transcribe dialect (PROTOCOLS.md §2): streaming over a presigned WebSocket and over chunked HTTP/1.1,
and the JSON 1.1 control plane at ``POST /`` (custom language models, batch jobs)."""

from __future__ import annotations

from aiohttp import web

from server.http.transcribe import control, streaming


def routes() -> list[web.RouteDef]:
    """Every Transcribe route."""
    return [*streaming.routes(), *control.routes()]
