"""The Watson dialect: ``GET /v1/recognize`` (WebSocket) and sessionless ``POST /v1/recognize``.

The WebSocket handler is a short pump around :class:`protocol.session.RecognizeSession`:
text and binary frames go in, events come out, and each event drives the
request's :class:`~server.runtime.recognition.Recognition`. Errors before the
upgrade are HTTP errors (the error middleware); after it, they are sent as
``{"error": ...}`` and close the connection with the error's close code;
unexpected ones are logged and close with 1011 without internals.
"""

from __future__ import annotations

import logging

from aiohttp import WSCloseCode, WSMsgType, web

from engine.recognizer import Result
from protocol.errors import (CloseCode, InvalidParameter, Timeout, TooLarge, VoxgateError, close_code_for,
                             public_message)
from protocol.session import MIN_REQUEST_BYTES, AudioEnded, AudioReceived, RecognizeSession, RequestStarted
from protocol.watson import Options, error_message, listening_message, parse_query_options, results_message
from server.config import Limits
from server.http.bodies import body_chunks, refuse_multipart
from server.http.keys import CONFIG, CUSTOM_MODELS, METRICS, RECOGNITIONS, RESOLVER, SESSIONS
from server.http.watson.errors import instance, watson
from server.http.websocket import receive
from server.runtime.metrics import Metrics
from server.runtime.recognition import Recognition, Recognitions, hypothesis
from server.runtime.resolution import Resolved
from server.runtime.sessions import Admission

log = logging.getLogger("voxgate.watson")


class _Request:
    """Results bookkeeping of one request: result indexes, and finals held back without interim results."""

    def __init__(self, options: Options, resolved: Resolved, recognition_warnings: tuple[str, ...] = ()) -> None:
        self.options = options
        self.result_index = 0
        self.held: list[Result] = []
        self.warnings = options.warnings + resolved.warnings + recognition_warnings
        self.recognized_with = resolved.recognized_with()

    def messages(self, results: list[Result]) -> list[str]:
        """Messages to send now for these results."""
        out = []
        for r in results:
            if not r.words and not (r.final and self.options.interim_results):
                continue  # an empty final after interims still closes the utterance on the client side
            if not self.options.interim_results:
                if r.final:
                    self.held.append(r)
                continue
            out.append(results_message(self.result_index, [hypothesis(r)], self.options, self._take_warnings(),
                                       self.recognized_with))
            if r.final:
                self.result_index += 1
        return out

    def closing_messages(self) -> list[str]:
        """Messages at the end of the request: held finals (or pending warnings)."""
        if self.held or self.warnings:
            message = results_message(0, [hypothesis(r) for r in self.held], self.options, self._take_warnings(),
                                      self.recognized_with)
            self.held = []
            return [message]
        return []

    def _take_warnings(self) -> tuple[str, ...]:
        warnings, self.warnings = self.warnings, ()
        return warnings


@watson("watson-ws")
async def recognize_websocket(request: web.Request) -> web.StreamResponse:
    """``GET /v1/recognize``: the Watson WebSocket. Errors before the upgrade are HTTP errors."""
    app = request.app
    owner = instance(request)
    resolved = await app[RESOLVER](owner, request.query)
    admission = app[SESSIONS].admit("watson-ws")
    with admission, app[CUSTOM_MODELS].using(resolved.language_id, resolved.acoustic_id):
        limits = app[CONFIG].limits
        ws = WatsonWebSocketResponse(max_msg_size=limits.max_frame_bytes + 1, autoping=True)
        await ws.prepare(request)
        log.info("session for %s on %s%s", owner, resolved.model.bundle.version,
                 f" with custom model {resolved.language_id}" if resolved.language_id else "")
        await WatsonSocket(ws, resolved, admission, limits=limits, recognitions=app[RECOGNITIONS],
                           metrics=app[METRICS]).run()
    return ws


class WatsonWebSocketResponse(web.WebSocketResponse):
    """aiohttp's WebSocket, which sends Watson's ``{"error"}`` before it closes a connection whose frame
    (text or binary) is over ``max_msg_size``: aiohttp refuses such a frame by closing with 1009 inside
    ``receive()``, before the handler sees it, so the client got a bare 1009 (issue 13)."""

    error_sent = False

    async def send_error(self, text: str) -> None:
        """Send Watson's ``{"error": text}`` (once; the connection closes after it)."""
        self.error_sent = True
        await self.send_str(error_message(text))

    async def close(self, *, code: int = WSCloseCode.OK, message: bytes = b"", drain: bool = True) -> bool:
        if code == WSCloseCode.MESSAGE_TOO_BIG and not self.closed and not self.error_sent:
            try:
                await self.send_error(f"frame exceeds the limit of {self._max_msg_size - 1} bytes (text and "
                                      "binary frames alike)")
            except (ConnectionError, RuntimeError):  # the peer is gone: close as aiohttp would
                pass
        return await super().close(code=code, message=message, drain=drain)


