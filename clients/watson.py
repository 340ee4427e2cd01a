"""The Watson Speech to Text WebSocket dialect, client side (PROTOCOLS.md §1.2).

``GET /v1/recognize?model=...`` upgrades to a WebSocket; a request is
``{"action": "start", ...}`` → ``{"state": "listening"}`` → binary audio →
``{"action": "stop"}`` → results → ``{"state": "listening"}`` again, after
which the connection can carry the next request. ``{"error": "..."}`` is
followed by a close; it becomes :class:`clients.errors.ServerError`.

The messages themselves are :mod:`protocol.watson`'s, the server's own; :func:`parse_message`
turns them into the client's hypotheses and errors, and :class:`WatsonConnection` pumps it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

import aiohttp
from yarl import URL

from clients import transport
from clients.errors import BadServerMessage, ResponseTimeout, ServerError
from clients.recognition import Hypothesis
from protocol import watson
from protocol.errors import MalformedMessage

@dataclass(frozen=True)
class ServerMessage:
    """One parsed text frame from the server.

    Attributes:
        listening: it was ``{"state": "listening"}``.
        hypotheses: the results it carried, in order.
        warnings: its ``warnings`` strings.
    """

    listening: bool = False
    hypotheses: tuple[Hypothesis, ...] = ()
    warnings: tuple[str, ...] = ()


def parse_message(text: str, received_at: float) -> ServerMessage:
    """Parse a server text frame (with :func:`protocol.watson.parse_server_message`).

    Args:
        text: the frame.
        received_at: the monotonic time it arrived (stamped on each hypothesis).

    Raises:
        ServerError: an ``{"error": ...}`` message.
        BadServerMessage: not JSON, or neither a state, results, warnings nor an error.
    """
    try:
        message = watson.parse_server_message(text)
    except MalformedMessage as exc:
        raise BadServerMessage(exc.message) from exc
    if isinstance(message, watson.ErrorReply):
        raise ServerError(message.error)
    if isinstance(message, watson.Listening):
        return ServerMessage(listening=True, warnings=message.warnings)
    if isinstance(message, watson.Warnings):
        return ServerMessage(warnings=message.warnings)
    # result_index numbers the first result of this message among the request's results.
    hypotheses = tuple(Hypothesis(str(message.result_index + offset), result.transcript.strip(), result.final,
                                  received_at) for offset, result in enumerate(message.results))
    return ServerMessage(hypotheses=hypotheses, warnings=message.warnings)


class Phase(Enum):
    """Where a Watson connection stands."""

    IDLE = "idle"            # connected; no request open (before the first start, after a request's results)
    LISTENING = "listening"  # the server accepted the start; audio may flow
    ENDING = "ending"        # stop sent; the remaining results are on their way
    CLOSED = "closed"


class WatsonConnection:
    """A Watson recognition WebSocket; one request at a time, several in sequence.

    Use :meth:`open`, then per request :meth:`start`, :meth:`send_audio`,
    :meth:`end_audio` and :meth:`results` (read while sending, for interim
    results), and finally :meth:`close` (or ``async with``).

    Attributes:
        warnings: every ``warnings`` string the server sent.
    """

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._ws = ws
        self._clock = clock
        self.phase = Phase.IDLE
        self.warnings: list[str] = []

    @classmethod
    async def open(cls, session: aiohttp.ClientSession, url: URL, *, model: str | None = None,
                   api_key: str | None = None, access_token: str | None = None, timeout_s: float = 30.0,
                   clock: Callable[[], float] = time.monotonic) -> WatsonConnection:
        """Connect to ``/v1/recognize``.

        Args:
            url: the WebSocket URL (see :func:`clients.endpoint.websocket_url`).
            model: the ``model`` query parameter (the server's default when None).
            api_key: sent as ``Authorization: Bearer KEY`` on the upgrade request.
            access_token: sent as the ``access_token`` query parameter.
            timeout_s: limit for the handshake.

        Raises:
            ConnectFailed, HandshakeRejected, BadInput: see :func:`clients.transport.connect`.
        """
        query = {k: v for k, v in (("model", model), ("access_token", access_token)) if v}
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        ws = await transport.connect(session, url.update_query(query) if query else url, headers=headers,
                                     timeout_s=timeout_s)
        return cls(ws, clock=clock)

    def _expect(self, *phases: Phase) -> None:
        if self.phase not in phases:
            allowed = " or ".join(p.value for p in phases)
            raise RuntimeError(f"the Watson connection is {self.phase.value}; this call needs it {allowed}")

    async def start(self, *, content_type: str | None, interim_results: bool = False,
                    options: Mapping[str, Any] | None = None, timeout_s: float = 30.0) -> None:
        """Send the start action and wait for ``{"state": "listening"}``.

        Raises:
            ServerError: the server rejected the start (bad option, unknown model, ...).
            UnexpectedClose, BadServerMessage: the server broke the protocol.
            ResponseTimeout: no answer within `timeout_s`.
        """
        self._expect(Phase.IDLE)
        await transport.send(self._ws, watson.start_message(content_type=content_type,
                                                            interim_results=interim_results, options=options))
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    message = self._parse(await transport.receive(self._ws))
                    if message.listening:
                        break
                    if message.hypotheses:
                        raise BadServerMessage("the server sent results before accepting the start")
        except TimeoutError:
            raise ResponseTimeout(f"no {{\"state\": \"listening\"}} within {timeout_s:g} s of the start") from None
        self.phase = Phase.LISTENING

    async def send_audio(self, chunk: bytes) -> None:
        """Send one binary audio frame."""
        self._expect(Phase.LISTENING)
        await transport.send(self._ws, chunk)

    async def end_audio(self) -> None:
        """Send ``{"action": "stop"}``."""
        self._expect(Phase.LISTENING)
        self.phase = Phase.ENDING
        await transport.send(self._ws, watson.STOP_MESSAGE)

    async def results(self) -> AsyncIterator[Hypothesis]:
        """The request's results until the closing ``{"state": "listening"}``, which returns the connection to idle.

        Raises:
            ServerError: an ``{"error": ...}`` message.
            UnexpectedClose: the socket closed first.
            BadServerMessage: a binary frame or an unknown message.
        """
        self._expect(Phase.LISTENING, Phase.ENDING)
        while True:
            message = self._parse(await transport.receive(self._ws))
            for hypothesis in message.hypotheses:
                yield hypothesis
            if message.listening:
                self.phase = Phase.IDLE
                return

    def _parse(self, msg: aiohttp.WSMessage) -> ServerMessage:
        if msg.type != aiohttp.WSMsgType.TEXT:
            raise BadServerMessage("the server sent a binary frame; Watson servers send JSON text only")
        message = parse_message(msg.data, self._clock())
        self.warnings.extend(message.warnings)
        return message

    async def close(self) -> None:
        """Close the socket with 1000 (normal)."""
        self.phase = Phase.CLOSED
        await transport.close(self._ws)

    async def __aenter__(self) -> WatsonConnection:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
