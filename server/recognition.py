"""Recognition inside the server: loaded model versions with their schedulers, and one request's pump.

:class:`LoadedModels` loads every installed version of every base model at
start (a broken artifact fails the start, not a request) and gives each
version its own :class:`~engine.scheduler.BatchScheduler`. A
:class:`Recognition` carries one request's audio from encoded bytes to
results: incremental decoding, feature chunks, batched model steps through
the scheduler. It is not safe to call concurrently with itself: each route
drives it from the one task that reads its connection (shutdown included).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from engine.audio import AudioError, UnsupportedAudioType
from engine.audiostream import StreamDecoder
from engine.bundle import InstalledModel, ModelBundle, find_models, load_bundle
from engine.customlm import CustomLM
from engine.endpoint import EndpointConfig
from engine.recognizer import Recognizer, Result
from engine.scheduler import BatchScheduler, SchedulerConfig
from engine.searchpool import SearchPool
from protocol.audio import parse_content_type
from protocol.errors import InvalidParameter, NotFoundError, UnsupportedMedia
from protocol.watson import Hypothesis, WordHypothesis
from protocol.wav import parse_wav_header
from server.config import RecognitionConfig
from server.metrics import Metrics

log = logging.getLogger("voxgate.models")

#: Most whole chunks one stream sends through one model step (a stream that fell behind catches up).
MAX_CHUNKS_PER_STEP = 4


class ModelNotLoaded(RuntimeError):
    """A version's network was used before :meth:`LoadedModels.ready` loaded it (a server bug)."""


class LoadedModel:
    """One base-model version: its manifest at once, its network, scheduler and search worker once loaded.

    Args:
        installed: the artifact on disk.
        scheduler: batching configuration.
        metrics: where its scheduler reports steps (None: nowhere).
        bundle, recognizer, batch_scheduler, search_pool: an already loaded version (custom
            acoustic models), instead of loading ``installed`` later.
    """

    def __init__(self, installed: InstalledModel, scheduler: SchedulerConfig | None = None,
                 metrics: Metrics | None = None, *, bundle: ModelBundle | None = None,
                 recognizer: Recognizer | None = None, batch_scheduler: BatchScheduler | None = None,
                 search_pool: SearchPool | None = None) -> None:
        self.installed = installed
        self._config = scheduler or SchedulerConfig()
        self._metrics = metrics
        self._lock = threading.Lock()
        self._bundle, self._recognizer, self._scheduler = bundle, recognizer, batch_scheduler
        self.search_pool = search_pool
        self._finals: ThreadPoolExecutor | None = None

    @property
    def version(self) -> str:
        """Version id."""
        return self.installed.version

    @property
    def name(self) -> str:
        """Base model name."""
        return self.installed.name

    @property
    def sample_rate_hz(self) -> int:
        """The version's sample rate."""
        return self.installed.sample_rate_hz

    @property
    def locale(self) -> str | None:
        """Its locale, from the manifest."""
        return self.installed.manifest.get("locale")

    @property
    def loaded(self) -> bool:
        """True once the network is loaded."""
        return self._bundle is not None

    def _need(self, value):
        if value is None:
            raise ModelNotLoaded(f"{self.version} is not loaded yet")
        return value

    @property
    def bundle(self) -> ModelBundle:
        """The loaded bundle (raises :class:`ModelNotLoaded` before :meth:`load`)."""
        return self._need(self._bundle)

    @property
    def recognizer(self) -> Recognizer:
        """Its recognizer."""
        return self._need(self._recognizer)

    @property
    def scheduler(self) -> BatchScheduler:
        """Its batch scheduler."""
        return self._need(self._scheduler)

    def load(self) -> None:
        """Load the network, start its search worker and wait until it is ready (seconds; blocking:
        call it at start or in a thread). Idempotent and safe from several threads.

        Raises:
            BundleError: a broken artifact.
        """
        with self._lock:
            if self._bundle is not None:
                return
            path = self.installed.path
            bundle = load_bundle(path)
            pool = SearchPool(path) if bundle.beam is not None else None
            # Whisper's decoder runs each final on a thread of its own, beside the batched steps.
            finals = ThreadPoolExecutor(1, thread_name_prefix=f"final-{self.version}") if bundle.whisper else None
            recognizer = Recognizer(bundle, search_pool=pool, final_executor=finals)
            observer = self._metrics.step_observer(self.version) if self._metrics is not None else None
            if pool is not None:
                pool.wait_ready()
            self.search_pool, self._finals = pool, finals
            self._recognizer = recognizer
            self._scheduler = BatchScheduler(recognizer, self._config, on_step=observer)
            self._bundle = bundle

    async def close(self) -> None:
        """Stop the scheduler, the search worker and the final-pass thread (if loaded)."""
        if self._scheduler is not None:
            await self._scheduler.close()
        if self.search_pool is not None:
            await asyncio.to_thread(self.search_pool.close)
        if self._finals is not None:
            self._finals.shutdown(wait=False, cancel_futures=True)


