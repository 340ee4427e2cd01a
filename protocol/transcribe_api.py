"""Amazon Transcribe's JSON 1.1 control plane (sans-I/O): operations, request validation, error bodies.

Requests are ``POST /`` with ``X-Amz-Target: Transcribe.<Operation>`` and a JSON body
(``Content-Type: application/x-amz-json-1.1``), signed with SigV4 (PROTOCOLS.md §2.6). Each
supported operation's input is one frozen dataclass with ``parse(body)``; validation follows the
constraints of botocore's service model ``transcribe/2017-10-26/service-2.json`` (lengths,
patterns, enums, ranges) and names the field, what was expected and what came. Members the model
has but this server does not implement are refused by name rather than silently ignored; members
the model does not have are refused as unknown.

Responses are built in :mod:`protocol.transcribe_responses`. Errors: :func:`error_response` maps
the error tree to Transcribe's ``{"__type": ..., "Message": ...}`` body and the HTTP status the
service model gives each error type; botocore's JSON parser reads ``__type`` (the part after
``#``, if any) and ``message`` or ``Message``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from protocol.errors import (AuthenticationError, ConflictError, ForbiddenError, InvalidParameter, LimitExceeded,
                             NotFoundError, ProtocolError, ShuttingDown, TooLarge, Timeout, UnsupportedMedia,
                             VoxgateError, public_message)

#: The JSON 1.1 content type of requests and responses.
CONTENT_TYPE = "application/x-amz-json-1.1"
TARGET_PREFIX = "Transcribe."


class Operation(StrEnum):
    """The operations this server implements (``X-Amz-Target: Transcribe.<value>``)."""

    CREATE_LANGUAGE_MODEL = "CreateLanguageModel"
    DESCRIBE_LANGUAGE_MODEL = "DescribeLanguageModel"
    LIST_LANGUAGE_MODELS = "ListLanguageModels"
    DELETE_LANGUAGE_MODEL = "DeleteLanguageModel"
    START_TRANSCRIPTION_JOB = "StartTranscriptionJob"
    GET_TRANSCRIPTION_JOB = "GetTranscriptionJob"
    LIST_TRANSCRIPTION_JOBS = "ListTranscriptionJobs"
    DELETE_TRANSCRIPTION_JOB = "DeleteTranscriptionJob"


class ErrorType(StrEnum):
    """Transcribe's error types (``__type``)."""

    BAD_REQUEST = "BadRequestException"
    CONFLICT = "ConflictException"
    NOT_FOUND = "NotFoundException"
    LIMIT_EXCEEDED = "LimitExceededException"
    INTERNAL_FAILURE = "InternalFailureException"
    UNKNOWN_OPERATION = "UnknownOperationException"
    SERIALIZATION = "SerializationException"


#: HTTP status of each error type: the service model's ``error.httpStatusCode``; the last two are
#: the common errors of every JSON 1.1 service.
ERROR_STATUS = {ErrorType.BAD_REQUEST: 400, ErrorType.CONFLICT: 409, ErrorType.NOT_FOUND: 404,
                ErrorType.LIMIT_EXCEEDED: 429, ErrorType.INTERNAL_FAILURE: 500, ErrorType.UNKNOWN_OPERATION: 400,
                ErrorType.SERIALIZATION: 400}

#: The error types the service model declares per operation: a type an operation does not declare
#: is reported as BadRequestException (botocore would otherwise hand the client an unmodelled error).
OPERATION_ERRORS: dict[Operation, frozenset[ErrorType]] = {
    op: frozenset({ErrorType.BAD_REQUEST, ErrorType.LIMIT_EXCEEDED, ErrorType.INTERNAL_FAILURE} | extra)
    for op, extra in {
        Operation.CREATE_LANGUAGE_MODEL: {ErrorType.CONFLICT},
        Operation.DESCRIBE_LANGUAGE_MODEL: {ErrorType.NOT_FOUND},
        Operation.LIST_LANGUAGE_MODELS: set(),
        Operation.DELETE_LANGUAGE_MODEL: set(),
        Operation.START_TRANSCRIPTION_JOB: {ErrorType.CONFLICT},
        Operation.GET_TRANSCRIPTION_JOB: {ErrorType.NOT_FOUND},
        Operation.LIST_TRANSCRIPTION_JOBS: set(),
        Operation.DELETE_TRANSCRIPTION_JOB: set(),
    }.items()}


