"""Amazon Transcribe's JSON 1.1 responses (sans-I/O): language models, transcription jobs, the batch result.

Response bodies follow the output shapes of botocore's service model
``transcribe/2017-10-26/service-2.json``; the tests parse every one with botocore's own JSON
parser. Timestamps go out as epoch seconds (a JSON number with fractions), which is how JSON 1.1
carries a ``timestamp`` and how botocore reads it back into an aware ``datetime``. Absent optional
members are left out, never ``null``.

The batch result (the ``.json`` a finished job writes) is Transcribe's transcript file:
``jobName``, ``accountId``, ``status``, ``results.transcripts[].transcript`` and
``results.items[]``, each item ``{"id", "type": "pronunciation"|"punctuation", "alternatives":
[{"confidence", "content"}]}`` with ``start_time``/``end_time`` on pronunciations only; as in
Transcribe's files, times and confidences are strings.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from protocol.transcribe_api import BaseModelName, InputDataConfig, JobStatus, ModelStatus, StartTranscriptionJob
from protocol.watson import WordHypothesis

# Punctuation Transcribe reports as items of their own (type "punctuation").
_LEADING = re.compile(r"^[\"'(\[¿¡«“‘]+")
_TRAILING = re.compile(r"[.,?!;:\"')\]»”’…]+$")


def epoch_seconds(moment: datetime) -> float:
    """A JSON 1.1 timestamp: seconds since the epoch, with milliseconds.

    Raises:
        ValueError: a naive datetime (whose epoch would depend on the machine's zone).
    """
    if moment.tzinfo is None:
        raise ValueError(f"timestamps must be timezone-aware, got {moment!r}")
    return round(moment.timestamp(), 3)


@dataclass(frozen=True)
class LanguageModelInfo:
    """What a ``LanguageModel`` object says about one custom language model.

    Attributes:
        upgrade_available: a newer base release exists (Transcribe's ``UpgradeAvailability``;
            using it takes a new model).
        failure_reason: why training failed (only with ``FAILED``).
    """

    model_name: str
    language_code: str
    base_model_name: BaseModelName
    status: ModelStatus
    create_time: datetime
    last_modified_time: datetime
    input_data_config: InputDataConfig
    upgrade_available: bool = False
    failure_reason: str | None = None

    def serialize(self) -> dict[str, Any]:
        """The ``LanguageModel`` shape."""
        out: dict[str, Any] = {
            "ModelName": self.model_name, "CreateTime": epoch_seconds(self.create_time),
            "LastModifiedTime": epoch_seconds(self.last_modified_time), "LanguageCode": self.language_code,
            "BaseModelName": str(self.base_model_name), "ModelStatus": str(self.status),
            "UpgradeAvailability": self.upgrade_available, "InputDataConfig": self.input_data_config.serialize()}
        if self.status is ModelStatus.FAILED and self.failure_reason:
            out["FailureReason"] = self.failure_reason
        return out


def create_language_model_response(model: LanguageModelInfo) -> dict[str, Any]:
    """``CreateLanguageModelResponse``: the request echoed, with the new model's status."""
    return {"LanguageCode": model.language_code, "BaseModelName": str(model.base_model_name),
            "ModelName": model.model_name, "InputDataConfig": model.input_data_config.serialize(),
            "ModelStatus": str(model.status)}


def describe_language_model_response(model: LanguageModelInfo) -> dict[str, Any]:
    """``DescribeLanguageModelResponse``."""
    return {"LanguageModel": model.serialize()}


def list_language_models_response(models: Sequence[LanguageModelInfo], next_token: str | None) -> dict[str, Any]:
    """``ListLanguageModelsResponse``: one page (``NextToken`` only when more follow)."""
    out: dict[str, Any] = {"Models": [m.serialize() for m in models]}
    if next_token:
        out["NextToken"] = next_token
    return out


@dataclass(frozen=True)
class TranscriptionJobInfo:
    """What a ``TranscriptionJob`` object says about one job.

    Attributes:
        request: the validated ``StartTranscriptionJob`` it came from.
        media_sample_rate_hz, media_format: as given, or as found in the audio once read.
        transcript_file_uri: where the result is (COMPLETED only).
        start_time: when it started running; completion_time: when it finished (either way).
    """

    request: StartTranscriptionJob
    status: JobStatus
    creation_time: datetime
    start_time: datetime | None = None
    completion_time: datetime | None = None
    media_sample_rate_hz: int | None = None
    media_format: str | None = None
    transcript_file_uri: str | None = None
    failure_reason: str | None = None

    def _common(self) -> dict[str, Any]:
        r = self.request
        out: dict[str, Any] = {"TranscriptionJobName": r.transcription_job_name,
                               "TranscriptionJobStatus": str(self.status), "LanguageCode": r.language_code,
                               "CreationTime": epoch_seconds(self.creation_time)}
        if self.start_time is not None:
            out["StartTime"] = epoch_seconds(self.start_time)
        if self.completion_time is not None:
            out["CompletionTime"] = epoch_seconds(self.completion_time)
        if self.status is JobStatus.FAILED and self.failure_reason:
            out["FailureReason"] = self.failure_reason
        if r.language_model_name:
            out["ModelSettings"] = {"LanguageModelName": r.language_model_name}
        return out

    def serialize(self) -> dict[str, Any]:
        """The ``TranscriptionJob`` shape."""
        out = self._common()
        r = self.request
        out["Media"] = {"MediaFileUri": r.media_file_uri}
        rate = self.media_sample_rate_hz or r.media_sample_rate_hz
        if rate:
            out["MediaSampleRateHertz"] = rate
        media_format = self.media_format or r.media_format
        if media_format:
            out["MediaFormat"] = media_format
        if self.status is JobStatus.COMPLETED and self.transcript_file_uri:
            out["Transcript"] = {"TranscriptFileUri": self.transcript_file_uri}
        if r.tags:
            out["Tags"] = [t.serialize() for t in r.tags]
        return out

    def summary(self) -> dict[str, Any]:
        """The ``TranscriptionJobSummary`` shape (for lists)."""
        out = self._common()
        out["OutputLocationType"] = "CUSTOMER_BUCKET" if self.request.output_bucket_name else "SERVICE_BUCKET"
        return out


def transcription_job_response(job: TranscriptionJobInfo) -> dict[str, Any]:
    """``StartTranscriptionJobResponse`` and ``GetTranscriptionJobResponse``."""
    return {"TranscriptionJob": job.serialize()}


def list_transcription_jobs_response(jobs: Sequence[TranscriptionJobInfo], next_token: str | None,
                                     status: JobStatus | None = None) -> dict[str, Any]:
    """``ListTranscriptionJobsResponse``: one page, echoing the ``Status`` filter."""
    out: dict[str, Any] = {"TranscriptionJobSummaries": [j.summary() for j in jobs]}
    if status is not None:
        out["Status"] = str(status)
    if next_token:
        out["NextToken"] = next_token
    return out


def split_punctuation(word: str) -> tuple[list[str], str, list[str]]:
    """A recognised word as Transcribe itemises it: leading punctuation, the word, trailing punctuation.

    ``"(hello,"`` → ``(["("], "hello", [","])``; punctuation inside a word (``don't``, ``3.5``) stays.
    """
    lead = _LEADING.match(word)
    head = lead.group(0) if lead else ""
    rest = word[len(head):]
    trail = _TRAILING.search(rest)
    tail = trail.group(0) if trail else ""
    core = rest[: len(rest) - len(tail)]
    if not core:  # a word that is all punctuation
        return [], "", [word]
    return list(head), core, [tail] if tail else []


def _decimal(value: float) -> str:
    """A time or confidence as Transcribe's files write it: a string to three decimals at most, ``"0.04"``, ``"1.0"``."""
    text = f"{value:.3f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def batch_result(*, job_name: str, account_id: str, words: Sequence[WordHypothesis],
                 status: JobStatus = JobStatus.COMPLETED) -> dict[str, Any]:
    """The transcript file of a finished job, in Transcribe's shape (see the module docstring).

    Args:
        job_name: ``TranscriptionJobName``.
        account_id: the owner (voxgate: the credential's instance).
        words: the recognised words of the whole file, in order, times in seconds from its start.
    """
    items: list[dict[str, Any]] = []
    text = ""

    def punctuation(mark: str, *, attach: bool) -> None:
        nonlocal text
        items.append({"id": len(items), "type": "punctuation",
                      "alternatives": [{"confidence": "0.0", "content": mark}]})
        text += mark if attach else (" " if text else "") + mark

    for w in words:
        lead, core, trail = split_punctuation(w.word)
        for i, mark in enumerate(lead):
            punctuation(mark, attach=i > 0)
        if core:
            items.append({"id": len(items), "type": "pronunciation", "start_time": _decimal(w.start_s),
                          "end_time": _decimal(w.end_s),
                          "alternatives": [{"confidence": _decimal(w.confidence), "content": core}]})
            text += core if lead or not text else " " + core
        for mark in trail:
            punctuation(mark, attach=bool(text))
    return {"jobName": job_name, "accountId": account_id, "status": str(status),
            "results": {"transcripts": [{"transcript": text}], "items": items}}

