"""Custom models at run time: corpus analysis and audio processing, training jobs (language and
acoustic), the trained models recognition loads, and the resolution of a request's models.

Training runs in a worker process of its own (:mod:`server.subprocess_job`:
building the n-gram is CPU-bound Python, which in a thread would take the GIL
from live streams; a stop terminates it at once). A job is a row
whose ``job`` column is set; at start every such row is run again, so a job
interrupted by a crash or a restart resumes instead of staying ``training``
forever. The build writes into a fresh folder (:mod:`engine.customlm` renames
it into place when complete); the database points at it only after it is
whole, and folders no row points at are removed at start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from engine.acoustic import adapt_acoustic_model, load_adapted_bundle, pseudo_label
from engine.audio import AudioError, load_audio
from engine.bundle import load_bundle
from engine.customlm import CustomLM, CustomWord, analyze_corpus, base_vocabulary, build_custom_lm
from engine.recognizer import Recognizer
from engine.scheduler import BatchScheduler, SchedulerConfig
from protocol.watson import model_param
from server import audio_resources
from server.catalog import ACOUSTIC, LANGUAGE, Catalog, DataDir, resolve
from server.metrics import Metrics
from server.recognition import LoadedModel, LoadedModels
from server.subprocess_job import JobFailed, run_job

log = logging.getLogger("voxgate.customization")

#: Watson's default weight of a custom language model against the base model
DEFAULT_CUSTOMIZATION_WEIGHT = 0.3


def _train(bundle_path: str, corpus_paths: list[str], words: list[tuple], out_dir: str, *, progress) -> dict:
    """In the worker process: build a custom LM artifact."""
    bundle = load_bundle(Path(bundle_path))
    texts = [Path(p).read_text(encoding="utf-8") for p in corpus_paths]
    custom_words = [CustomWord(word, tuple(sounds_like), display_as) for word, sounds_like, display_as in words]
    return build_custom_lm(bundle, texts, custom_words, Path(out_dir), progress=progress)


def _train_acoustic(bundle_path: str, audio: list[tuple], helper: tuple | None, out_dir: str, *, progress) -> dict:
    """In the worker process: fine-tune a base version on the audio (transcripts given, or made by the base
    model with the helper language model)."""
    bundle = load_bundle(Path(bundle_path))
    custom_lm = CustomLM.load(Path(helper[0])) if helper else None
    weight = helper[1] if helper and helper[1] is not None else DEFAULT_CUSTOMIZATION_WEIGHT
    examples, labelled = [], 0
    for i, (path, content_type, transcript) in enumerate(audio):
        samples = load_audio(Path(path), bundle.sample_rate_hz, content_type)
        if not transcript:
            transcript = pseudo_label(bundle, samples, custom_lm=custom_lm, customization_weight=weight)
            labelled += 1
        examples.append((samples, transcript))
        progress(0.2 * (i + 1) / len(audio))  # reading and labelling: the first fifth
    summary = adapt_acoustic_model(bundle, examples, Path(out_dir), progress=lambda f: progress(0.2 + 0.8 * f))
    return {**summary, "pseudo_labelled": labelled}


class _Progress:
    """Writes a job's progress to the catalog, at most once per whole percent and never two writes at once."""

    def __init__(self, catalog: Catalog, custom_id: str) -> None:
        self._catalog = catalog
        self._custom_id = custom_id
        self._written = 0
        self._pending: asyncio.Task | None = None

    def report(self, fraction: float) -> None:
        percent = int(fraction * 100)
        if percent > self._written and (self._pending is None or self._pending.done()):
            self._written = percent
            self._pending = asyncio.get_running_loop().create_task(self._catalog.set_progress(self._custom_id, percent))

    async def flush(self) -> None:
        if self._pending is not None:
            await asyncio.gather(self._pending, return_exceptions=True)