class UnknownOperation(ProtocolError):
    """An ``X-Amz-Target`` that names no operation this server implements."""


class SerializationError(ProtocolError):
    """A body that is not a JSON object."""


class ModelStatus(StrEnum):
    """A custom language model's ``ModelStatus``."""

    IN_PROGRESS = "IN_PROGRESS"
    FAILED = "FAILED"
    COMPLETED = "COMPLETED"


class JobStatus(StrEnum):
    """A transcription job's ``TranscriptionJobStatus``."""

    QUEUED = "QUEUED"
    IN_PROGRESS = "IN_PROGRESS"
    FAILED = "FAILED"
    COMPLETED = "COMPLETED"


class BaseModelName(StrEnum):
    """The base model a custom language model is built on: NarrowBand below 16 kHz, WideBand from 16 kHz."""

    NARROW_BAND = "NarrowBand"
    WIDE_BAND = "WideBand"


#: ``CLMLanguageCode``: the languages custom language models exist for.
CLM_LANGUAGE_CODES = ("en-US", "hi-IN", "es-US", "en-GB", "en-AU", "de-DE", "ja-JP")
#: ``MediaFormat``.
MEDIA_FORMATS = ("mp3", "mp4", "wav", "flac", "ogg", "amr", "webm", "m4a")
#: What ``MaxResults`` is when a list request leaves it out (Transcribe's documented default).
DEFAULT_MAX_RESULTS = 5

# Patterns of service-2.json, anchored at both ends (the model anchors some only at the start).
_NAME = re.compile(r"[0-9a-zA-Z._-]+")  # ModelName, TranscriptionJobName: 1-200, case-sensitive, no spaces
_ROLE_ARN = re.compile(r"arn:(aws|aws-cn|aws-us-gov|aws-iso-?[a-z]?):iam::[0-9]{0,63}:role/[A-Za-z0-9:_/+=,@.-]{0,1024}")
_OUTPUT_BUCKET = re.compile(r"[a-z0-9][.\-a-z0-9]{1,61}[a-z0-9]")
_OUTPUT_KEY = re.compile(r"[a-zA-Z0-9\-_.!*'()/]{1,1024}")


def parse_target(target: str | None) -> Operation:
    """The operation an ``X-Amz-Target`` header names.

    Raises:
        UnknownOperation: a missing header, another service's prefix, or an operation not implemented.
    """
    if not target or not target.startswith(TARGET_PREFIX):
        raise UnknownOperation(f"X-Amz-Target must be {TARGET_PREFIX}<Operation>, got {target!r}")
    name = target.removeprefix(TARGET_PREFIX)
    try:
        return Operation(name)
    except ValueError:
        raise UnknownOperation(f"the operation {name!r} is not supported by this server; supported: "
                               f"{', '.join(op.value for op in Operation)}") from None


