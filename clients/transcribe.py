"""The Amazon Transcribe streaming WebSocket dialect, client side (PROTOCOLS.md §2.1-2.4).

The URL is presigned with SigV4 (:func:`presigned_url`); every binary frame
is one event-stream message: audio goes out as ``AudioEvent`` messages and an
empty ``AudioEvent`` ends the stream; ``TranscriptEvent`` messages come back
(``Transcript.Results[]`` with ``ResultId``, ``IsPartial`` and
``Alternatives[0].Transcript``), or an ``exception`` message before the
server closes. After the end of audio the server sends what remains and
closes with 1000; that close ends the results.

:func:`audio_event` and :func:`parse_event` are the sans-I/O part;
:class:`TranscribeConnection` pumps them.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from enum import Enum

import aiohttp
from yarl import URL

from clients import transport
from clients.endpoint import host_header
from clients.errors import BadInput, BadServerMessage, ServerError, UnexpectedClose
from clients.recognition import Hypothesis
from protocol import sigv4
from protocol.errors import CloseCode, MalformedMessage, TooLarge
from protocol.eventstream import EventStreamDecoder, Message

AUDIO_EVENT_HEADERS = {":message-type": "event", ":event-type": "AudioEvent",
                       ":content-type": "application/octet-stream"}


@dataclass(frozen=True)
class Credentials:
    """What signs a presigned URL.

    Attributes:
        access_key_id, secret_access_key: the key pair the server knows.
        region: the region of the credential scope.
        session_token: an optional temporary-credentials token (signed as ``X-Amz-Security-Token``).
    """

    access_key_id: str
    secret_access_key: str
    region: str = "us-east-1"
    session_token: str | None = None


#: Placeholder credentials for a server running without authentication, which accepts any signature.
ANONYMOUS = Credentials("anonymous", "anonymous")


def presigned_url(url: URL, *, credentials: Credentials, language_code: str = "en-US", media_encoding: str = "pcm",
                  sample_rate_hz: int = 16000, expires_s: int = sigv4.MAX_EXPIRES_S,
                  params: Mapping[str, str] | None = None, now: dt.datetime | None = None) -> URL:
    """`url` with the Transcribe parameters and a SigV4 query signature.

    Args:
        url: the WebSocket URL of ``/stream-transcription-websocket`` (its own query parameters are kept and signed).
        credentials: the key pair and region.
        language_code, media_encoding, sample_rate_hz: the ``language-code``, ``media-encoding`` and ``sample-rate``
            parameters.
        expires_s: validity, 1-300 seconds.
        params: further Transcribe parameters, e.g. ``session-id`` or ``vocabulary-name``.
        now: signing time (default: the current UTC time).

    Returns:
        The presigned URL, already percent-encoded (pass it to aiohttp as is).

    Raises:
        BadInput: `expires_s` out of range.
    """
    signed = dict(url.query)
    signed.update({"language-code": language_code, "media-encoding": media_encoding,
                   "sample-rate": str(sample_rate_hz)})
    signed.update(params or {})
    try:
        query = sigv4.presign(host=host_header(url), path=url.raw_path, params=signed,
                              access_key_id=credentials.access_key_id,
                              secret_access_key=credentials.secret_access_key, region=credentials.region,
                              now=now or dt.datetime.now(dt.timezone.utc), expires_s=expires_s,
                              session_token=credentials.session_token)
    except ValueError as exc:
        raise BadInput(str(exc)) from exc
    return URL(f"{url.with_query(None)}?{query}", encoded=True)


def audio_event(chunk: bytes) -> bytes:
    """One ``AudioEvent`` message carrying `chunk` (an empty chunk ends the stream)."""
    return Message.build(AUDIO_EVENT_HEADERS, chunk).encode()


def parse_event(message: Message, received_at: float) -> list[Hypothesis]:
    """The results of one server message (none for events other than ``TranscriptEvent``).

    Raises:
        ServerError: an ``exception`` (or ``error``) message; its type is kept in ``error_type``.
        BadServerMessage: an unknown message type or a TranscriptEvent that is not the documented JSON.
    """
    kind = message.header(":message-type")
    if kind == "exception":
        error_type = str(message.header(":exception-type", "UnknownException"))
        raise ServerError(f"{error_type}: {_payload_message(message.payload)}", error_type)
    if kind == "error":
        error_type = str(message.header(":error-code", "UnknownError"))
        raise ServerError(f"{error_type}: {message.header(':error-message', '')}", error_type)
    if kind != "event":
        raise BadServerMessage(f"unknown event-stream :message-type {kind!r}")
    if message.header(":event-type") != "TranscriptEvent":
        return []
    try:
        results = json.loads(message.payload)["Transcript"]["Results"]
        hypotheses = []
        for result in results:
            alternatives = result["Alternatives"]
            transcript = alternatives[0]["Transcript"] if alternatives else ""
            hypotheses.append(Hypothesis(str(result["ResultId"]), str(transcript).strip(),
                                         not result["IsPartial"], received_at))
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, IndexError, TypeError) as exc:
        raise BadServerMessage(f"a TranscriptEvent that is not Transcript.Results[] with ResultId, IsPartial and "
                               f"Alternatives: {message.payload[:80]!r}") from exc
    return hypotheses


def _payload_message(payload: bytes) -> str:
    try:
        return str(json.loads(payload)["Message"])
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
        return payload.decode("utf-8", "replace")[:200]


class Phase(Enum):
    """Where a Transcribe stream stands."""

    STREAMING = "streaming"  # audio may flow
    ENDING = "ending"        # the empty AudioEvent went out; the server sends what remains, then closes
    CLOSED = "closed"


class TranscribeConnection:
    """One Transcribe stream over a presigned WebSocket URL (a stream per connection, as AWS has it)."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._ws = ws
        self._clock = clock
        self._decoder = EventStreamDecoder()
        self.phase = Phase.STREAMING

    @classmethod
    async def open(cls, session: aiohttp.ClientSession, url: URL, *, timeout_s: float = 30.0,
                   clock: Callable[[], float] = time.monotonic) -> TranscribeConnection:
        """Connect to a presigned URL (see :func:`presigned_url`).

        Raises:
            ConnectFailed, HandshakeRejected, BadInput: see :func:`clients.transport.connect`.
        """
        return cls(await transport.connect(session, url, timeout_s=timeout_s), clock=clock)

    def _expect(self, phase: Phase) -> None:
        if self.phase is not phase:
            raise RuntimeError(f"the Transcribe stream is {self.phase.value}; this call needs it {phase.value}")

    async def send_audio(self, chunk: bytes) -> None:
        """Send one AudioEvent (an empty chunk is skipped: on the wire it would end the stream)."""
        self._expect(Phase.STREAMING)
        if chunk:
            await transport.send(self._ws, audio_event(chunk))

    async def end_audio(self) -> None:
        """Send the empty AudioEvent that ends the stream."""
        self._expect(Phase.STREAMING)
        self.phase = Phase.ENDING
        await transport.send(self._ws, audio_event(b""))

    async def results(self) -> AsyncIterator[Hypothesis]:
        """Results until the server closes normally after the end of audio.

        Raises:
            ServerError: an exception message.
            UnexpectedClose: a close before the end of audio, or with a code other than 1000.
            BadServerMessage: a text frame or undecodable event-stream bytes.
        """
        while True:
            try:
                msg = await transport.receive(self._ws)
            except UnexpectedClose as exc:
                if exc.code == CloseCode.NORMAL and self.phase is Phase.ENDING:
                    self.phase = Phase.CLOSED
                    return
                raise
            if msg.type != aiohttp.WSMsgType.BINARY:
                raise BadServerMessage("the server sent a text frame; Transcribe servers send event-stream messages")
            try:
                messages = self._decoder.feed(msg.data)
            except (MalformedMessage, TooLarge) as exc:
                raise BadServerMessage(f"undecodable event-stream bytes: {exc}") from exc
            received_at = self._clock()
            for message in messages:
                for hypothesis in parse_event(message, received_at):
                    yield hypothesis

    async def close(self) -> None:
        """Close the socket (normally the server already has)."""
        self.phase = Phase.CLOSED
        await transport.close(self._ws)

    async def __aenter__(self) -> TranscribeConnection:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
