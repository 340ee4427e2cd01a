"""``POST /v1/register_callback`` and ``POST /v1/unregister_callback`` (Watson dialect, PROTOCOLS.md §1.4);
the verification and the notifications are :mod:`server.runtime.notifier`'s."""

from __future__ import annotations

from urllib.parse import urlparse

from aiohttp import web

from protocol.errors import InvalidParameter
from server.http.keys import NOTIFIER
from server.http.watson.errors import instance, watson


def _url(request: web.Request) -> str:
    url = request.query.get("callback_url", "")
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise InvalidParameter("callback_url must be an http:// or https:// URL")
    return url


@watson("watson-callbacks")
async def register(request: web.Request) -> web.Response:
    """``POST /v1/register_callback?callback_url=&user_secret=``: 201 created, 200 if already registered."""
    owner = instance(request)
    url = _url(request)
    created = await request.app[NOTIFIER].register(owner, url, request.query.get("user_secret") or None)
    return web.json_response({"status": "created" if created else "already created", "url": url},
                             status=201 if created else 200)


@watson("watson-callbacks")
async def unregister(request: web.Request) -> web.Response:
    """``POST /v1/unregister_callback?callback_url=``: 200."""
    await request.app[NOTIFIER].unregister(instance(request), _url(request))
    return web.json_response({})


def routes() -> list[web.RouteDef]:
    """The callback registration routes."""
    return [web.post("/v1/register_callback", register), web.post("/v1/unregister_callback", unregister)]
