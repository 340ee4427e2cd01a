"""The load generator: N concurrent real-time streams, their latencies and their errors.

Each stream sends the same audio (looped or cut to the test's duration) in
real time, starting staggered over ``stagger_s`` so that the server sees
arrivals rather than one burst. Every failure is one stream's outcome, never
the run's end: a full server (HTTP 503 at the handshake), an ``{"error"}``
message or an abnormal close are what a load test is there to find.

Figures (see :class:`clients.recognition.RequestTimings`): first-partial
latency from the first audio byte to the first interim result; final latency
from the end of audio to the last final result; the real-time factor from
the first audio byte to the end of results per second of audio; and the
client's own send lag, which tells whether the load generator kept its
schedule (on a small machine it may be the bottleneck itself).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

import aiohttp
from yarl import URL

from clients import transport
from clients.audio import loop_pcm, pcm_content_type
from clients.endpoint import TRANSCRIBE_PATH, WATSON_PATH, websocket_url
from clients.errors import BadInput, ClientError
from clients.latency import LatencySummary
from clients.pacing import pcm_chunk_bytes, split_bytes
from clients.recognition import RequestTimings, stream_audio
from clients.transcribe import ANONYMOUS, Credentials, TranscribeConnection, presigned_url
from clients.watson import WatsonConnection


class Dialect(Enum):
    """The wire dialect of a stream."""

    WATSON = "watson"
    TRANSCRIBE = "transcribe"


@dataclass(frozen=True)
class LoadTestConfig:
    """One load test.

    Attributes:
        url: the server, ``ws://HOST:PORT`` (the dialect's path is added) or a full WebSocket URL.
        streams: concurrent streams.
        duration_s: seconds of audio per stream.
        dialect: Watson or Transcribe.
        chunk_s: seconds of audio per message.
        stagger_s: the streams' starts are spread evenly over this many seconds.
        model: Watson ``model`` query parameter (the server's default when None).
        api_key: Watson ``Authorization: Bearer`` key.
        credentials: what signs Transcribe URLs.
        language_code: Transcribe ``language-code``.
        connect_timeout_s: limit for the handshake (and the Watson ``listening``).
        response_timeout_s: limit for the results after the end of audio.
        acoustic_customization_ids: Watson ``acoustic_customization_id`` of the streams, in turn:
            stream ``i`` uses entry ``i % len``, ``None`` the base model (empty: every stream the base).
    """

    url: str
    streams: int
    duration_s: float
    dialect: Dialect = Dialect.WATSON
    chunk_s: float = 0.1
    stagger_s: float = 1.0
    model: str | None = None
    api_key: str | None = None
    credentials: Credentials = ANONYMOUS
    language_code: str = "en-US"
    connect_timeout_s: float = 30.0
    response_timeout_s: float = 30.0
    acoustic_customization_ids: tuple[str | None, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "acoustic_customization_ids", tuple(self.acoustic_customization_ids))
        if self.acoustic_customization_ids and self.dialect is not Dialect.WATSON:
            raise BadInput("custom acoustic models are a Watson parameter; the Transcribe dialect has none")
        if self.streams < 1:
            raise BadInput(f"the number of streams must be at least 1, got {self.streams}")
        if not self.duration_s > 0:
            raise BadInput(f"the duration must be positive, got {self.duration_s}")
        if not 0 < self.chunk_s <= 1:
            raise BadInput(f"the chunk length must be 0-1 s, got {self.chunk_s}")
        if self.stagger_s < 0:
            raise BadInput(f"the stagger must not be negative, got {self.stagger_s}")


@dataclass(frozen=True)
class StreamOutcome:
    """What became of one stream: timings when it completed, an error kind and message when not."""

    index: int
    timings: RequestTimings | None = None
    connect_ms: float | None = None
    error_kind: str | None = None
    error_message: str | None = None


@dataclass
class LiveCounts:
    """Counters a progress display reads while the test runs."""

    started: int = 0
    active: int = 0
    completed: int = 0
    errors: int = 0
    error_kinds: Counter = field(default_factory=Counter)


@dataclass(frozen=True)
class LoadReport:
    """The figures of one load test.

    Attributes:
        streams, completed, errors: stream counts (completed + errors = streams).
        error_kinds: errors by kind (``http 503``, ``close 1011``, ``server error``, ...).
        error_examples: one message per kind.
        first_partial_ms, final_ms, connect_ms: latency summaries over the completed streams.
        send_lag_ms: summary of each stream's worst send delay against its real-time schedule.
        rtf: mean real-time factor of the completed streams.
        duration_s: seconds of audio per stream.
        wall_s: seconds the whole test took.
    """

    streams: int
    completed: int
    errors: int
    error_kinds: dict[str, int]
    error_examples: dict[str, str]
    first_partial_ms: LatencySummary
    final_ms: LatencySummary
    connect_ms: LatencySummary
    send_lag_ms: LatencySummary
    rtf: float | None
    duration_s: float
    wall_s: float

    @classmethod
    def from_outcomes(cls, outcomes: list[StreamOutcome], *, duration_s: float, wall_s: float) -> LoadReport:
        """Aggregate the streams' outcomes."""
        done = [o for o in outcomes if o.timings is not None]
        failed = [o for o in outcomes if o.timings is None]
        kinds = Counter(o.error_kind or "unknown" for o in failed)
        examples: dict[str, str] = {}
        for o in failed:
            examples.setdefault(o.error_kind or "unknown", o.error_message or "")
        rtfs = [o.timings.real_time_factor for o in done if o.timings.real_time_factor is not None]
        return cls(
            streams=len(outcomes), completed=len(done), errors=len(failed),
            error_kinds=dict(kinds.most_common()), error_examples=examples,
            first_partial_ms=LatencySummary.of(o.timings.first_partial_ms for o in done),
            final_ms=LatencySummary.of(o.timings.final_ms for o in done),
            connect_ms=LatencySummary.of(o.connect_ms for o in done),
            send_lag_ms=LatencySummary.of(o.timings.max_send_lag_ms for o in done),
            rtf=sum(rtfs) / len(rtfs) if rtfs else None, duration_s=duration_s, wall_s=wall_s)

    def to_json(self) -> dict:
        """One JSON object: ``streams``, ``completed``, ``errors``, ``first_partial_ms`` and ``final_ms``
        (each ``{"p50", "p95", "p99"}``), ``rtf``, and the extras ``error_kinds``, ``connect_ms``,
        ``send_lag_ms``, ``duration_s``, ``wall_s``."""
        return {"streams": self.streams, "completed": self.completed, "errors": self.errors,
                "first_partial_ms": self.first_partial_ms.to_json(), "final_ms": self.final_ms.to_json(),
                "rtf": None if self.rtf is None else round(self.rtf, 3), "error_kinds": self.error_kinds,
                "connect_ms": self.connect_ms.to_json(), "send_lag_ms": self.send_lag_ms.to_json(),
                "duration_s": self.duration_s, "wall_s": round(self.wall_s, 2)}

    def render(self) -> str:
        """The human report, a few aligned lines."""
        lines = [
            f"streams           {self.streams} × {self.duration_s:g} s of audio: {self.completed} completed, "
            f"{self.errors} failed",
            f"first partial     {self.first_partial_ms.describe()}",
            f"final             {self.final_ms.describe()}",
            f"connect           {self.connect_ms.describe()}",
            f"real-time factor  {'n/a' if self.rtf is None else f'{self.rtf:.3f}'} "
            "(mean; 1.0 = results as the audio ends)",
            f"client send lag   {self.send_lag_ms.describe()} (worst chunk per stream; large = the client was the "
            "bottleneck)",
        ]
        if self.errors:
            lines.append("errors:")
            lines += [f"  {kind:<16} {count:>5}  e.g. {self.error_examples.get(kind, '')}"
                      for kind, count in self.error_kinds.items()]
        return "\n".join(lines)


async def run_load(config: LoadTestConfig, pcm: bytes, sample_rate_hz: int, *, counts: LiveCounts | None = None,
                   session: aiohttp.ClientSession | None = None,
                   clock: Callable[[], float] = time.monotonic) -> LoadReport:
    """Run a load test.

    Args:
        config: what to run.
        pcm: 16-bit mono little-endian PCM, looped or cut to the test's duration.
        sample_rate_hz: its rate.
        counts: updated as streams start and end (for a progress display).
        session: the aiohttp session to use (a fresh one without a connection cap by default).

    Returns:
        The report; failures are counted in it, never raised.

    Raises:
        BadInput: a URL or audio the test cannot use (checked before any stream starts).
    """
    default_path = WATSON_PATH if config.dialect is Dialect.WATSON else TRANSCRIBE_PATH
    url = websocket_url(config.url, default_path)
    audio = loop_pcm(pcm, sample_rate_hz, config.duration_s)
    chunks = split_bytes(audio, pcm_chunk_bytes(sample_rate_hz, config.chunk_s))
    audio_s = len(audio) / 2 / sample_rate_hz
    counts = counts if counts is not None else LiveCounts()
    own_session = session is None
    session = session or transport.new_session()

    async def one(index: int, start_at: float) -> StreamOutcome:
        await asyncio.sleep(max(0.0, start_at - clock()))
        counts.started += 1
        counts.active += 1
        outcome = await _stream(index, config, session, url, chunks, audio_s, sample_rate_hz, clock)
        counts.active -= 1
        if outcome.error_kind is None:
            counts.completed += 1
        else:
            counts.errors += 1
            counts.error_kinds[outcome.error_kind] += 1
        return outcome

    began = clock()
    try:
        outcomes = await asyncio.gather(*(one(i, began + i * config.stagger_s / config.streams)
                                          for i in range(config.streams)))
    finally:
        if own_session:
            await session.close()
    return LoadReport.from_outcomes(list(outcomes), duration_s=config.duration_s, wall_s=clock() - began)


async def _stream(index: int, config: LoadTestConfig, session: aiohttp.ClientSession, url: URL, chunks: list[bytes],
                  audio_s: float, sample_rate_hz: int, clock: Callable[[], float]) -> StreamOutcome:
    """One stream from handshake to the end of its results; every failure becomes its outcome."""
    began = clock()
    try:
        if config.dialect is Dialect.WATSON:
            ids = config.acoustic_customization_ids
            custom = ids[index % len(ids)] if ids else None
            if custom is not None:
                url = url.update_query(acoustic_customization_id=custom)
            connection = await WatsonConnection.open(session, url, model=config.model, api_key=config.api_key,
                                                     timeout_s=config.connect_timeout_s, clock=clock)
            async with connection:
                await connection.start(content_type=pcm_content_type(sample_rate_hz), interim_results=True,
                                       timeout_s=config.connect_timeout_s)
                connect_ms = (clock() - began) * 1000
                _, timings = await stream_audio(connection, chunks, chunk_s=config.chunk_s, audio_s=audio_s,
                                                response_timeout_s=config.response_timeout_s, clock=clock)
        else:
            # A session id per stream makes every presigned URL unique, so a server that refuses replayed
            # signatures does not mistake streams signed in the same second for one URL used twice.
            signed = presigned_url(url, credentials=config.credentials, language_code=config.language_code,
                                   sample_rate_hz=sample_rate_hz, params={"session-id": str(uuid.uuid4())})
            connection = await TranscribeConnection.open(session, signed, timeout_s=config.connect_timeout_s,
                                                         clock=clock)
            async with connection:
                connect_ms = (clock() - began) * 1000
                _, timings = await stream_audio(connection, chunks, chunk_s=config.chunk_s, audio_s=audio_s,
                                                response_timeout_s=config.response_timeout_s, clock=clock)
        return StreamOutcome(index, timings, connect_ms)
    except ClientError as exc:
        return StreamOutcome(index, error_kind=exc.kind, error_message=exc.message)
    except Exception as exc:  # noqa: BLE001  (a load test reports the unforeseen as one more error kind)
        return StreamOutcome(index, error_kind=type(exc).__name__, error_message=str(exc) or repr(exc))
