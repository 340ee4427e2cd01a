"""One request's recognition: encoded audio bytes in, results out as they form.

A :class:`Recognition` carries one request's audio from encoded bytes to
results: incremental decoding, feature chunks, batched model steps through
the version's scheduler (:mod:`server.runtime.models`). It is not safe to
call concurrently with itself: each route drives it from the one task that
reads its connection (shutdown included). :class:`Recognitions` makes them
with the server's settings and metrics, for every dialect and for jobs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import torch

from engine.audio import AudioError, UnsupportedAudioType
from engine.audiostream import StreamDecoder
from engine.customlm import CustomLM
from engine.endpoint import EndpointConfig
from engine.recognizer import Result
from protocol.audio import parse_content_type
from protocol.errors import InvalidParameter, UnsupportedMedia
from protocol.watson import Hypothesis, Options, WordHypothesis, WordSlot
from protocol.wav import parse_wav_header
from server.config import RecognitionConfig
from server.runtime.metrics import Metrics
from server.runtime.models import LoadedModel
from server.runtime.resolution import Resolved

#: Most whole chunks one stream sends through one model step (a stream that fell behind catches up).
MAX_CHUNKS_PER_STEP = 4


def _audio_error(exc: AudioError) -> InvalidParameter | UnsupportedMedia:
    return UnsupportedMedia(str(exc)) if isinstance(exc, UnsupportedAudioType) else InvalidParameter(str(exc))


def hypothesis(result: Result) -> Hypothesis:
    """The wire form of an engine result."""
    words = tuple(WordHypothesis(w.word, w.start, w.end, w.confidence) for w in result.words)
    slots = tuple(WordSlot(s.start, s.end, s.alternatives) for s in result.word_alternatives)
    return Hypothesis(words, result.final, result.end_of_utterance, result.alternatives, slots)


ResultsHandler = Callable[[list[Result]], Awaitable[None]]


class Recognition:
    """One request: encoded audio bytes in, results out as they form.

    Reading and recognising are decoupled: :meth:`feed` (called by the
    route as frames arrive) only decodes and queues samples; a stepper task
    moves the queued samples into the stream and runs its chunks through the
    scheduler, taking every whole chunk that piled up during the previous
    step at once, so a stream that fell behind catches up instead of
    drifting. Results go to ``on_results`` in order.

    Args:
        model: the model version.
        content_type: the audio's MIME type (None: auto-detect a container).
        endpoint: utterance endpointing.
        metrics: where audio seconds are counted.
        on_results: awaited with each step's results.
        settings: chunk length and final passes.
        route: the kind of route (:data:`server.config.ROUTES`) whose final pass applies.
        custom_lm: a trained custom language model for the finals' beam search, or None.
        customization_weight: its weight against the base LM (0-1).
        max_alternatives: transcripts per final, the best and its next-best (``whisper`` finals only).
        word_alternatives: finals carry each word's competing words (``whisper`` finals only).

    Raises:
        UnsupportedMedia, InvalidParameter: an audio type or rate the model cannot take.

    Attributes:
        failed: set when the stepper failed; :attr:`error` holds why.
    """

    def __init__(self, model: LoadedModel, content_type: str | None, *, endpoint: EndpointConfig,
                 metrics: Metrics, on_results: ResultsHandler, settings: RecognitionConfig, route: str,
                 custom_lm: CustomLM | None = None, customization_weight: float = 0.3,
                 max_alternatives: int = 1, word_alternatives: bool = False) -> None:
        self.model = model
        try:
            self.decoder = StreamDecoder(parse_content_type(content_type), target_rate_hz=model.bundle.sample_rate_hz,
                                         read_wav_header=parse_wav_header)
        except AudioError as exc:
            raise _audio_error(exc) from exc
        chunk_frames = round(settings.chunk_ms / model.bundle.features.hop_ms)
        final_pass = model.recognizer.final_pass(settings.requested_final_pass(route), custom_lm=custom_lm,
                                                 customization_weight=customization_weight,
                                                 max_alternatives=max_alternatives,
                                                 whisper_beam=settings.whisper_beam(route), adapter=model.adapter,
                                                 fusion=settings.custom_lm_fusion, word_alternatives=word_alternatives)
        #: for the results' warnings
        self.warnings: tuple[str, ...] = () if not final_pass.ignored_custom_lm else (
            f"The custom language model is not applied to the final results of {model.bundle.version}: its final "
            "pass is Whisper's decoder, which does not take custom language models yet (set final_pass = "
            "\"ctc\" in the server's [recognition] to use the custom model in the CTC beam search instead).",)
        if final_pass.ignored_adapter:
            self.warnings += (f"The custom acoustic model adapts the \"whisper\" final pass of {model.bundle.version}; "
                              f"this request's final pass is \"{final_pass.kind.value}\", which it does not change.",)
        if word_alternatives and not final_pass.word_alternatives:
            self.warnings += (f"word_alternatives_threshold: word alternatives come from the \"whisper\" final pass's "
                              f"beam; this request's final pass on {model.bundle.version} is "
                              f"\"{final_pass.kind.value}\", so its finals carry none.",)
        try:
            self.stream = model.recognizer.new_stream(endpoint=endpoint, chunk_frames=chunk_frames,
                                                      max_chunks=MAX_CHUNKS_PER_STEP, final_pass=final_pass,
                                                      online=True)
        except ValueError as exc:
            raise InvalidParameter(str(exc)) from exc
        self._metrics = metrics
        self._on_results = on_results
        self._speech_until_s = 0.0
        self._incoming: list[torch.Tensor] = []
        self._ended = False
        self._wake = asyncio.Event()
        self.failed = asyncio.Event()
        self.error: BaseException | None = None
        self._task = asyncio.get_running_loop().create_task(self._run(), name="recognition-stepper")

    @property
    def seconds_without_speech(self) -> float:
        """Seconds of recognised audio since the last recognised word (or the start)."""
        return self.stream.audio_seconds - self._speech_until_s

    def feed(self, data: bytes) -> None:
        """Decode bytes and queue their samples for the stepper.

        Raises:
            InvalidParameter, UnsupportedMedia: undecodable audio or a rate below the model's.
        """
        try:
            samples = self.decoder.feed(data)
        except AudioError as exc:
            raise _audio_error(exc) from exc
        self._queue(samples)

    def _queue(self, samples: torch.Tensor) -> None:
        if samples.numel():
            self._incoming.append(samples)
            self._metrics.audio_seconds.labels(self.model.bundle.version).inc(
                samples.numel() / self.model.bundle.sample_rate_hz)
            self._wake.set()

    async def finish(self) -> None:
        """End of audio: decode the rest and wait until every result has been handed to ``on_results``.

        Raises:
            InvalidParameter, UnsupportedMedia: undecodable or empty audio.
            Exception: what the stepper failed with.
        """
        try:
            # A container decoder may still be working in its thread: wait for it off the event loop.
            samples = await asyncio.to_thread(self.decoder.finish)
        except AudioError as exc:
            raise _audio_error(exc) from exc
        self._queue(samples)
        self._ended = True
        self._wake.set()
        await asyncio.shield(self._task)
        if self.error is not None:
            raise self.error

    def _drain(self) -> None:
        """Move queued samples into the stream (only while no step of it is in flight)."""
        if self._incoming:
            samples = torch.cat(self._incoming) if len(self._incoming) > 1 else self._incoming[0]
            self._incoming = []
            self.stream.accept_audio(samples)
        if self._ended:
            self.stream.end_audio()

    async def _run(self) -> None:
        try:
            while not self.stream.finished:
                await self._wake.wait()
                self._wake.clear()
                self._drain()
                while self.stream.has_chunk:
                    results = await self.model.scheduler.step(self.stream)
                    self._drain()
                    if any(r.words for r in results):
                        self._speech_until_s = self.stream.audio_seconds
                    if results:
                        await self._on_results([await self._rescored(r) for r in results])
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - handed to the route, which reports it to the client
            self.error = exc
            self.failed.set()

    async def _rescored(self, result: Result) -> Result:
        """A final whose beam search ran in the search pool, with its words (other results as they are)."""
        if result.rescore is None:
            return result
        tokens = await asyncio.wrap_future(result.rescore)
        return self.model.recognizer.rescored(result, tokens)

    def close(self) -> None:
        """Abandon the request (client gone, or done): stop the stepper, free the decoder and the search."""
        if not self._task.done():
            self._task.cancel()
        self.stream.discard()
        self.decoder.close()


@dataclass(frozen=True)
class Recognitions:
    """Makes the requests' :class:`Recognition` with the server's recognition settings and metrics."""

    settings: RecognitionConfig
    metrics: Metrics

    def open(self, resolved: Resolved, content_type: str | None, *, on_results: ResultsHandler, route: str,
             endpoint: EndpointConfig | None = None, customization_weight: float | None = None,
             max_alternatives: int = 1, word_alternatives: bool = False) -> Recognition:
        """A recognition with the resolved models and ``route``'s final pass (see :class:`Recognition`).

        Raises:
            UnsupportedMedia, InvalidParameter: an audio type or rate the model cannot take.
        """
        return Recognition(resolved.model, content_type, endpoint=endpoint or EndpointConfig(), metrics=self.metrics,
                           on_results=on_results, settings=self.settings, route=route, custom_lm=resolved.custom_lm,
                           customization_weight=resolved.weight(customization_weight),
                           max_alternatives=max_alternatives, word_alternatives=word_alternatives)

    def for_watson(self, resolved: Resolved, options: Options, on_results: ResultsHandler, *,
                   route: str) -> Recognition:
        """A Watson request's recognition (WebSocket, sessionless or job) with its parsed options."""
        # A phrase-end silence of 0 would close after every word; one output frame (40 ms) is the floor.
        endpoint = EndpointConfig(silence_seconds=max(options.end_of_phrase_silence_time_s, 0.04))
        return self.open(resolved, options.content_type, on_results=on_results, route=route, endpoint=endpoint,
                         customization_weight=options.customization_weight,
                         max_alternatives=options.max_alternatives,
                         word_alternatives=options.word_alternatives_threshold is not None)
