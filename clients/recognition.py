"""One recognition request, whatever the dialect: audio out in real time, results in, with the times of each.

A dialect's connection (:class:`clients.watson.WatsonConnection`,
:class:`clients.transcribe.TranscribeConnection`) knows its wire format;
:func:`stream_audio` drives any of them: it sends the paced chunks in one
task while another reads results, so a slow server never delays the audio
clock, and it stamps the milestones a latency figure is made of.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from clients.errors import BadServerMessage, ClientError, ResponseTimeout
from clients.pacing import paced

#: How long to wait for the receiving side's own account of a failure after a send failed.
_SEND_FAILURE_GRACE_S = 5.0


@dataclass(frozen=True)
class Hypothesis:
    """One result as the server sent it.

    Attributes:
        key: which utterance it belongs to: the Watson result index, or the Transcribe ``ResultId``.
            Interim results for a key are replaced by later ones, up to its final.
        transcript: the best alternative's text, without the trailing space Watson adds.
        final: whether this is the utterance's last word.
        received_at: monotonic time the message arrived.
    """

    key: str
    transcript: str
    final: bool
    received_at: float


class RecognitionConnection(Protocol):
    """What :func:`stream_audio` needs of a dialect's connection (after its handshake and start)."""

    async def send_audio(self, chunk: bytes) -> None:
        """Send one chunk of audio."""

    async def end_audio(self) -> None:
        """Tell the server the request's audio is complete."""

    def results(self) -> AsyncIterator[Hypothesis]:
        """The request's results as they arrive, ending with the request; errors are raised."""


@dataclass
class RequestTimings:
    """Monotonic times (seconds) of one request's milestones.

    Attributes:
        audio_s: seconds of audio in the request.
        first_audio_at: the first audio byte went out.
        end_of_audio_at: the end of audio went out (Watson ``stop``, the empty Transcribe AudioEvent).
        first_partial_at: the first interim result arrived.
        last_final_at: the last final result that arrived after the end of audio.
        finished_at: the request's results were complete (second ``listening``, or the closing frame).
        send_lags_s: how late each chunk went out against the real-time schedule (the client's own delay).
    """

    audio_s: float
    first_audio_at: float | None = None
    end_of_audio_at: float | None = None
    first_partial_at: float | None = None
    last_final_at: float | None = None
    finished_at: float | None = None
    send_lags_s: list[float] = field(default_factory=list)

    @property
    def first_partial_ms(self) -> float | None:
        """From the first audio byte to the first interim result; None without either."""
        if self.first_audio_at is None or self.first_partial_at is None:
            return None
        return (self.first_partial_at - self.first_audio_at) * 1000

    @property
    def final_ms(self) -> float | None:
        """From the end of audio to the last final result.

        A final that arrived before the end of audio (its utterance ended in
        the middle of the stream) is no latency of the end of audio; when no
        final arrives afterwards, the request's end (the moment the client
        knows no more will come) counts instead, so this is never negative.
        """
        if self.end_of_audio_at is None:
            return None
        end = self.last_final_at if self.last_final_at is not None else self.finished_at
        return None if end is None else (end - self.end_of_audio_at) * 1000

    @property
    def real_time_factor(self) -> float | None:
        """Seconds from the first audio byte to the end of results, per second of audio (1.0 = no delay)."""
        if self.first_audio_at is None or self.finished_at is None or self.audio_s <= 0:
            return None
        return (self.finished_at - self.first_audio_at) / self.audio_s

    @property
    def max_send_lag_ms(self) -> float:
        """The latest chunk's delay against its schedule; large values mean the client, not the server, was slow."""
        return max(self.send_lags_s, default=0.0) * 1000


async def stream_audio(connection: RecognitionConnection, chunks: Sequence[bytes], *, chunk_s: float,
                       audio_s: float, on_result: Callable[[Hypothesis], None] | None = None,
                       response_timeout_s: float = 30.0,
                       clock: Callable[[], float] = time.monotonic) -> tuple[list[Hypothesis], RequestTimings]:
    """Send `chunks` in real time over `connection` while collecting its results.

    The end of audio is sent when the last chunk's audio would have ended in
    real time (``audio_s`` after the first chunk), as a live source would.

    Args:
        connection: a started request of either dialect.
        chunks: the audio, each piece holding `chunk_s` seconds (the last may hold less).
        chunk_s: seconds of audio per chunk.
        audio_s: seconds of audio in all the chunks.
        on_result: called with every result as it arrives (interim and final).
        response_timeout_s: how long after the end of audio the results may take to complete.
        clock: the monotonic clock of every timestamp (the connection's ``received_at`` must use the same).

    Returns:
        The final results in arrival order, and the request's timings.

    Raises:
        ClientError: the server's error, an unexpected close, or :class:`ResponseTimeout`.
    """
    timings = RequestTimings(audio_s=audio_s)
    finals: list[Hypothesis] = []

    async def send() -> None:
        first_due = None
        async for chunk in paced(chunks, chunk_s=chunk_s, clock=clock):
            if first_due is None:
                first_due = chunk.due
                timings.first_audio_at = clock()
            timings.send_lags_s.append(chunk.lag_s)
            await connection.send_audio(chunk.data)
        if first_due is not None:
            await asyncio.sleep(max(0.0, first_due + audio_s - clock()))
        timings.end_of_audio_at = clock()
        await connection.end_audio()

    async def receive() -> None:
        async for hypothesis in connection.results():
            if hypothesis.final:
                finals.append(hypothesis)
                if timings.end_of_audio_at is not None:
                    timings.last_final_at = hypothesis.received_at
            elif timings.first_partial_at is None:
                timings.first_partial_at = hypothesis.received_at
            if on_result is not None:
                on_result(hypothesis)
        timings.finished_at = clock()

    sender = asyncio.create_task(send())
    receiver = asyncio.create_task(receive())
    try:
        await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
        if not sender.done():
            # The results ended (or failed) while audio was still going out.
            sender.cancel()
            receiver.result()
            raise BadServerMessage("the server ended the request's results before the end of audio")
        if sender.exception() is not None:
            # A send fails because the socket closed; the receiving side knows why (an error message, a close code).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_SEND_FAILURE_GRACE_S):
                    await asyncio.wait({receiver})
            if receiver.done() and isinstance(receiver.exception(), ClientError):
                raise receiver.exception()  # type: ignore[misc]
            raise sender.exception()  # type: ignore[misc]
        try:
            async with asyncio.timeout(response_timeout_s):
                await receiver
        except TimeoutError:
            message = f"the results were not complete {response_timeout_s:g} s after the end of audio"
            raise ResponseTimeout(message) from None
        return finals, timings
    finally:
        for task in (sender, receiver):
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
