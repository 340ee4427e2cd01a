"""Loaded base-model versions with their schedulers, and the custom models loaded for recognition.

:class:`LoadedModels` loads every installed version of every base model at
start (a broken artifact fails the start, not a request) and gives each
version its own :class:`~engine.scheduler.BatchScheduler`.
:class:`CustomModels` keeps the trained custom language models and custom
acoustic models that recognition requests use, loaded once and bounded in
number (least recently used out).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from engine.adapted import load_adapted_bundle, load_adapter
from engine.bundle import InstalledModel, ModelBundle, find_models, load_bundle
from engine.customlm import CustomLM
from engine.recognizer import Recognizer
from engine.scheduler import BatchScheduler, SchedulerConfig
from engine.searchpool import SearchPool
from engine.versions import release_order
from engine.whisper.lora import Adapter
from protocol.errors import NotFoundError
from server.catalog import DataDir
from server.runtime.metrics import Metrics

log = logging.getLogger("voxgate.models")


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
        adapter: a custom acoustic model of a Whisper-based version: the adapter its requests' finals
            apply (the rest, its scheduler included, is the base version's, shared).

    Attributes:
        adapter: as given.
    """

    def __init__(self, installed: InstalledModel, scheduler: SchedulerConfig | None = None,
                 metrics: Metrics | None = None, *, bundle: ModelBundle | None = None,
                 recognizer: Recognizer | None = None, batch_scheduler: BatchScheduler | None = None,
                 search_pool: SearchPool | None = None, adapter: Adapter | None = None) -> None:
        self.installed = installed
        self.adapter = adapter
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

    @property
    def owns_scheduler(self) -> bool:
        """False for a custom acoustic model's view of its Whisper-based version, which steps in the
        version's own scheduler (and must not close it)."""
        return self.adapter is None

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
        newest = self.newest()
        for loaded in self.versions.values():
            if eager or newest[loaded.name] is loaded:
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
            new = sorted(await asyncio.to_thread(self._scan), key=lambda m: release_order(m.created, m.version))
            newest = {m.name: m for m in new}  # oldest first: each name ends on its newest
            added = []
            for m in new:
                loaded = LoadedModel(m, self._scheduler, self._metrics)
                current = self.newest().get(m.name)
                if newest[m.name] is m and (current is None or
                                            release_order(m.created, m.version) > _order(current)):
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
        for loaded in sorted(self.versions.values(), key=_order):
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
        candidates = sorted((v for v in self.versions.values() if v.name == model), key=_order)
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
        return max(fits, key=lambda m: (m.sample_rate_hz, _order(m)))

    async def close(self) -> None:
        """Stop every loaded version's scheduler, search worker and final-pass thread."""
        await asyncio.gather(*(v.close() for v in self.versions.values()))


def _order(loaded: LoadedModel) -> tuple:
    return release_order(loaded.installed.created, loaded.version)


class CustomModels:
    """Trained custom models loaded for recognition, by their stored folder: language models (their
    n-gram and words) and acoustic models (of a Whisper-based version: the adapter of its final pass,
    everything else the base's, its scheduler included; of an older version: an adapted network with
    its own batch scheduler, sharing the base version's beam-search worker), and which custom models requests are using now (a delete
    answers 409 meanwhile). Each kind keeps at most ``max_loaded`` models: past that the least recently
    used one no request is using is dropped (an acoustic model's scheduler closed).

    Args:
        data: the data directory the folders are relative to.
        scheduler, metrics: batching and metrics of the acoustic models' schedulers.
        max_loaded: most models of each kind kept loaded.
    """

    def __init__(self, data: DataDir, *, scheduler: SchedulerConfig | None = None, metrics: Metrics | None = None,
                 max_loaded: int = 32) -> None:
        self._data = data
        self._scheduler = scheduler or SchedulerConfig()
        self._metrics = metrics
        self._max = max_loaded
        self._language: OrderedDict[str, CustomLM] = OrderedDict()
        self._acoustic: OrderedDict[str, tuple[LoadedModel, str]] = OrderedDict()
        #: custom model id -> recognition requests using it now
        self.in_use: dict[str, int] = {}
        self._lock = asyncio.Lock()
        self._closing: set[asyncio.Task] = set()

    async def language_model(self, artifact: str) -> CustomLM:
        """A trained custom LM (loaded in a thread the first time)."""
        custom_lm = self._language.get(artifact)
        if custom_lm is None:
            async with self._lock:
                custom_lm = self._language.get(artifact)
                if custom_lm is None:
                    custom_lm = await asyncio.to_thread(CustomLM.load, self._data.path(artifact))
                    self._language[artifact] = custom_lm
        self._language.move_to_end(artifact)
        while len(self._language) > self._max:
            self._language.popitem(last=False)
        return custom_lm

    async def acoustic_model(self, artifact: str, base: LoadedModel, custom_id: str) -> LoadedModel:
        """A custom acoustic model version of ``base`` (loaded in a thread the first time)."""
        entry = self._acoustic.get(artifact)
        if entry is None:
            async with self._lock:
                entry = self._acoustic.get(artifact)
                if entry is None:
                    if base.bundle.whisper is not None:
                        # only the final pass is adapted: the streams keep stepping in the base's batches
                        adapter = await asyncio.to_thread(load_adapter, base.bundle, self._data.path(artifact))
                        loaded = LoadedModel(base.installed, bundle=base.bundle, recognizer=base.recognizer,
                                             batch_scheduler=base.scheduler, search_pool=base.search_pool,
                                             adapter=adapter)
                    else:
                        bundle = await asyncio.to_thread(load_adapted_bundle, base.installed.path,
                                                         self._data.path(artifact))
                        recognizer = Recognizer(bundle, search_pool=base.search_pool)
                        observer = self._metrics.step_observer(f"{bundle.version}+{custom_id}") if self._metrics else None
                        loaded = LoadedModel(base.installed, bundle=bundle, recognizer=recognizer,
                                             batch_scheduler=BatchScheduler(recognizer, self._scheduler, on_step=observer))
                    entry = self._acoustic[artifact] = (loaded, custom_id)
        self._acoustic.move_to_end(artifact)
        self._evict_acoustic(keep=artifact)
        return entry[0]

    def _evict_acoustic(self, keep: str) -> None:
        idle = [a for a, (_, custom_id) in self._acoustic.items() if a != keep and not self.in_use.get(custom_id)]
        for artifact in idle[:max(0, len(self._acoustic) - self._max)]:
            dropped, _ = self._acoustic.pop(artifact)
            if not dropped.owns_scheduler:
                continue
            task = asyncio.get_running_loop().create_task(dropped.scheduler.close())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    @contextlib.contextmanager
    def using(self, *custom_ids: str | None) -> Iterator[None]:
        """Count a recognition request as using its custom models while the block runs."""
        ids = [i for i in custom_ids if i]
        for custom_id in ids:
            self.in_use[custom_id] = self.in_use.get(custom_id, 0) + 1
        try:
            yield
        finally:
            for custom_id in ids:
                self.in_use[custom_id] -= 1
                if not self.in_use[custom_id]:
                    del self.in_use[custom_id]

    async def close(self) -> None:
        """Stop the acoustic models' schedulers."""
        await asyncio.gather(*(m.scheduler.close() for m, _ in self._acoustic.values() if m.owns_scheduler), *self._closing,
                             return_exceptions=True)
        self._acoustic.clear()
        self._language.clear()