class LoadedModels:
    """Every installed base-model version; the newest of each model loaded at start, older ones on first use.

    Loading older versions lazily keeps the server's memory and start-up from growing with every
    release (each loaded version has its network and a beam-search worker process).

    Args:
        models_dir: folder of model artifacts.
        scheduler: batching configuration shared by all versions.
        metrics: where the schedulers report their steps.
        extra_dirs: more folders of artifacts (base versions registered into the data directory).
        eager: load every version at start (tests, benchmarks).

    Raises:
        RuntimeError: no model installed, or a version installed twice.
        BundleError: a newest version whose artifact is broken (a broken older one fails when first used).
    """

    def __init__(self, models_dir: Path, scheduler: SchedulerConfig, metrics: Metrics, *,
                 extra_dirs: tuple[Path, ...] = (), eager: bool = False) -> None:
        installed = [m for root in (models_dir, *extra_dirs) for m in find_models(root)]
        if not installed:
            raise RuntimeError(f"no model artifacts under {models_dir}")
        seen: dict[str, Path] = {}
        for m in installed:
            if m.version in seen:
                raise RuntimeError(f"model version {m.version} is installed twice: {seen[m.version]} and {m.path}")
            seen[m.version] = m.path
        self._dirs = (models_dir, *extra_dirs)
        self._scheduler, self._metrics = scheduler, metrics
        self._discovering = asyncio.Lock()
        self._refused: set[str] = set()  # new versions that did not load: not tried again until a restart
        self.versions: dict[str, LoadedModel] = {m.version: LoadedModel(m, scheduler, metrics) for m in installed}
        newest = {m.name: m.version for m in sorted(installed, key=lambda m: (m.name, m.created))}
        for loaded in self.versions.values():
            if eager or newest[loaded.name] == loaded.version:
                loaded.load()

    def _scan(self) -> list[InstalledModel]:
        found = {m.version: m for root in self._dirs for m in find_models(root)}
        return [m for m in found.values() if m.version not in self.versions and m.version not in self._refused]

    async def discover(self) -> list[str]:
        """Serve base versions installed since start, without a restart: artifacts that appeared in the
        models folders — the data directory's, where ``voxgate models register`` puts a release, so
        every replica sharing that directory (as they must, for custom models) finds it. The version
        that becomes the newest of its model is loaded (in a thread) before new sessions get it;
        sessions already open keep theirs; older ones load on first use. A new newest version that
        cannot load is logged and not served. Returns the new version ids.
        """
        async with self._discovering:
            new = sorted(await asyncio.to_thread(self._scan), key=lambda m: (m.created, m.version))
            newest = {m.name: m for m in new}  # oldest first: each name ends on its newest
            added = []
            for m in new:
                loaded = LoadedModel(m, self._scheduler, self._metrics)
                current = self.newest().get(m.name)
                if newest[m.name] is m and (current is None or
                                            (m.created, m.version) > (current.installed.created, current.version)):
                    try:
                        await asyncio.to_thread(loaded.load)
                    except Exception:  # noqa: BLE001 - a broken release must not take the server down
                        log.exception("base model version %s at %s does not load; not serving it (fix it and "
                                      "restart the server)", m.version, m.path)
                        self._refused.add(m.version)
                        continue
                self.versions[m.version] = loaded
                added.append(m.version)
                log.info("serving base model version %s from %s", m.version, m.path)
            return added

    async def ready(self, loaded: LoadedModel) -> LoadedModel:
        """``loaded``, with its network loaded (in a thread: the event loop keeps serving)."""
        if not loaded.loaded:
            await asyncio.to_thread(loaded.load)
        return loaded

    def newest(self) -> dict[str, LoadedModel]:
        """Model name -> its newest version (always loaded)."""
        out: dict[str, LoadedModel] = {}
        for loaded in sorted(self.versions.values(), key=lambda m: (m.installed.created, m.version)):
            out[loaded.name] = loaded
        return out

    def resolve(self, model: str, version: str | None = None) -> LoadedModel:
        """The version to use for a request (await :meth:`ready` on it before recognising).

        Args:
            model: base model name, e.g. ``en-US_BroadbandModel``.
            version: a version id of that model (``base_model_version``), or None for the newest.

        Raises:
            NotFoundError: an unknown model, or a version that is not installed for it.
        """
        candidates = sorted((v for v in self.versions.values() if v.name == model), key=lambda m: m.installed.created)
        if not candidates:
            known = ", ".join(sorted(self.newest()))
            raise NotFoundError(f"Model {model} not found. Available models: {known}")
        if version is None:
            return candidates[-1]
        for c in candidates:
            if c.version == version:
                return c
        available = ", ".join(c.version for c in candidates)
        raise NotFoundError(f"base_model_version {version} not found for {model}. Available versions: {available}")

    def for_rate(self, rate_hz: int, locale: str) -> LoadedModel:
        """The newest model for a locale whose rate fits audio at ``rate_hz`` (the highest rate not above it).

        Raises:
            NotFoundError: no model for that locale and rate.
        """
        fits = [v for v in self.versions.values() if v.locale == locale and v.sample_rate_hz <= rate_hz]
        if not fits:
            raise NotFoundError(f"no model for language {locale} at {rate_hz} Hz")
        return max(fits, key=lambda m: (m.sample_rate_hz, m.installed.created))

    async def close(self) -> None:
        """Stop every loaded version's scheduler, search worker and final-pass thread."""
        await asyncio.gather(*(v.close() for v in self.versions.values()))