def parse_body(data: bytes) -> dict[str, Any]:
    """A request body as a JSON object (an empty body is ``{}``, as botocore sends for no parameters).

    Raises:
        SerializationError: not UTF-8 JSON, or not an object.
    """
    if not data.strip():
        return {}
    try:
        body = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SerializationError(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise SerializationError(f"the request body must be a JSON object, got {type(body).__name__}")
    return body


@dataclass(frozen=True)
class ErrorResponse:
    """An error as the JSON 1.1 dialect sends it: status, headers and ``{"__type", "Message"}``."""

    status: int
    error_type: ErrorType | str
    message: str

    @property
    def body(self) -> dict[str, str]:
        """The JSON body."""
        return {"__type": str(self.error_type), "Message": self.message}

    @property
    def headers(self) -> dict[str, str]:
        """Headers to send with it (``x-amzn-errortype`` is what rest-json parsers read; harmless here)."""
        return {"Content-Type": CONTENT_TYPE, "x-amzn-errortype": str(self.error_type)}

    def serialize(self) -> bytes:
        """The encoded body."""
        return json.dumps(self.body).encode()


def error_response(error: BaseException, operation: Operation | None = None) -> ErrorResponse:
    """Transcribe's error for any exception (unexpected ones: InternalFailureException, no internals).

    Args:
        error: what a handler raised.
        operation: the operation, when known; a type it does not declare becomes BadRequestException.
    """
    message = public_message(error)
    if isinstance(error, (AuthenticationError, ForbiddenError, ShuttingDown)):
        # Common errors of every AWS service (UnrecognizedClientException, AccessDeniedException, ...).
        return ErrorResponse(error.http_status, error.aws_type, message)
    kind = _error_type(error)
    if operation is not None and kind not in OPERATION_ERRORS[operation] \
            and kind not in (ErrorType.UNKNOWN_OPERATION, ErrorType.SERIALIZATION):
        kind = ErrorType.BAD_REQUEST
    return ErrorResponse(ERROR_STATUS[kind], kind, message)


def _error_type(error: BaseException) -> ErrorType:
    """The Transcribe error type of one exception of the error tree."""
    if isinstance(error, UnknownOperation):
        return ErrorType.UNKNOWN_OPERATION
    if isinstance(error, SerializationError):
        return ErrorType.SERIALIZATION
    if isinstance(error, NotFoundError):
        return ErrorType.NOT_FOUND
    if isinstance(error, ConflictError):
        return ErrorType.CONFLICT
    if isinstance(error, LimitExceeded):
        return ErrorType.LIMIT_EXCEEDED
    if isinstance(error, (ProtocolError, TooLarge, UnsupportedMedia, Timeout)):
        return ErrorType.BAD_REQUEST
    return ErrorType.INTERNAL_FAILURE


# -- field readers: each names the field, what was expected and what came ---------------------------------


def _fields(body: Mapping[str, Any], where: str, supported: tuple[str, ...], unsupported: tuple[str, ...] = ()) -> None:
    """Refuse members this server does not implement (by name) and members the shape does not have."""
    if not isinstance(body, Mapping):
        raise InvalidParameter(f"{where} must be an object, got {type(body).__name__}")
    for name in body:
        if name in unsupported:
            raise InvalidParameter(f"{where}.{name} is not supported by this server")
        if name not in supported:
            raise InvalidParameter(f"{where} has an unknown member {name!r}; expected {', '.join(supported)}")


def _string(body: Mapping[str, Any], name: str, *, required: bool = False, min_len: int = 1, max_len: int,
            pattern: re.Pattern[str] | None = None, rule: str = "") -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise InvalidParameter(f"{name} is required")
        return None
    if not isinstance(value, str):
        raise InvalidParameter(f"{name} must be a string, got {value!r}")
    if not min_len <= len(value) <= max_len:
        raise InvalidParameter(f"{name} must be {min_len} to {max_len} characters long, got {len(value)}")
    if pattern is not None and not pattern.fullmatch(value):
        raise InvalidParameter(f"{name} must be {rule or 'of the form ' + pattern.pattern}, got {value!r}")
    return value


def _name(body: Mapping[str, Any], name: str, *, required: bool = True) -> str | None:
    return _string(body, name, required=required, max_len=200, pattern=_NAME,
                   rule="letters, digits, '.', '_' and '-' only (case-sensitive, no spaces)")


def _choice(body: Mapping[str, Any], name: str, choices: tuple[str, ...], *, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise InvalidParameter(f"{name} is required; one of {', '.join(choices)}")
        return None
    if value not in choices:
        raise InvalidParameter(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _integer(body: Mapping[str, Any], name: str, *, low: int, high: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise InvalidParameter(f"{name} must be an integer from {low} to {high}, got {value!r}")
    return value


def _s3_uri(body: Mapping[str, Any], name: str, *, required: bool) -> str | None:
    value = _string(body, name, required=required, max_len=2000)
    if value is not None and (not value.startswith("s3://") or len(value) <= len("s3://")):
        raise InvalidParameter(f"{name} must be an s3://bucket/prefix URI (this server reads S3 only), got {value!r}")
    return value


def page_token(kind: str, offset: int) -> str:
    """The ``NextToken`` of a listing of ``kind`` (``"offset"``: language models, ``"jobs"``: jobs) that goes
    on at ``offset``: opaque to the client, read back by :func:`page_offset`."""
    return base64.urlsafe_b64encode(f"{kind}:{offset}".encode()).decode()


def page_offset(kind: str, token: str | None) -> int:
    """The offset a ``NextToken`` of :func:`page_token` stands for (0 without one).

    Raises:
        InvalidParameter: a token this server did not write for a listing of ``kind``.
    """
    if token is None:
        return 0
    try:
        found, _, value = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
        if found == kind and value.isdigit():
            return int(value)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise InvalidParameter(f"NextToken {token!r} is not a token this server gave out")


def _paging(body: Mapping[str, Any]) -> tuple[str | None, int]:
    token = _string(body, "NextToken", max_len=8192)
    limit = _integer(body, "MaxResults", low=1, high=100)
    return token, DEFAULT_MAX_RESULTS if limit is None else limit


@dataclass(frozen=True)
class Tag:
    """A ``{"Key", "Value"}`` pair attached to a resource."""

    key: str
    value: str

    def serialize(self) -> dict[str, str]:
        """The JSON shape."""
        return {"Key": self.key, "Value": self.value}


def _tags(body: Mapping[str, Any]) -> tuple[Tag, ...]:
    raw = body.get("Tags")
    if raw is None:
        return ()
    if not isinstance(raw, list) or not 1 <= len(raw) <= 200:
        raise InvalidParameter(f"Tags must be a list of 1 to 200 {{Key, Value}} objects, got {raw!r}")
    tags = []
    for i, item in enumerate(raw):
        _fields(item, f"Tags[{i}]", ("Key", "Value"))
        key = _string(item, "Key", required=True, max_len=128)
        value = _string(item, "Value", min_len=0, max_len=256) or ""
        if key.lower().startswith("aws:"):
            raise InvalidParameter(f"Tags[{i}].Key must not start with 'aws:' (reserved), got {key!r}")
        tags.append(Tag(key, value))
    if len({t.key for t in tags}) != len(tags):
        raise InvalidParameter("Tags must not repeat a Key")
    return tuple(tags)


# -- custom language models ----------------------------------------------------------------------------


@dataclass(frozen=True)
class InputDataConfig:
    """Where a custom language model's text is: training (``S3Uri``), tuning (optional), and the role."""

    s3_uri: str
    data_access_role_arn: str
    tuning_data_s3_uri: str | None = None

    @classmethod
    def parse(cls, body: Any) -> InputDataConfig:
        """Validate ``InputDataConfig``.

        Raises:
            InvalidParameter: a missing or malformed member.
        """
        if body is None:
            raise InvalidParameter("InputDataConfig is required: {S3Uri, DataAccessRoleArn, TuningDataS3Uri?}")
        _fields(body, "InputDataConfig", ("S3Uri", "TuningDataS3Uri", "DataAccessRoleArn"))
        s3_uri = _s3_uri(body, "S3Uri", required=True)
        tuning = _s3_uri(body, "TuningDataS3Uri", required=False)
        role = _string(body, "DataAccessRoleArn", required=True, min_len=20, max_len=2048, pattern=_ROLE_ARN,
                       rule="an IAM role ARN, arn:aws:iam::<account>:role/<name>")
        return cls(s3_uri, role, tuning)

    def serialize(self) -> dict[str, str]:
        """The JSON shape."""
        out = {"S3Uri": self.s3_uri, "DataAccessRoleArn": self.data_access_role_arn}
        if self.tuning_data_s3_uri:
            out["TuningDataS3Uri"] = self.tuning_data_s3_uri
        return out


@dataclass(frozen=True)
class CreateLanguageModel:
    """``CreateLanguageModel``: build a custom language model on a base model from text in S3."""

    language_code: str
    base_model_name: BaseModelName
    model_name: str
    input_data_config: InputDataConfig
    tags: tuple[Tag, ...] = ()

    @classmethod
    def parse(cls, body: Mapping[str, Any]) -> CreateLanguageModel:
        """Validate the request.

        Raises:
            InvalidParameter: a missing, malformed, unknown or unsupported member.
        """
        _fields(body, "CreateLanguageModel",
                ("LanguageCode", "BaseModelName", "ModelName", "InputDataConfig", "Tags"),
                ("EncryptionConfiguration",))
        language = _choice(body, "LanguageCode", CLM_LANGUAGE_CODES, required=True)
        base = _choice(body, "BaseModelName", tuple(BaseModelName), required=True)
        name = _name(body, "ModelName")
        return cls(language, BaseModelName(base), name, InputDataConfig.parse(body.get("InputDataConfig")),
                   _tags(body))


@dataclass(frozen=True)
class DescribeLanguageModel:
    """``DescribeLanguageModel``: one custom language model by name."""

    model_name: str

    @classmethod
    def parse(cls, body: Mapping[str, Any]) -> DescribeLanguageModel:
        """Validate the request. Raises InvalidParameter."""
        _fields(body, "DescribeLanguageModel", ("ModelName",))
        return cls(_name(body, "ModelName"))


@dataclass(frozen=True)
class DeleteLanguageModel:
    """``DeleteLanguageModel``: remove a custom language model by name."""

    model_name: str

    @classmethod
    def parse(cls, body: Mapping[str, Any]) -> DeleteLanguageModel:
        """Validate the request. Raises InvalidParameter."""
        _fields(body, "DeleteLanguageModel", ("ModelName",))
        return cls(_name(body, "ModelName"))


@dataclass(frozen=True)
class ListLanguageModels:
    """``ListLanguageModels``: newest first, filtered by status and by a case-insensitive name part, paged."""

    status_equals: ModelStatus | None = None
    name_contains: str | None = None
    next_token: str | None = None
    max_results: int = DEFAULT_MAX_RESULTS

    @classmethod
    def parse(cls, body: Mapping[str, Any]) -> ListLanguageModels:
        """Validate the request. Raises InvalidParameter."""
        _fields(body, "ListLanguageModels", ("StatusEquals", "NameContains", "NextToken", "MaxResults"))
        status = _choice(body, "StatusEquals", tuple(ModelStatus))
        name = _name(body, "NameContains", required=False)
        token, limit = _paging(body)
        return cls(ModelStatus(status) if status else None, name, token, limit)

    def matches(self, name: str, status: ModelStatus) -> bool:
        """Whether a model with this name and status passes the filters."""
        return (self.status_equals is None or status == self.status_equals) and \
            (self.name_contains is None or self.name_contains.lower() in name.lower())


# -- transcription jobs --------------------------------------------------------------------------------


_JOB_UNSUPPORTED = ("OutputEncryptionKMSKeyId", "KMSEncryptionContext", "Settings", "JobExecutionSettings",
                    "ContentRedaction", "IdentifyLanguage", "IdentifyMultipleLanguages", "LanguageOptions",
                    "Subtitles", "LanguageIdSettings", "ToxicityDetection")


@dataclass(frozen=True)
class StartTranscriptionJob:
    """``StartTranscriptionJob``: transcribe one audio file in S3, optionally with a custom language model.

    Attributes:
        output_bucket_name: where the result JSON goes (None: the server keeps it and serves its URI).
        output_key: the result's key in that bucket; ending in ``/``, a folder for ``<job name>.json``.
    """

    transcription_job_name: str
    media_file_uri: str
    language_code: str
    media_format: str | None = None
    media_sample_rate_hz: int | None = None
    language_model_name: str | None = None
    output_bucket_name: str | None = None
    output_key: str | None = None
    tags: tuple[Tag, ...] = ()

    @classmethod
    def parse(cls, body: Mapping[str, Any]) -> StartTranscriptionJob:
        """Validate the request.

        Raises:
            InvalidParameter: a missing, malformed, unknown or unsupported member.
        """
        _fields(body, "StartTranscriptionJob",
                ("TranscriptionJobName", "LanguageCode", "MediaSampleRateHertz", "MediaFormat", "Media",
                 "OutputBucketName", "OutputKey", "ModelSettings", "Tags"), _JOB_UNSUPPORTED)
        name = _name(body, "TranscriptionJobName")
        media = body.get("Media")
        if media is None:
            raise InvalidParameter("Media is required: {MediaFileUri}")
        _fields(media, "Media", ("MediaFileUri",), ("RedactedMediaFileUri",))
        uri = _s3_uri(media, "MediaFileUri", required=True)
        if body.get("LanguageCode") is None:
            raise InvalidParameter("LanguageCode is required (IdentifyLanguage is not supported by this server)")
        language = _string(body, "LanguageCode", max_len=10, pattern=re.compile(r"[a-z]{2,3}-[A-Z]{2}"),
                           rule="a language code like en-US")
        settings = body.get("ModelSettings")
        model = None
        if settings is not None:
            _fields(settings, "ModelSettings", ("LanguageModelName",))
            model = _name(settings, "LanguageModelName", required=False)
        bucket = _string(body, "OutputBucketName", max_len=64, pattern=_OUTPUT_BUCKET,
                         rule="an S3 bucket name (3-63 characters: a-z, 0-9, '.', '-')")
        key = _string(body, "OutputKey", max_len=1024, pattern=_OUTPUT_KEY,
                      rule="an S3 key of letters, digits and -_.!*'()/")
        if key is not None and bucket is None:
            raise InvalidParameter("OutputKey needs OutputBucketName")
        return cls(name, uri, language, _choice(body, "MediaFormat", MEDIA_FORMATS),
                   _integer(body, "MediaSampleRateHertz", low=8000, high=48000), model, bucket, key, _tags(body))

    def output_object_key(self) -> str:
        """The key of the result JSON in ``output_bucket_name`` (Transcribe's rule for ``OutputKey``)."""
        if not self.output_key:
            return f"{self.transcription_job_name}.json"
        if self.output_key.endswith("/"):
            return f"{self.output_key}{self.transcription_job_name}.json"
        return self.output_key


@dataclass(frozen=True)
class GetTranscriptionJob:
    """``GetTranscriptionJob``: one job by name."""

    transcription_job_name: str

    @classmethod
    def parse(cls, body: Mapping[str, Any]) -> GetTranscriptionJob:
        """Validate the request. Raises InvalidParameter."""
        _fields(body, "GetTranscriptionJob", ("TranscriptionJobName",))
        return cls(_name(body, "TranscriptionJobName"))


@dataclass(frozen=True)
class DeleteTranscriptionJob:
    """``DeleteTranscriptionJob``: remove a job (and the result the server keeps) by name."""

    transcription_job_name: str

    @classmethod
    def parse(cls, body: Mapping[str, Any]) -> DeleteTranscriptionJob:
        """Validate the request. Raises InvalidParameter."""
        _fields(body, "DeleteTranscriptionJob", ("TranscriptionJobName",))
        return cls(_name(body, "TranscriptionJobName"))


@dataclass(frozen=True)
class ListTranscriptionJobs:
    """``ListTranscriptionJobs``: newest first, filtered by status and a case-insensitive name part, paged."""

    status: JobStatus | None = None
    job_name_contains: str | None = None
    next_token: str | None = None
    max_results: int = DEFAULT_MAX_RESULTS

    @classmethod
    def parse(cls, body: Mapping[str, Any]) -> ListTranscriptionJobs:
        """Validate the request. Raises InvalidParameter."""
        _fields(body, "ListTranscriptionJobs", ("Status", "JobNameContains", "NextToken", "MaxResults"))
        status = _choice(body, "Status", tuple(JobStatus))
        name = _name(body, "JobNameContains", required=False)
        token, limit = _paging(body)
        return cls(JobStatus(status) if status else None, name, token, limit)

    def matches(self, name: str, status: JobStatus) -> bool:
        """Whether a job with this name and status passes the filters."""
        return (self.status is None or status == self.status) and \
            (self.job_name_contains is None or self.job_name_contains.lower() in name.lower())


#: Each operation's request type.
REQUESTS: dict[Operation, type] = {
    Operation.CREATE_LANGUAGE_MODEL: CreateLanguageModel, Operation.DESCRIBE_LANGUAGE_MODEL: DescribeLanguageModel,
    Operation.LIST_LANGUAGE_MODELS: ListLanguageModels, Operation.DELETE_LANGUAGE_MODEL: DeleteLanguageModel,
    Operation.START_TRANSCRIPTION_JOB: StartTranscriptionJob, Operation.GET_TRANSCRIPTION_JOB: GetTranscriptionJob,
    Operation.LIST_TRANSCRIPTION_JOBS: ListTranscriptionJobs,
    Operation.DELETE_TRANSCRIPTION_JOB: DeleteTranscriptionJob,
}


def parse_request(target: str | None, data: bytes) -> tuple[Operation, Any]:
    """The operation and its validated request, from the ``X-Amz-Target`` header and the body.

    Raises:
        UnknownOperation, SerializationError, InvalidParameter: see :func:`parse_target`, :func:`parse_body`
            and each request's ``parse``.
    """
    operation = parse_target(target)
    return operation, REQUESTS[operation].parse(parse_body(data))