class Customizations:
    """Background work on custom models, and the loaded custom LMs.

    Args:
        catalog: the catalog.
        models: the loaded base versions (for vocabularies and artifact paths).
        scheduler, metrics: batching and metrics of the custom acoustic models loaded for recognition.
    """

    def __init__(self, catalog: Catalog, models: LoadedModels, *, scheduler: SchedulerConfig | None = None,
                 metrics: Metrics | None = None) -> None:
        self.catalog = catalog
        self.data: DataDir = catalog.data
        self.models = models
        self._scheduler = scheduler or SchedulerConfig()
        self._metrics = metrics
        #: custom acoustic model versions loaded for recognition, by artifact folder
        self._acoustic: dict[str, LoadedModel] = {}
        self._tasks: set[asyncio.Task] = set()
        self._jobs: dict[str, asyncio.Task] = {}
        self._vocabularies: dict[str, frozenset[str]] = {}
        #: custom model id -> recognition requests using it now (delete answers 409 meanwhile)
        self.in_use: dict[str, int] = {}

    async def start(self) -> None:
        """Resume interrupted corpus analyses and jobs; remove folders of builds that never finished."""
        await asyncio.to_thread(self._remove_orphans, *await self.catalog.referenced_files())
        for custom_id, name in await self.catalog.pending_corpora():
            self.analyse_later(custom_id, name)
        for custom_id, name in await self.catalog.pending_audio():
            self.process_audio_later(custom_id, name)
        for custom_id in await self.catalog.queued_jobs():
            log.info("resuming the interrupted job of custom model %s", custom_id)
            self.train_later(custom_id)

    def _remove_orphans(self, model_ids: set[str], referenced: set[str]) -> None:
        """Remove what no record points at: folders of deleted models, unfinished builds, corpora and
        audio (uploads and extracted archives) of deleted resources, half-written temporary files."""
        root = self.data.path("customizations")
        if not root.is_dir():
            return
        for model_dir in root.iterdir():
            if model_dir.name not in model_ids:
                log.info("removing customizations/%s (its model was deleted)", model_dir.name)
                self.data.remove(f"customizations/{model_dir.name}")
                continue
            for folder in model_dir.iterdir():
                rel = f"customizations/{model_dir.name}/{folder.name}"
                entries = [f"{rel}/{e.name}" for e in folder.iterdir()] if folder.name in ("corpora", "audio") \
                    else [rel]
                for entry in entries:
                    if entry not in referenced:
                        log.info("removing %s (no catalog record points at it)", entry)
                        self.data.remove(entry)

    def vocabulary(self, base_version: str) -> frozenset[str]:
        """The base vocabulary of a version (words outside it are out of vocabulary)."""
        if base_version not in self._vocabularies:
            loaded = self.models.versions[base_version]
            loaded.load()  # corpus analysis runs in a thread: an older version may load here
            self._vocabularies[base_version] = base_vocabulary(loaded.bundle)
        return self._vocabularies[base_version]

    def _analyse(self, text: str, base_version: str) -> tuple[int, dict]:
        analysis = analyze_corpus(text, self.vocabulary(base_version))
        return analysis.total_words, analysis.oov_words

    def analyse_later(self, custom_id: str, name: str) -> None:
        """Analyse a stored corpus in the background."""
        async def run() -> None:
            await self.catalog.analyse_corpus(
                custom_id, name, lambda text, base: self._analyse(text, base))
        self._spawn(run(), f"analyse {custom_id}/{name}")

    def train_later(self, custom_id: str) -> None:
        """Run the model's queued job in the background (once at a time per model)."""
        if custom_id in self._jobs:
            return
        self._jobs[custom_id] = self._spawn(self._run_job(custom_id), f"train {custom_id}")

    async def cancel(self, owner: str, kind: str, custom_id: str) -> None:
        """Cancel a model's training or upgrade: the record first, then the worker process (terminated).

        Raises:
            NotFoundError, InvalidParameter: as :meth:`Catalog.cancel_job`.
        """
        await self.catalog.cancel_job(owner, kind, custom_id)
        task = self._jobs.get(custom_id)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run_job(self, custom_id: str) -> None:
        folder = None
        try:
            job = await self.catalog.training_input(custom_id)
            if job is None:
                return
            loaded = self.models.versions.get(job.base_version)
            if loaded is None:
                await self.catalog.fail_job(custom_id, f"base model version {job.base_version} is not installed")
                return
            folder = self.data.new_model_folder(custom_id, job.base_version)
            out = str(self.data.path(folder))
            if job.kind == ACOUSTIC:
                audio = [(str(self.data.path(p)), ct, text) for p, ct, text in job.audio]
                helper = (str(self.data.path(job.helper_lm[0])), job.helper_lm[1]) if job.helper_lm else None
                work = (_train_acoustic, str(loaded.installed.path), audio, helper, out)
            else:
                words = [(w.word, list(w.sounds_like), w.display_as) for w in job.words]
                work = (_train, str(loaded.installed.path), [str(self.data.path(p)) for p in job.corpora], words, out)
            progress = _Progress(self.catalog, custom_id)
            try:
                summary = await run_job(*work, on_progress=progress.report)
            except JobFailed as exc:
                log.warning("training custom model %s failed: %s", custom_id, exc)
                await self.catalog.fail_job(custom_id, f"training failed: {exc}")
                return
            finally:
                await progress.flush()
            await self.catalog.finish_job(custom_id, job.base_version, folder, summary)
            folder = None  # the catalog points at it now
            log.info("custom model %s trained on %s", custom_id, job.base_version)
        finally:
            # Not recorded (failed, cancelled, server stopping): the folder is not needed. A stopped
            # server's job is still queued in the catalog and runs again at the next start.
            if folder is not None:
                self.data.remove(folder)
            self._jobs.pop(custom_id, None)

    def process_audio_later(self, custom_id: str, name: str) -> None:
        """Validate, measure and unpack an audio resource in the background."""
        self._spawn(self._process_audio(custom_id, name), f"audio {custom_id}/{name}")

    async def _process_audio(self, custom_id: str, name: str) -> None:
        resource = await self.catalog.audio_resource(custom_id, name)
        if resource is None:
            return
        model = await self.catalog.model_by_id(custom_id)
        loaded = None if model is None else self.models.versions.get(model.base_version)
        rate = loaded.sample_rate_hz if loaded is not None else 8000
        rel_dir = self.data.audio_items(custom_id, name)
        # Watson's quota: the model's other valid audio counts against its 200 hours.
        used_s = 0.0 if model is None else sum(a.duration_s or 0.0 for a in model.audio
                                                if a.status == "ok" and a.name != name)
        try:
            data = await asyncio.to_thread(self.data.path(resource.path).read_bytes)
            found = await asyncio.to_thread(
                audio_resources.process, data, content_type=resource.content_type,
                contained_content_type=resource.contained_content_type, transcript=resource.transcript,
                min_rate_hz=rate, out_dir=self.data.path(rel_dir), rel_dir=rel_dir,
                max_seconds=audio_resources.MAX_MODEL_SECONDS - used_s)
        except (AudioError, OSError) as exc:
            await asyncio.to_thread(self.data.remove, rel_dir)  # what an archive left before it was refused
            await self.catalog.record_audio(custom_id, name, error=str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - never leave a resource being_processed forever
            log.exception("processing audio %s of %s failed", name, custom_id)
            await asyncio.to_thread(self.data.remove, rel_dir)
            await self.catalog.record_audio(custom_id, name, error=f"processing failed: {type(exc).__name__}")
            return
        recorded = await self.catalog.record_audio(custom_id, name, duration_s=found.duration_s,
                                                   details=found.details, items=found.items)
        if not recorded:  # deleted while it was processed (issue 13, defect 7: its files stayed for good)
            await asyncio.to_thread(self.data.remove, rel_dir)

    def _spawn(self, coro, name: str) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)

        def done(t: asyncio.Task) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("background task %s failed", name, exc_info=t.exception())
        task.add_done_callback(done)
        return task

    @contextlib.contextmanager
    def using(self, *custom_ids: str | None) -> Iterator[None]:
        """Count a recognition request as using its custom models while the block runs (delete answers 409)."""
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

    async def acoustic_model(self, artifact: str, base: LoadedModel, custom_id: str) -> LoadedModel:
        """A custom acoustic model version, loaded for recognition (once; it shares the base version's
        beam-search worker, since the lexicon and LM are the base's)."""
        loaded = self._acoustic.get(artifact)
        if loaded is None:
            bundle = await asyncio.to_thread(load_adapted_bundle, base.installed.path, self.data.path(artifact))
            recognizer = Recognizer(bundle, search_pool=base.search_pool)
            observer = self._metrics.step_observer(f"{bundle.version}+{custom_id}") if self._metrics else None
            loaded = self._acoustic.setdefault(artifact, LoadedModel(
                base.installed, bundle=bundle, recognizer=recognizer,
                batch_scheduler=BatchScheduler(recognizer, self._scheduler, on_step=observer)))
        return loaded

    def load(self, artifact: str) -> CustomLM:
        """A trained custom LM by its stored folder (cached)."""
        return _load(str(self.data.path(artifact)))

    async def close(self) -> None:
        """Stop background work; an interrupted job resumes at the next start."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        for loaded in self._acoustic.values():
            await loaded.scheduler.close()


@lru_cache(maxsize=64)
def _load(path: str) -> CustomLM:
    return CustomLM.load(Path(path))


@dataclass(frozen=True)
class Resolved:
    """The models one recognition request uses.

    Attributes:
        model: the base version (or the custom acoustic model's version of it), loaded.
        custom_lm: the custom language model's trained version, or None.
        language_id: its id, or None.
        acoustic_id: the custom acoustic model's id, or None.
        default_weight: the custom model's saved ``customization_weight`` (None: the engine's default).
        warnings: for the results.
    """

    model: LoadedModel
    custom_lm: CustomLM | None = None
    language_id: str | None = None
    default_weight: float | None = None
    warnings: tuple[str, ...] = ()
    acoustic_id: str | None = None

    def weight(self, requested: float | None) -> float:
        """The weight to use: the request's, else the model's saved one, else Watson's default 0.3."""
        if requested is not None:
            return requested
        return self.default_weight if self.default_weight is not None else DEFAULT_CUSTOMIZATION_WEIGHT

    def recognized_with(self) -> dict:
        """What the results report as used."""
        out = {"model": self.model.bundle.name, "base_model_version": self.model.bundle.version}
        if self.language_id:
            out["language_customization_id"] = self.language_id
        if self.acoustic_id:
            out["acoustic_customization_id"] = self.acoustic_id
        return out