def _audio_error(exc: AudioError) -> InvalidParameter | UnsupportedMedia:
    return UnsupportedMedia(str(exc)) if isinstance(exc, UnsupportedAudioType) else InvalidParameter(str(exc))


def hypothesis(result: Result) -> Hypothesis:
    """The wire form of an engine result."""
    words = tuple(WordHypothesis(w.word, w.start, w.end, w.confidence) for w in result.words)
    return Hypothesis(words, result.final, result.end_of_utterance, result.alternatives)


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

    Raises:
        UnsupportedMedia, InvalidParameter: an audio type or rate the model cannot take.

    Attributes:
        failed: set when the stepper failed; :attr:`error` holds why.
    """

    def __init__(self, model: LoadedModel, content_type: str | None, *, endpoint: EndpointConfig,
                 metrics: Metrics, on_results: ResultsHandler, settings: RecognitionConfig, route: str,
                 custom_lm: CustomLM | None = None, customization_weight: float = 0.3,
                 max_alternatives: int = 1) -> None:
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
                                                 whisper_beam=settings.whisper_beam(route))
        #: for the results' warnings
        self.warnings: tuple[str, ...] = () if not final_pass.ignored_custom_lm else (
            f"The custom language model is not applied to the final results of {model.bundle.version}: its final "
            "pass is Whisper's decoder, which does not take custom language models yet (set final_pass = "
            "\"ctc\" in the server's [recognition] to use the custom model in the CTC beam search instead).",)
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