class WatsonSocket:
    """One Watson WebSocket connection."""

    def __init__(self, ws: WatsonWebSocketResponse, resolved: Resolved, admission: Admission, *, limits: Limits,
                 recognitions: Recognitions, metrics: Metrics) -> None:
        self.ws = ws
        self.resolved = resolved
        self.limits = limits
        self.recognitions = recognitions
        self.metrics = metrics
        self.session = RecognizeSession(max_frame_bytes=limits.max_frame_bytes,
                                        max_request_bytes=limits.max_request_bytes)
        self.admission = admission
        self.recognition: Recognition | None = None
        self.request: _Request | None = None

    async def run(self) -> None:
        """Pump frames until the client closes or an error ends the connection."""
        timeout_s = self.limits.session_timeout_s
        try:
            while not self.ws.closed:
                failed = self.recognition.failed if self.recognition is not None else None
                try:
                    msg = await receive(self.admission, self.ws, timeout_s, failed)
                except TimeoutError:
                    raise Timeout(f"Session timed out: no message for {timeout_s:g} seconds.") from None
                if msg is None:
                    if self.recognition is not None and self.recognition.error is not None:
                        raise self.recognition.error
                    await self._shutdown()
                    return
                if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                    return
                if msg.type is WSMsgType.ERROR:
                    # aiohttp refuses a frame over max_msg_size with a WebSocketError carrying 1009.
                    if getattr(msg.data, "code", None) == CloseCode.MESSAGE_TOO_BIG:
                        raise TooLarge(f"frame exceeds the limit of {self.limits.max_frame_bytes} bytes")
                    raise InvalidParameter(f"bad WebSocket frame: {msg.data}")
                if msg.type is WSMsgType.TEXT:
                    events = self.session.receive_text(msg.data)
                else:
                    events = self.session.receive_audio(msg.data)
                for event in events:
                    await self._handle(event)
        except VoxgateError as exc:
            await self._fail(exc)
        except Exception as exc:  # noqa: BLE001 - the peer gets 1011 and no internals; the log gets the detail
            log.exception("unexpected error in a recognize session")
            await self._fail(exc)
        finally:
            self.session.close()
            if self.recognition is not None:
                self.recognition.close()

    async def _handle(self, event) -> None:
        if isinstance(event, RequestStarted):
            self.recognition = self.recognitions.for_watson(self.resolved, event.options, self._on_results,
                                                            route="live")
            self.request = _Request(event.options, self.resolved, self.recognition.warnings)
            await self.ws.send_str(listening_message())
            return
        assert self.recognition is not None and self.request is not None
        if isinstance(event, AudioReceived):
            self.recognition.feed(event.data)
            limit = self.request.options.inactivity_timeout_s
            if limit >= 0 and self.recognition.seconds_without_speech >= limit:
                raise Timeout(f"No speech detected for {limit}s.")
        elif isinstance(event, AudioEnded):
            await self._finish_request()

    async def _on_results(self, results: list[Result]) -> None:
        assert self.request is not None
        await self._send(self.request.messages(results))

    async def _finish_request(self) -> None:
        assert self.recognition is not None and self.request is not None
        try:
            await self.recognition.finish()
        finally:
            self.recognition.close()
        self.recognition = None
        await self._send(self.request.closing_messages())
        await self.ws.send_str(self.session.request_done())

    async def _send(self, messages: list[str]) -> None:
        for m in messages:
            await self.ws.send_str(m)

    async def _fail(self, exc: BaseException) -> None:
        self.metrics.errors.labels("watson-ws", type(exc).__name__).inc()
        if self.ws.closed:
            return
        if self.request is not None and self.request.held:
            # Finals already decided are not lost: send what is held before the error.
            await self._send(self.request.closing_messages())
        await self.ws.send_error(public_message(exc))
        await self.ws.close(code=close_code_for(exc))

    async def _shutdown(self) -> None:
        """Server shutdown: flush the open request's finals, then close with 1012."""
        if self.recognition is not None and self.request is not None:
            recognition, self.recognition = self.recognition, None
            try:
                await recognition.finish()
                await self._send(self.request.closing_messages())
            except VoxgateError:
                pass  # nothing decodable was left; the close below still tells the client why
            finally:
                recognition.close()
        await self.ws.close(code=CloseCode.SERVICE_RESTART, message=b"server restarting")


@watson("watson-http")
async def recognize_http(request: web.Request) -> web.Response:
    """``POST /v1/recognize``: sessionless recognition of a whole or chunked body."""
    app = request.app
    limits = app[CONFIG].limits
    resolved = await app[RESOLVER](instance(request), request.query)
    content_type = request.headers.get("Content-Type")
    refuse_multipart(content_type)
    options = parse_query_options(request.query, content_type)
    with app[SESSIONS].admit("watson-http"), app[CUSTOM_MODELS].using(resolved.language_id, resolved.acoustic_id):
        finals: list[Result] = []

        async def keep_finals(results: list[Result]) -> None:
            finals.extend(r for r in results if r.final)

        recognition = app[RECOGNITIONS].for_watson(resolved, options, keep_finals, route="request")
        try:
            # At least the WebSocket's minimum (issue 13: 50 bytes got a 200).
            async for chunk in body_chunks(request, limit_bytes=limits.max_request_bytes,
                                           idle_timeout_s=limits.session_timeout_s, minimum=MIN_REQUEST_BYTES):
                if recognition.failed.is_set():
                    break
                recognition.feed(chunk)
            await recognition.finish()
        finally:
            recognition.close()
    body = results_message(0, [hypothesis(r) for r in finals if r.words], options,
                           options.warnings + resolved.warnings + recognition.warnings, resolved.recognized_with())
    return web.Response(text=body, content_type="application/json")


def routes() -> list[web.RouteDef]:
    """``/v1/recognize``: WebSocket and sessionless."""
    return [web.get("/v1/recognize", recognize_websocket), web.post("/v1/recognize", recognize_http)]
