"""The Amazon Transcribe dialect: the presigned WebSocket and ``POST /stream-transcription``.

Both routes feed :class:`protocol.transcribe.TranscribeSession` with the
bytes they receive and send TranscriptEvents as results form. A partial
result keeps its ``ResultId`` until the final of that utterance; an empty
AudioEvent ends the stream. Errors before the stream starts are HTTP errors
(``x-amzn-errortype`` + ``{"Message"}``, through the error middleware); errors
during it are an exception message, then the end of the stream (WebSocket:
the error's close code).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import WSMsgType, web

from engine.recognizer import Result
from protocol.errors import CloseCode, InvalidParameter, Timeout, VoxgateError, close_code_for
from protocol.session import AudioEnded, AudioReceived
from protocol.stability import PartialStabilizer
from protocol.transcribe import StreamParams, TranscribeSession, exception_event, transcript_event
from server.config import Limits
from server.http.bodies import body_chunks
from server.http.keys import AUTH, CONFIG, CUSTOM_MODELS, METRICS, RECOGNITIONS, SESSIONS
from server.http.transcribe.errors import transcribe
from server.http.transcribe.models import resolve_stream, warning_headers
from server.http.websocket import receive
from server.runtime.metrics import Metrics
from server.runtime.recognition import Recognitions, hypothesis
from server.runtime.resolution import Resolved
from server.runtime.sessions import Admission

log = logging.getLogger("voxgate.transcribe")


class TranscriptStream:
    """One Transcribe stream: audio events in, TranscriptEvents out through ``send``."""

    def __init__(self, recognitions: Recognitions, resolved: Resolved, params: StreamParams, limits: Limits,
                 send: Callable[[bytes], Awaitable[None]]) -> None:
        self.params = params
        self.session = TranscribeSession(max_request_bytes=limits.max_request_bytes)
        self.recognition = recognitions.open(resolved, params.content_type, on_results=self._emit, route="live")
        self._send = send
        self._result_id = str(uuid.uuid4())
        self._span: tuple[float, float] | None = None  # start and end of the open result, once it has words
        # enable-partial-results-stabilization: stable items are pinned, so they never change
        self._stabilizer = PartialStabilizer(params.stability) if params.stabilization else None
        self.ended = False

    async def _emit(self, results: list[Result]) -> None:
        for r in results:
            words, stable = hypothesis(r).words, None
            if self._stabilizer is not None:
                items = self._stabilizer.finish(words) if r.final else self._stabilizer.partial(words)
                words, stable = tuple(i.word for i in items), tuple(i.stable for i in items)
            if words:
                self._span = (words[0].start_s, words[-1].end_s)
            if words or (r.final and self._span is not None):
                # A final that lost every word in the beam search still closes its partials' ResultId.
                await self._send(transcript_event(result_id=self._result_id, start_s=self._span[0],
                                                  end_s=self._span[1], partial=not r.final, words=words,
                                                  stable=stable))
            if r.final:
                self._result_id = str(uuid.uuid4())
                self._span = None

    async def receive(self, data: bytes) -> None:
        """Bytes of the event stream; results are sent as they form."""
        for event in self.session.receive_bytes(data):
            if isinstance(event, AudioReceived):
                self.recognition.feed(event.data)
            elif isinstance(event, AudioEnded):
                await self._finish()

    async def _finish(self) -> None:
        self.ended = True
        try:
            await self.recognition.finish()
        finally:
            self.recognition.close()

    async def receive_eof(self) -> None:
        """The transport ended: an unterminated stream still gets its finals."""
        self.session.receive_eof()
        if not self.ended:
            await self._finish()

    async def flush(self) -> None:
        """Server shutdown: send the finals of what was received."""
        if not self.ended:
            try:
                await self._finish()
            except VoxgateError:
                pass  # nothing decodable was left

    def close(self) -> None:
        """Abandon the stream."""
        self.session.close()
        self.recognition.close()


@transcribe("transcribe-ws")
async def transcribe_websocket(request: web.Request) -> web.StreamResponse:
    """``GET /stream-transcription-websocket``: presigned-URL auth, event-stream binary frames."""
    app = request.app
    limits = app[CONFIG].limits
    instance, params = app[AUTH].presigned_instance(method="GET", path=request.path,
                                                    raw_query=request.query_string, host=request.host)
    stream_params = StreamParams.parse(params)
    resolved = await resolve_stream(app, instance, stream_params)
    # the CLM counts as in use while the stream runs: DeleteLanguageModel is refused meanwhile
    with app[SESSIONS].admit("transcribe-ws") as admission, app[CUSTOM_MODELS].using(resolved.language_id):
        ws = web.WebSocketResponse(max_msg_size=limits.max_frame_bytes + 1)
        ws.headers.update(warning_headers(resolved))  # sent with the handshake's 101
        stream = TranscriptStream(app[RECOGNITIONS], resolved, stream_params, limits, ws.send_bytes)
        await ws.prepare(request)
        await _pump_websocket(ws, stream, admission, limits.session_timeout_s, app[METRICS])
    return ws


async def _pump_websocket(ws: web.WebSocketResponse, stream: TranscriptStream, admission: Admission,
                          timeout_s: float, metrics: Metrics) -> None:
    try:
        while not ws.closed and not stream.ended:
            try:
                msg = await receive(admission, ws, timeout_s, stream.recognition.failed)
            except TimeoutError:
                raise Timeout(f"Session timed out: no audio for {timeout_s:g} seconds.") from None
            if msg is None and stream.recognition.error is not None:
                raise stream.recognition.error
            if msg is None:  # server shutdown: the finals of what arrived, then 1012
                await stream.flush()
                await ws.close(code=CloseCode.SERVICE_RESTART, message=b"server restarting")
                return
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                return
            if msg.type is WSMsgType.ERROR:
                raise InvalidParameter(f"bad WebSocket frame: {msg.data}")
            if msg.type is WSMsgType.TEXT:
                raise InvalidParameter("text frames are not part of this protocol; send event-stream messages "
                                       "as binary frames")
            await stream.receive(msg.data)
        if not ws.closed:
            await ws.close(code=CloseCode.NORMAL)
    except Exception as exc:  # noqa: BLE001 - reported to the peer as an exception message, details only in the log
        if not isinstance(exc, VoxgateError):
            log.exception("unexpected error in a transcribe stream")
        metrics.errors.labels("transcribe-ws", type(exc).__name__).inc()
        if not ws.closed:
            await ws.send_bytes(exception_event(exc))
            await ws.close(code=close_code_for(exc))
    finally:
        stream.close()


@transcribe("transcribe-http")
async def transcribe_http(request: web.Request) -> web.StreamResponse:
    """``POST /stream-transcription``: the event-stream exchange over HTTP/1.1 chunked transfer, both ways."""
    app = request.app
    limits = app[CONFIG].limits
    instance = app[AUTH].signed_request_instance(method=request.method, path=request.path,
                                                 raw_query=request.query_string, headers=request.headers,
                                                 query=request.query)
    target = request.headers.get("X-Amz-Target", "com.amazonaws.transcribe.Transcribe.StartStreamTranscription")
    if not target.endswith("StartStreamTranscription"):
        raise InvalidParameter(f"unsupported X-Amz-Target {target!r}; this route runs StartStreamTranscription")
    params = StreamParams.from_headers(request.headers)
    resolved = await resolve_stream(app, instance, params)
    with app[SESSIONS].admit("transcribe-http"), app[CUSTOM_MODELS].using(resolved.language_id):
        echoed = {k: v for k, v in request.headers.items() if k.lower().startswith("x-amzn-transcribe-")}
        echoed |= {"x-amzn-request-id": str(uuid.uuid4()), "x-amzn-transcribe-session-id": params.session_id,
                   "Content-Type": "application/vnd.amazon.eventstream", **warning_headers(resolved)}
        response = web.StreamResponse(status=200, headers=echoed)
        response.enable_chunked_encoding()
        stream = TranscriptStream(app[RECOGNITIONS], resolved, params, limits, response.write)
        await response.prepare(request)
        try:
            async for chunk in body_chunks(request, limit_bytes=limits.max_request_bytes,
                                           idle_timeout_s=limits.session_timeout_s):
                await stream.receive(chunk)
                if stream.ended or stream.recognition.failed.is_set():
                    break
            if not stream.ended:
                await stream.receive_eof()
        except ConnectionError:
            raise  # the client is gone (mid-body or mid-answer): no one to send an exception event to; see bodies.py
        except Exception as exc:  # noqa: BLE001 - reported in-stream; details only in the log
            if not isinstance(exc, VoxgateError):
                log.exception("unexpected error in a transcribe stream")
            app[METRICS].errors.labels("transcribe-http", type(exc).__name__).inc()
            await response.write(exception_event(exc))
        finally:
            stream.close()
        await response.write_eof()
        return response


def routes() -> list[web.RouteDef]:
    """Transcribe's streaming routes."""
    return [web.get("/stream-transcription-websocket", transcribe_websocket),
            web.post("/stream-transcription", transcribe_http)]