async def resolve_request(customizations: Customizations, models: LoadedModels, owner: str, params: Mapping[str, str],
                          *, default_model: str, batch: bool = False) -> Resolved:
    """Resolve a request's ``model``, ``base_model_version`` and custom model ids (see
    :mod:`server.catalog.resolution`) against the catalog and the loaded versions.

    Raises:
        NotFoundError, InvalidParameter, ModelExpired: as :func:`server.catalog.resolution.resolve`.
    """
    catalog = customizations.catalog
    language_id = model_param(params, "language_customization_id", "customization_id")
    acoustic_id = params.get("acoustic_customization_id") or None
    language = acoustic = row = am_row = None
    if language_id:
        language, row = await catalog.custom_for_recognition(owner, LANGUAGE, language_id)
    if acoustic_id:
        acoustic, am_row = await catalog.custom_for_recognition(owner, ACOUSTIC, acoustic_id)
    bases = [b for b in await catalog.base_infos() if b.version in models.versions]
    resolution = resolve(bases, model=params.get("model") or None, default_model=default_model,
                         base_model_version=model_param(params, "base_model_version", "version"), language=language,
                         acoustic=acoustic, today=catalog.today(), batch=batch)
    loaded = await models.ready(models.versions[resolution.base_version])
    if resolution.acoustic is not None and am_row is not None:
        version = next(v for v in am_row.versions if v.base_version == resolution.base_version)
        loaded = await customizations.acoustic_model(version.artifact, loaded, am_row.id)
    if resolution.language is None or row is None:
        return Resolved(loaded, warnings=resolution.warnings, acoustic_id=resolution.acoustic)
    version = next(v for v in row.versions if v.base_version == resolution.base_version)
    custom_lm = await asyncio.to_thread(customizations.load, version.artifact)
    return Resolved(loaded, custom_lm, row.id, row.customization_weight, resolution.warnings, resolution.acoustic)
