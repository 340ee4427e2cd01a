"""Training custom models: corpus analysis and audio processing, training jobs (language and acoustic).

Training runs in a worker process of its own (:mod:`server.runtime.subprocess_job`:
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
import logging

from engine.audio import AudioError
from engine.customlm import analyze_corpus, base_vocabulary
from server.catalog import ACOUSTIC, Catalog, DataDir
from server.runtime import audio_resources
from server.runtime.models import LoadedModels
from server.runtime.resolution import DEFAULT_CUSTOMIZATION_WEIGHT
from server.runtime.subprocess_job import JobFailed, run_job

#: the training functions, run by name in the worker process (the server process never imports them)
TRAIN_LANGUAGE = "server.runtime.training_jobs:train_language"
TRAIN_ACOUSTIC = "server.runtime.training_jobs:train_acoustic"

log = logging.getLogger("voxgate.customization")


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


class Training:
    """Background work on custom models: corpus analysis, audio processing and training jobs.

    Args:
        catalog: the catalog.
        models: the loaded base versions (for vocabularies and artifact paths).
    """

    def __init__(self, catalog: Catalog, models: LoadedModels) -> None:
        self.catalog = catalog
        self.data: DataDir = catalog.data
        self.models = models
        self._tasks: set[asyncio.Task] = set()
        self._jobs: dict[str, asyncio.Task] = {}
        self._vocabularies: dict[str, frozenset[str]] = {}

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
                work = (TRAIN_ACOUSTIC, str(loaded.installed.path), audio, helper, out, DEFAULT_CUSTOMIZATION_WEIGHT)
            else:
                words = [(w.word, list(w.sounds_like), w.display_as) for w in job.words]
                work = (TRAIN_LANGUAGE, str(loaded.installed.path), [str(self.data.path(p)) for p in job.corpora],
                        words, out)
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
                await asyncio.to_thread(self.data.remove, folder)
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

    async def close(self) -> None:
        """Stop background work; an interrupted job resumes at the next start."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
