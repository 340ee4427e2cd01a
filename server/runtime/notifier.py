"""Job notifications (Watson dialect, PROTOCOLS.md §1.4): verifying a callback URL, registering it,
and sending a job's events to it (the routes are :mod:`server.http.watson.callbacks`).

Registering proves the URL answers: the server sends ``GET url?challenge_string=X``
(signed with ``X-Callback-Signature`` when a ``user_secret`` is given) and
expects ``X`` back as the body with status 200; redirects are never followed, and
every failure gets the same message (the reason is logged), so the endpoint does
not tell a closed port from an open one. A job created with that ``callback_url`` then
gets ``POST url`` with ``{"id", "event", "user_token"[, "results"]}`` for the
events it subscribed to, each signed as base64(HMAC-SHA256(user_secret, body)).
A failed delivery is logged, not retried: the job's status stays readable with
``GET /v1/recognitions/{id}``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import secrets

import aiohttp

from protocol.errors import InvalidParameter
from server.catalog import Catalog

log = logging.getLogger("voxgate.callbacks")

EVENTS = frozenset({"recognitions.started", "recognitions.completed", "recognitions.completed_with_results",
                    "recognitions.failed"})
DEFAULT_EVENTS = ("recognitions.started", "recognitions.completed", "recognitions.failed")
TIMEOUT = aiohttp.ClientTimeout(total=10)
#: The most of a challenge answer read: the challenge is 22 characters; a URL that sends more has failed anyway.
MAX_ANSWER_BYTES = 1024


def signature(secret: str, payload: bytes) -> str:
    """``X-Callback-Signature``: base64 of the HMAC-SHA256 of the payload with the user's secret."""
    return base64.b64encode(hmac.new(secret.encode(), payload, hashlib.sha256).digest()).decode()


def parse_events(value: str | None) -> tuple[str, ...]:
    """The events a job subscribes to (Watson's defaults when not given).

    Raises:
        InvalidParameter: an unknown event, or both completed events.
    """
    if not value:
        return DEFAULT_EVENTS
    events = tuple(e.strip() for e in value.split(",") if e.strip())
    unknown = sorted(set(events) - EVENTS)
    if unknown:
        raise InvalidParameter(f"unknown events {unknown}; known: {', '.join(sorted(EVENTS))}")
    if {"recognitions.completed", "recognitions.completed_with_results"} <= set(events):
        raise InvalidParameter("subscribe to recognitions.completed or recognitions.completed_with_results, not both")
    return events


async def _read_at_most(content: aiohttp.StreamReader, limit_bytes: int) -> bytes:
    """The body up to its end or ``limit_bytes``, whichever comes first (a longer one is cut, and fails)."""
    try:
        return await content.readexactly(limit_bytes)
    except asyncio.IncompleteReadError as short:
        return short.partial


async def verify(url: str, secret: str | None) -> None:
    """Send ``GET url?challenge_string=X`` (signed with ``secret``) and require ``X`` back with status 200.

    Every way of failing — refused, unreachable, timed out, a redirect (never followed: it could point
    anywhere, the server's own network included), another status, another body — gives the caller the
    same message, so that the endpoint cannot tell a closed port from an open one (issue 13: a port
    scanner). The reason goes to the server log at INFO.

    Raises:
        InvalidParameter: the URL did not answer the challenge.
    """
    challenge = secrets.token_urlsafe(16)
    headers = {"X-Callback-Signature": signature(secret, challenge.encode())} if secret else {}
    reason: str | None = None
    try:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as http, http.get(
                url, params={"challenge_string": challenge}, headers=headers, allow_redirects=False) as r:
            answer = (await _read_at_most(r.content, MAX_ANSWER_BYTES)).decode(errors="replace").strip()
            if 300 <= r.status < 400:
                reason = f"a redirect ({r.status} to {r.headers.get('Location')!r}), which is not followed"
            elif r.status != 200:
                reason = f"status {r.status}"
            elif answer != challenge:
                reason = f"a body that is not the challenge string ({answer[:80]!r})"
    except (aiohttp.ClientError, TimeoutError) as exc:
        reason = f"no answer ({type(exc).__name__}: {exc})"
    if reason is not None:
        log.info("callback_url %s failed verification: %s", url, reason)
        raise InvalidParameter(f"Verification of callback URL {url} failed: the server did not answer the challenge "
                               "with status 200 and the challenge string. Make the URL answer a GET with its "
                               "challenge_string query parameter as the body, status 200 and no redirect.")


class Notifier:
    """Registers callback URLs and sends job events to them.

    Args:
        catalog: where the registered URLs are stored.
    """

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._http: aiohttp.ClientSession | None = None

    async def register(self, owner: str, url: str, secret: str | None) -> bool:
        """Verify ``url`` (:func:`verify`) and register it for ``owner``; False if it already was.

        Raises:
            InvalidParameter: the URL did not answer the challenge.
        """
        await verify(url, secret)
        return await self.catalog.register_callback(owner, url, secret)

    async def unregister(self, owner: str, url: str) -> None:
        """Unregister ``url``.

        Raises:
            NotFoundError: it is not registered for ``owner``.
        """
        await self.catalog.unregister_callback(owner, url)

    async def notify(self, job, event: str) -> None:
        """Send ``event`` of ``job`` if it subscribed (``completed`` also as ``completed_with_results``)."""
        url = job.params.get("callback_url")
        if not url:
            return
        events = parse_events(job.params.get("events"))
        if event == "recognitions.completed" and "recognitions.completed_with_results" in events:
            event = "recognitions.completed_with_results"
        if event not in events:
            return
        registered = await self.catalog.callback(job.owner, url)
        if registered is None:
            log.warning("job %s: callback_url %s is no longer registered; %s not sent", job.id, url, event)
            return
        body: dict = {"id": job.id, "event": event, "user_token": job.user_token or ""}
        if event == "recognitions.completed_with_results":
            body["results"] = [job.results]
        payload = json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if registered.secret:
            headers["X-Callback-Signature"] = signature(registered.secret, payload)
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=TIMEOUT)
        try:
            # Not redirected: the verified URL is the only one that may receive a job's events and results.
            async with self._http.post(url, data=payload, headers=headers, allow_redirects=False) as r:
                if r.status >= 300:
                    log.warning("job %s: callback %s answered %d to %s", job.id, url, r.status, event)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("job %s: callback %s failed for %s: %s", job.id, url, event, exc)

    async def close(self) -> None:
        """Close the HTTP client."""
        if self._http is not None:
            await self._http.close()
