"""Catalog operations on asynchronous recognition jobs (``/v1/recognitions``) and their callback URLs."""

from __future__ import annotations

import uuid

from protocol.errors import ConflictError, NotFoundError
from server.catalog import status as st
from server.catalog.operations import Operations
from server.catalog.records import Callback, Job
from server.catalog.status import JobStatus
from server.catalog.unit_of_work import UnitOfWork


class RecognitionJobs(Operations):
    """Recognition jobs: their audio, status and results; and the callback URLs that hear about them."""

    async def create_job(self, owner: str, params: dict, audio: bytes, user_token: str | None) -> Job:
        """Store a job's audio and record it as ``waiting``."""
        job_id = str(uuid.uuid4())
        now = self.clock()
        job = Job(id=job_id, owner=owner, status=JobStatus.WAITING, created=now, updated=now, params=params,
                  audio_path=self.data.job_audio(job_id), user_token=user_token)
        async with self._work() as uow:
            await uow.write_file(job.audio_path, audio)
            await uow.jobs.add(job)
        return job

    async def jobs(self, owner: str) -> list[Job]:
        """The owner's jobs, newest first."""
        async with self._work() as uow:
            return await uow.jobs.of(owner)

    @staticmethod
    async def _owned_job(uow: UnitOfWork, owner: str, job_id: str, *, lock: bool = False) -> Job:
        job = await uow.jobs.get(job_id, lock=lock)
        if job is None or job.owner != owner:
            raise NotFoundError(f"Invalid job id ({job_id}): no recognition job with that id for these credentials")
        return job

    async def job(self, owner: str, job_id: str) -> Job:
        """One job of the owner.

        Raises:
            NotFoundError: no such job, or another owner's.
        """
        async with self._work() as uow:
            return await self._owned_job(uow, owner, job_id)

    async def delete_job(self, owner: str, job_id: str) -> None:
        """Delete a job and its audio.

        Raises:
            NotFoundError: see :meth:`job`.
            ConflictError: it is processing.
        """
        async with self._work() as uow:
            job = await self._owned_job(uow, owner, job_id, lock=True)
            if job.status is JobStatus.PROCESSING:
                raise ConflictError(f"Job {job_id} is processing; delete it once it has completed or failed")
            await uow.jobs.delete(job_id)
            uow.remove_after_commit(job.audio_path)

    async def unfinished_jobs(self) -> list[str]:
        """Ids of jobs waiting or interrupted while processing, oldest first."""
        async with self._work() as uow:
            return await uow.jobs.unfinished()

    async def update_job(self, job_id: str, *, status: str, results: dict | None = None,
                         error: str | None = None) -> Job | None:
        """Move a job to ``status``; a finished job's audio is removed. None if the job is gone."""
        status = JobStatus(status)
        async with self._work() as uow:
            job = await uow.jobs.get(job_id, lock=True)
            if job is None:
                return None
            done = status in st.FINISHED_JOBS and job.audio_path is not None
            if done:
                uow.remove_after_commit(job.audio_path)
            return await uow.jobs.update(job_id, status=status, results=results, error=error, updated=self.clock(),
                                         **({"audio_path": None} if done else {}))

    # -- job callbacks ---------------------------------------------------------------------------

    async def register_callback(self, owner: str, url: str, secret: str | None) -> bool:
        """Record a verified callback URL; False if it was already registered (the secret is updated)."""
        async with self._work() as uow:
            known = await uow.callbacks.get(owner, url, lock=True)
            await uow.callbacks.put(Callback(owner, url, self.clock() if known is None else known.created, secret))
            return known is None

    async def unregister_callback(self, owner: str, url: str) -> None:
        """Forget a callback URL.

        Raises:
            NotFoundError: not registered by this owner.
        """
        async with self._work() as uow:
            if await uow.callbacks.get(owner, url) is None:
                raise NotFoundError(f"callback_url {url} is not registered for these credentials")
            await uow.callbacks.delete(owner, url)

    async def callback(self, owner: str, url: str) -> Callback | None:
        """A registered callback URL of the owner."""
        async with self._work() as uow:
            return await uow.callbacks.get(owner, url)
