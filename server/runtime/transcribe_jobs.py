"""Amazon Transcribe batch jobs: ``StartTranscriptionJob`` / Get / List / Delete over the shared services.

A job reads its media from S3 (``Media.MediaFileUri``) into a temporary file, recognises it with
:class:`~server.runtime.recognition.Recognitions` (the ``job`` route's final pass) on the models the
:class:`~server.runtime.resolution.Resolver` picks as a *batch* request — so a job naming an expired
CLM is refused at once with ``BadRequestException`` naming the model and its deadline, and fails
the same way if the model expired while it waited — and writes Transcribe's transcript file
(:func:`protocol.transcribe_responses.batch_result`) to ``OutputBucketName``/``OutputKey``.

The base model: the CLM's, when ``ModelSettings.LanguageModelName`` names one; otherwise the newest
model of the ``LanguageCode`` whose rate fits the audio (``MediaSampleRateHertz``, else the WAV
header's rate, else 16 kHz).

Limits of this server: ``OutputBucketName`` is required (there is no service-managed bucket), and
jobs are kept in memory — a restart forgets them (a job interrupted by it is lost; its result, if
written, stays in the bucket).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from engine.recognizer import Result
from protocol.errors import ConflictError, InvalidParameter, NotFoundError, VoxgateError, public_message
from protocol.transcribe_api import JobStatus, ListTranscriptionJobs, StartTranscriptionJob, page_offset, page_token
from protocol.transcribe_responses import TranscriptionJobInfo, batch_result
from protocol.wav import parse_wav_header
from server.catalog.resolution import ModelExpired
from server.catalog import Catalog
from server.runtime.models import CustomModels
from server.runtime.recognition import Recognitions, hypothesis
from server.runtime.resolution import Resolved, Resolver
from server.runtime.s3text import S3Location
from server.runtime.transcribe_models import TranscribeModels

log = logging.getLogger("voxgate.transcribe")

#: Jobs recognised at once.
CONCURRENT_JOBS = 2
#: Most bytes of one job's media (Transcribe's quota: 2 GB).
MAX_MEDIA_BYTES = 2 * 1024 ** 3
READ_BYTES = 64 * 1024
#: ``MediaFormat`` → the content type the decoder gets (None: detect the container).
CONTENT_TYPES = {"wav": None, "flac": "audio/flac", "ogg": "audio/ogg", "mp3": "audio/mp3", "webm": "audio/webm"}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class _Job:
    """One job: its current :class:`TranscriptionJobInfo` and the task running it."""

    owner: str
    info: TranscriptionJobInfo
    task: asyncio.Task | None = None


class TranscribeJobs:
    """Transcribe's batch jobs (see the module docstring).

    Args:
        catalog: the catalog (its data directory holds the media while a job runs).
        models: the CLMs (a job's ``LanguageModelName`` → the catalog's custom model).
        resolve: resolves a job's models as a batch request.
        recognitions: makes the recognitions.
        custom: counts the custom models a running job uses (they are not deleted meanwhile).
        s3_client: a boto3 S3 client.
    """

    def __init__(self, catalog: Catalog, models: TranscribeModels, resolve: Resolver, recognitions: Recognitions,
                 custom: CustomModels, s3_client: Any) -> None:
        self.catalog = catalog
        self.models = models
        self.resolve = resolve
        self.recognitions = recognitions
        self.custom = custom
        self.s3 = s3_client
        self._jobs: dict[tuple[str, str], _Job] = {}
        self._slots = asyncio.Semaphore(CONCURRENT_JOBS)

    async def start(self, owner: str, request: StartTranscriptionJob) -> TranscriptionJobInfo:
        """``StartTranscriptionJob``: checked now (names, models), run in the background.

        Raises:
            ConflictError: the owner has a job of that name.
            InvalidParameter: no ``OutputBucketName``, an unknown CLM, or an expired one (named, with its deadline).
        """
        key = (owner, request.transcription_job_name)
        if key in self._jobs:
            raise ConflictError(f"The requested job name {request.transcription_job_name} already exists; use "
                                "another name or delete the job")
        if request.output_bucket_name is None:
            raise InvalidParameter("OutputBucketName is required on this server (it keeps no results of its own)")
        S3Location.parse(request.media_file_uri)
        if request.language_model_name:
            await self._resolve(owner, request, None)  # an unknown or expired CLM fails the request now
        job = self._jobs[key] = _Job(owner, TranscriptionJobInfo(request, JobStatus.QUEUED, _now()))
        job.task = asyncio.get_running_loop().create_task(self._run(job), name=f"transcribe job {key[1]}")
        return job.info

    async def get(self, owner: str, name: str) -> TranscriptionJobInfo:
        """``GetTranscriptionJob``.

        Raises:
            NotFoundError: no such job for these credentials.
        """
        return self._job(owner, name).info

    async def list(self, owner: str, request: ListTranscriptionJobs) -> tuple[list[TranscriptionJobInfo], str | None]:
        """``ListTranscriptionJobs``: newest first, filtered, one page and the next page's token."""
        offset = page_offset("jobs", request.next_token)
        found = sorted((j.info for (o, _n), j in self._jobs.items() if o == owner
                        and request.matches(j.info.request.transcription_job_name, j.info.status)),
                       key=lambda i: i.creation_time, reverse=True)
        more = offset + request.max_results < len(found)
        return found[offset:offset + request.max_results], page_token("jobs", offset + request.max_results) if more else None

    async def delete(self, owner: str, name: str) -> None:
        """``DeleteTranscriptionJob``: a running job stops (a result already written stays in its bucket).

        Raises:
            NotFoundError: no such job.
        """
        job = self._job(owner, name)
        del self._jobs[(owner, name)]
        if job.task is not None and not job.task.done():
            job.task.cancel()
            await asyncio.gather(job.task, return_exceptions=True)

    async def close(self) -> None:
        """Stop running jobs."""
        tasks = [j.task for j in self._jobs.values() if j.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _job(self, owner: str, name: str) -> _Job:
        job = self._jobs.get((owner, name))
        if job is None:
            raise NotFoundError(f"The requested job {name} couldn't be found; check its name")
        return job

    async def _resolve(self, owner: str, request: StartTranscriptionJob, rate_hz: int | None) -> Resolved:
        name = request.language_model_name
        if name:
            try:
                custom_id = await self.models.model_id(owner, name)
            except NotFoundError:
                raise InvalidParameter(f"The language model {name} couldn't be found; check its name") from None
            try:
                return await self.resolve(owner, {"language_customization_id": custom_id}, batch=True)
            except ModelExpired as exc:
                raise ModelExpired(f"The language model {name} can no longer be used: {exc}") from None
        models = self.resolve.models
        try:
            model = models.for_rate(rate_hz or 16000, request.language_code)
        except NotFoundError as exc:
            raise InvalidParameter(f"LanguageCode {request.language_code}: {exc}") from None
        return await self.resolve(owner, {"model": model.bundle.name}, batch=True)

    async def _run(self, job: _Job) -> None:
        async with self._slots:
            if self._jobs.get((job.owner, job.info.request.transcription_job_name)) is not job:
                return  # deleted while it waited
            job.info = replace(job.info, status=JobStatus.IN_PROGRESS, start_time=_now())
            try:
                uri, rate = await self._transcribe(job)
            except asyncio.CancelledError:
                raise
            except VoxgateError as exc:
                job.info = replace(job.info, status=JobStatus.FAILED, completion_time=_now(),
                                   failure_reason=public_message(exc))
            except Exception as exc:  # noqa: BLE001 - the job fails with a generic reason; the log has the detail
                log.exception("transcription job %s failed", job.info.request.transcription_job_name)
                job.info = replace(job.info, status=JobStatus.FAILED, completion_time=_now(),
                                   failure_reason=f"internal error while transcribing ({type(exc).__name__})")
            else:
                job.info = replace(job.info, status=JobStatus.COMPLETED, completion_time=_now(),
                                   transcript_file_uri=uri, media_sample_rate_hz=rate)

    async def _transcribe(self, job: _Job) -> tuple[str, int | None]:
        request = job.info.request
        with tempfile.TemporaryDirectory(dir=self.catalog.data.path("."), prefix=".transcribe-job-") as work:
            media = Path(work) / "media"
            await asyncio.to_thread(self._download, request.media_file_uri, media)
            rate = request.media_sample_rate_hz or await asyncio.to_thread(self._wav_rate, media)
            resolved = await self._resolve(job.owner, request, rate)
            words = await self._recognise(resolved, media, CONTENT_TYPES.get(request.media_format or "wav"))
        result = batch_result(job_name=request.transcription_job_name, account_id=job.owner, words=words)
        key = request.output_object_key()
        await asyncio.to_thread(self._upload, request.output_bucket_name, key, json.dumps(result).encode())
        return f"s3://{request.output_bucket_name}/{key}", rate

    async def _recognise(self, resolved: Resolved, media: Path, content_type: str | None) -> list:
        finals: list[Result] = []

        async def keep(results: list[Result]) -> None:
            finals.extend(r for r in results if r.final)

        recognition = self.recognitions.open(resolved, content_type, on_results=keep, route="job")
        try:
            with self.custom.using(resolved.language_id), media.open("rb") as fh:
                while chunk := await asyncio.to_thread(fh.read, READ_BYTES):
                    recognition.feed(chunk)
                await recognition.finish()
        finally:
            recognition.close()
        return [w for r in finals for w in hypothesis(r).words]

    @staticmethod
    def _wav_rate(media: Path) -> int | None:
        with media.open("rb") as fh:
            header = parse_wav_header(fh.read(64 * 1024))
        return header.sample_rate_hz if header is not None else None

    def _download(self, uri: str, destination: Path) -> None:
        location = S3Location.parse(uri)
        try:
            head = self.s3.head_object(Bucket=location.bucket, Key=location.prefix)
            if head["ContentLength"] > MAX_MEDIA_BYTES:
                raise InvalidParameter(f"The media {uri} holds {head['ContentLength']} bytes; at most "
                                       f"{MAX_MEDIA_BYTES} are accepted")
            self.s3.download_file(location.bucket, location.prefix, str(destination))
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            raise InvalidParameter(f"The media {uri} could not be read from S3 ({code or exc})") from None
        except BotoCoreError as exc:
            raise VoxgateError(f"S3 could not be reached to read {uri}: {exc}") from None

    def _upload(self, bucket: str, key: str, body: bytes) -> None:
        try:
            self.s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            raise InvalidParameter(f"The result could not be written to s3://{bucket}/{key} ({code or exc})") from None
        except BotoCoreError as exc:
            raise VoxgateError(f"S3 could not be reached to write s3://{bucket}/{key}: {exc}") from None
