"""The dialect-independent request driver: concurrent send and receive, milestones, and which error wins.

The connection here is an in-memory stand-in for a dialect's connection
object (not a server): it lets each test script what the results side does
while the real pacing sends a few 10 ms chunks.
"""

import asyncio

import pytest

from clients.errors import BadServerMessage, ResponseTimeout, ServerError, UnexpectedClose
from clients.recognition import Hypothesis, RequestTimings, stream_audio

CHUNKS = [b"a" * 4, b"b" * 4, b"c" * 2]
CHUNK_S = 0.01
AUDIO_S = 0.025


class ScriptedConnection:
    """Emits an interim result after the first chunk and a final after the end of audio, unless told otherwise."""

    def __init__(self, *, fail_results_after_chunk: int | None = None, fail_sends: bool = False,
                 end_early: bool = False, never_finish: bool = False) -> None:
        self.sent: list[bytes] = []
        self.ended = False
        self._events: asyncio.Queue = asyncio.Queue()
        self._fail_results_after_chunk = fail_results_after_chunk
        self._fail_sends = fail_sends
        self._end_early = end_early
        self._never_finish = never_finish

    async def send_audio(self, chunk: bytes) -> None:
        if self._fail_sends:
            self._events.put_nowait(ServerError("Model busy"))
            raise UnexpectedClose(1011, "closed while sending")
        self.sent.append(chunk)
        if len(self.sent) == 1:
            self._events.put_nowait(("0", "hel", False))
        if self._end_early:
            self._events.put_nowait(None)
        if self._fail_results_after_chunk == len(self.sent):
            self._events.put_nowait(ServerError("bad audio"))

    async def end_audio(self) -> None:
        self.ended = True
        if not self._never_finish:
            self._events.put_nowait(("0", "hello", True))
            self._events.put_nowait(None)

    async def results(self):
        loop = asyncio.get_running_loop()
        while True:
            event = await self._events.get()
            if event is None:
                return
            if isinstance(event, Exception):
                raise event
            key, text, final = event
            yield Hypothesis(key, text, final, loop.time())


def _run(connection, **kwargs):
    async def go():
        return await stream_audio(connection, CHUNKS, chunk_s=CHUNK_S, audio_s=AUDIO_S,
                                  clock=asyncio.get_running_loop().time, **kwargs)
    return asyncio.run(go())


def test_milestones_in_order_and_results_forwarded() -> None:
    connection = ScriptedConnection()
    seen: list[Hypothesis] = []
    finals, timings = _run(connection, on_result=seen.append)
    assert connection.sent == CHUNKS and connection.ended
    assert [(h.transcript, h.final) for h in seen] == [("hel", False), ("hello", True)]
    assert [h.transcript for h in finals] == ["hello"]
    assert timings.first_audio_at <= timings.first_partial_at
    assert timings.first_audio_at < timings.end_of_audio_at <= timings.last_final_at <= timings.finished_at
    assert len(timings.send_lags_s) == 3
    assert timings.first_partial_ms >= 0 and timings.final_ms >= 0 and timings.real_time_factor > 0


def test_a_server_error_while_streaming_stops_the_sender() -> None:
    connection = ScriptedConnection(fail_results_after_chunk=1)
    with pytest.raises(ServerError, match="bad audio"):
        _run(connection)
    assert not connection.ended


def test_the_receivers_reason_wins_over_a_failed_send() -> None:
    with pytest.raises(ServerError, match="Model busy"):
        _run(ScriptedConnection(fail_sends=True))


def test_results_that_end_before_the_audio_are_an_error() -> None:
    with pytest.raises(BadServerMessage, match="before the end of audio"):
        _run(ScriptedConnection(end_early=True))


def test_no_end_of_results_times_out() -> None:
    with pytest.raises(ResponseTimeout, match="0.01 s after the end of audio"):
        _run(ScriptedConnection(never_finish=True), response_timeout_s=0.01)


def test_timings_arithmetic() -> None:
    timings = RequestTimings(audio_s=2.0, first_audio_at=10.0, first_partial_at=10.3, end_of_audio_at=12.0,
                             last_final_at=12.25, finished_at=12.3, send_lags_s=[0.0, 0.004])
    assert timings.first_partial_ms == pytest.approx(300)
    assert timings.final_ms == pytest.approx(250)
    assert timings.real_time_factor == pytest.approx(1.15)
    assert timings.max_send_lag_ms == pytest.approx(4)
    # Every final arrived before the end of audio: the request's end is the latency, never a negative number.
    early = RequestTimings(audio_s=2.0, first_audio_at=10.0, end_of_audio_at=12.0, finished_at=12.1)
    assert early.final_ms == pytest.approx(100) and early.first_partial_ms is None
    assert RequestTimings(audio_s=1.0).final_ms is None and RequestTimings(audio_s=1.0).real_time_factor is None
