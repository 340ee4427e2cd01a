"""Transcribe's JSON 1.1 control plane: requests validated as the service model constrains them, and every
response and error body read back by botocore's own JSON parser for that operation (no network)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import botocore.parsers
import botocore.session
import pytest
from botocore.validate import ParamValidator

from protocol.errors import (AuthenticationError, ConflictError, InvalidParameter, LimitExceeded, NotFoundError,
                             TooLarge, VoxgateError)
from protocol.transcribe_api import (DEFAULT_MAX_RESULTS, page_offset, page_token, ERROR_STATUS, BaseModelName, CreateLanguageModel,
                                     DeleteLanguageModel, DescribeLanguageModel, ErrorType, GetTranscriptionJob,
                                     InputDataConfig, JobStatus, ListLanguageModels, ListTranscriptionJobs,
                                     ModelStatus, OPERATION_ERRORS, Operation, SerializationError, StartTranscriptionJob,
                                     UnknownOperation, error_response, parse_request)
from protocol.transcribe_responses import (LanguageModelInfo, TranscriptionJobInfo, batch_result,
                                           create_language_model_response, describe_language_model_response,
                                           epoch_seconds, list_language_models_response,
                                           list_transcription_jobs_response, split_punctuation,
                                           transcription_job_response)
from protocol.watson import WordHypothesis

ROLE = "arn:aws:iam::123456789012:role/voxgate-data"
CREATED = datetime(2026, 7, 14, 12, 32, 58, 761000, tzinfo=timezone.utc)
CREATE = {"LanguageCode": "en-US", "BaseModelName": "NarrowBand", "ModelName": "ivr-prompts_v1.2",
          "InputDataConfig": {"S3Uri": "s3://voxgate-data/train/", "TuningDataS3Uri": "s3://voxgate-data/tune/",
                              "DataAccessRoleArn": ROLE},
          "Tags": [{"Key": "team", "Value": "ivr"}]}
JOB = {"TranscriptionJobName": "call-0001", "Media": {"MediaFileUri": "s3://voxgate-media/call-0001.wav"},
       "MediaFormat": "wav", "MediaSampleRateHertz": 8000, "LanguageCode": "en-US",
       "ModelSettings": {"LanguageModelName": "ivr-prompts_v1.2"}, "OutputBucketName": "voxgate-results",
       "OutputKey": "calls/"}


@pytest.fixture(scope="module")
def model():
    """botocore's Transcribe service model, as installed."""
    return botocore.session.get_session().get_service_model("transcribe")


def _parse(model, operation: str, body: dict, status: int = 200) -> dict:
    """What a boto3 client returns for this body: botocore's parser for the operation's output shape."""
    assert model.resolved_protocol == "json"  # the model lists CBOR first; botocore picks JSON 1.1
    parser = botocore.parsers.create_parser("json")
    shape = model.operation_model(operation).output_shape
    return parser.parse({"status_code": status, "headers": {}, "body": json.dumps(body).encode()}, shape)


def _request(operation: Operation, body: dict):
    return parse_request(f"Transcribe.{operation.value}", json.dumps(body).encode())[1]


def test_botocore_accepts_the_requests_this_module_accepts(model) -> None:
    # The fixtures themselves are what botocore's client-side validation lets through.
    for operation, body in ((Operation.CREATE_LANGUAGE_MODEL, CREATE), (Operation.START_TRANSCRIPTION_JOB, JOB)):
        report = ParamValidator().validate(body, model.operation_model(operation.value).input_shape)
        assert not report.has_errors(), report.generate_report()


def test_create_language_model() -> None:
    request = _request(Operation.CREATE_LANGUAGE_MODEL, CREATE)
    assert request == CreateLanguageModel(
        "en-US", BaseModelName.NARROW_BAND, "ivr-prompts_v1.2",
        InputDataConfig("s3://voxgate-data/train/", ROLE, "s3://voxgate-data/tune/"), request.tags)
    assert [(t.key, t.value) for t in request.tags] == [("team", "ivr")]


@pytest.mark.parametrize(("change", "message"), [
    ({"ModelName": None}, "ModelName is required"),
    ({"ModelName": ""}, "ModelName must be 1 to 200 characters long, got 0"),
    ({"ModelName": "x" * 201}, "ModelName must be 1 to 200 characters long, got 201"),
    ({"ModelName": "has space"}, "ModelName must be letters, digits, '.', '_' and '-' only"),
    ({"ModelName": "ünïcode"}, "ModelName must be letters, digits"),
    ({"ModelName": 7}, "ModelName must be a string, got 7"),
    ({"BaseModelName": "Broadband"}, "BaseModelName must be one of NarrowBand, WideBand, got 'Broadband'"),
    ({"BaseModelName": None}, "BaseModelName is required; one of NarrowBand, WideBand"),
    ({"LanguageCode": "fr-FR"}, "LanguageCode must be one of en-US, hi-IN"),
    ({"InputDataConfig": None}, "InputDataConfig is required"),
    ({"InputDataConfig": {"S3Uri": "s3://b/t/"}}, "DataAccessRoleArn is required"),
    ({"InputDataConfig": {"S3Uri": "https://b/t/", "DataAccessRoleArn": ROLE}}, "S3Uri must be an s3://bucket/prefix URI"),
    ({"InputDataConfig": {"S3Uri": "s3://b/t/", "DataAccessRoleArn": "arn:aws:iam::1:user/someone"}},
     "DataAccessRoleArn must be an IAM role ARN"),
    ({"InputDataConfig": {"S3Uri": "s3://b/t/", "DataAccessRoleArn": ROLE, "Extra": 1}},
     "InputDataConfig has an unknown member 'Extra'"),
    ({"EncryptionConfiguration": {"KMSKeyId": "k"}}, "CreateLanguageModel.EncryptionConfiguration is not supported"),
    ({"Bogus": 1}, "CreateLanguageModel has an unknown member 'Bogus'"),
    ({"Tags": []}, "Tags must be a list of 1 to 200"),
    ({"Tags": [{"Key": "aws:owner", "Value": "x"}]}, "Tags[0].Key must not start with 'aws:'"),
    ({"Tags": [{"Key": "a"}, {"Key": "a", "Value": "b"}]}, "Tags must not repeat a Key"),
    ({"Tags": [{"Value": "b"}]}, "Key is required"),
])
def test_create_language_model_refusals(change, message) -> None:
    body = {k: v for k, v in {**CREATE, **change}.items() if v is not None}
    with pytest.raises(InvalidParameter) as caught:
        _request(Operation.CREATE_LANGUAGE_MODEL, body)
    assert message in caught.value.message


def test_name_requests() -> None:
    assert _request(Operation.DESCRIBE_LANGUAGE_MODEL, {"ModelName": "m"}) == DescribeLanguageModel("m")
    assert _request(Operation.DELETE_LANGUAGE_MODEL, {"ModelName": "m"}) == DeleteLanguageModel("m")
    assert _request(Operation.GET_TRANSCRIPTION_JOB, {"TranscriptionJobName": "j"}) == GetTranscriptionJob("j")
    with pytest.raises(InvalidParameter, match="ModelName is required"):
        _request(Operation.DESCRIBE_LANGUAGE_MODEL, {})
    with pytest.raises(InvalidParameter, match="TranscriptionJobName must be letters"):
        _request(Operation.DELETE_TRANSCRIPTION_JOB, {"TranscriptionJobName": "a/b"})


def test_list_requests_and_their_filters() -> None:
    assert _request(Operation.LIST_LANGUAGE_MODELS, {}) == ListLanguageModels(max_results=DEFAULT_MAX_RESULTS)
    listing = _request(Operation.LIST_LANGUAGE_MODELS,
                       {"StatusEquals": "COMPLETED", "NameContains": "IVR", "MaxResults": 100, "NextToken": "t"})
    assert listing == ListLanguageModels(ModelStatus.COMPLETED, "IVR", "t", 100)
    assert listing.matches("my-ivr-model", ModelStatus.COMPLETED)
    assert not listing.matches("my-ivr-model", ModelStatus.FAILED) and not listing.matches("other", ModelStatus.COMPLETED)
    jobs = _request(Operation.LIST_TRANSCRIPTION_JOBS, {"Status": "QUEUED", "JobNameContains": "Call"})
    assert jobs == ListTranscriptionJobs(JobStatus.QUEUED, "Call", None, DEFAULT_MAX_RESULTS)
    assert jobs.matches("call-0001", JobStatus.QUEUED)
    for body, message in (({"MaxResults": 0}, "MaxResults must be an integer from 1 to 100, got 0"),
                          ({"MaxResults": 101}, "got 101"), ({"MaxResults": True}, "got True"),
                          ({"StatusEquals": "DONE"}, "StatusEquals must be one of IN_PROGRESS, FAILED, COMPLETED"),
                          ({"NextToken": ""}, "NextToken must be 1 to 8192 characters")):
        with pytest.raises(InvalidParameter, match=message):
            _request(Operation.LIST_LANGUAGE_MODELS, body)


def test_start_transcription_job() -> None:
    request = _request(Operation.START_TRANSCRIPTION_JOB, JOB)
    assert request == StartTranscriptionJob("call-0001", "s3://voxgate-media/call-0001.wav", "en-US", "wav", 8000,
                                            "ivr-prompts_v1.2", "voxgate-results", "calls/")
    assert request.output_object_key() == "calls/call-0001.json"
    minimal = _request(Operation.START_TRANSCRIPTION_JOB, {"TranscriptionJobName": "j", "LanguageCode": "en-US",
                                                           "Media": {"MediaFileUri": "s3://m/a.flac"}})
    assert (minimal.media_format, minimal.language_model_name, minimal.output_bucket_name) == (None, None, None)
    assert minimal.output_object_key() == "j.json"
    named = StartTranscriptionJob("j", "s3://m/a", "en-US", output_bucket_name="out", output_key="x/result.json")
    assert named.output_object_key() == "x/result.json"


@pytest.mark.parametrize(("change", "message"), [
    ({"Media": None}, "Media is required"),
    ({"Media": {}}, "MediaFileUri is required"),
    ({"Media": {"MediaFileUri": "https://example.com/a.wav"}}, "MediaFileUri must be an s3://bucket/prefix URI"),
    ({"LanguageCode": None}, "LanguageCode is required (IdentifyLanguage is not supported"),
    ({"MediaFormat": "aiff"}, "MediaFormat must be one of mp3, mp4, wav"),
    ({"MediaSampleRateHertz": 7999}, "MediaSampleRateHertz must be an integer from 8000 to 48000"),
    ({"MediaSampleRateHertz": "8000"}, "MediaSampleRateHertz must be an integer"),
    ({"ModelSettings": {"LanguageModelName": "bad name"}}, "LanguageModelName must be letters"),
    ({"ModelSettings": {"VocabularyName": "v"}}, "ModelSettings has an unknown member 'VocabularyName'"),
    ({"OutputBucketName": "Bad_Bucket"}, "OutputBucketName must be an S3 bucket name"),
    ({"OutputBucketName": None}, "OutputKey needs OutputBucketName"),
    ({"OutputKey": "a key"}, "OutputKey must be an S3 key"),
    ({"Settings": {"ShowSpeakerLabels": True}}, "StartTranscriptionJob.Settings is not supported by this server"),
    ({"IdentifyLanguage": True}, "IdentifyLanguage is not supported"),
    ({"TranscriptionJobName": None}, "TranscriptionJobName is required"),
])
def test_start_transcription_job_refusals(change, message) -> None:
    body = {k: v for k, v in {**JOB, **change}.items() if v is not None}
    with pytest.raises(InvalidParameter) as caught:
        _request(Operation.START_TRANSCRIPTION_JOB, body)
    assert message in caught.value.message


def test_targets_and_bodies() -> None:
    assert parse_request("Transcribe.ListLanguageModels", b"")[0] is Operation.LIST_LANGUAGE_MODELS
    for target in (None, "", "transcribe.ListLanguageModels", "Transcribe.", "Transcribe.StartMedicalScribeJob"):
        with pytest.raises(UnknownOperation):
            parse_request(target, b"{}")
    for body in (b"{", b"[1]", b"\xff"):
        with pytest.raises(SerializationError):
            parse_request("Transcribe.ListLanguageModels", body)


def _model_info(status: ModelStatus = ModelStatus.COMPLETED, **extra) -> LanguageModelInfo:
    request = _request(Operation.CREATE_LANGUAGE_MODEL, CREATE)
    return LanguageModelInfo(request.model_name, request.language_code, request.base_model_name, status, CREATED,
                             CREATED + timedelta(minutes=3, milliseconds=250), request.input_data_config, **extra)


def test_language_model_responses_read_by_botocore(model) -> None:
    info = _model_info(upgrade_available=True)
    created = _parse(model, "CreateLanguageModel", create_language_model_response(_model_info(ModelStatus.IN_PROGRESS)))
    assert created["ModelStatus"] == "IN_PROGRESS" and created["BaseModelName"] == "NarrowBand"
    assert created["InputDataConfig"] == CREATE["InputDataConfig"]
    described = _parse(model, "DescribeLanguageModel", describe_language_model_response(info))["LanguageModel"]
    assert described["ModelName"] == "ivr-prompts_v1.2" and described["ModelStatus"] == "COMPLETED"
    assert described["UpgradeAvailability"] is True and "FailureReason" not in described
    # botocore turns the epoch seconds back into the same instant, milliseconds included.
    assert described["CreateTime"] == CREATED
    assert described["LastModifiedTime"] - described["CreateTime"] == timedelta(minutes=3, milliseconds=250)
    failed = _model_info(ModelStatus.FAILED, failure_reason="the object 'train/x.bin' is not UTF-8 text")
    listed = _parse(model, "ListLanguageModels", list_language_models_response([info, failed], "page-2"))
    assert [m["ModelStatus"] for m in listed["Models"]] == ["COMPLETED", "FAILED"]
    assert listed["Models"][1]["FailureReason"] == "the object 'train/x.bin' is not UTF-8 text"
    assert listed["NextToken"] == "page-2"
    assert "NextToken" not in _parse(model, "ListLanguageModels", list_language_models_response([], None))


def test_transcription_job_responses_read_by_botocore(model) -> None:
    request = _request(Operation.START_TRANSCRIPTION_JOB, JOB)
    queued = TranscriptionJobInfo(request, JobStatus.QUEUED, CREATED)
    started = _parse(model, "StartTranscriptionJob", transcription_job_response(queued))["TranscriptionJob"]
    assert started["TranscriptionJobStatus"] == "QUEUED" and started["CreationTime"] == CREATED
    assert started["Media"] == {"MediaFileUri": "s3://voxgate-media/call-0001.wav"}
    assert started["ModelSettings"] == {"LanguageModelName": "ivr-prompts_v1.2"}
    assert "Transcript" not in started and "CompletionTime" not in started
    done = TranscriptionJobInfo(request, JobStatus.COMPLETED, CREATED, CREATED + timedelta(seconds=1),
                                CREATED + timedelta(seconds=9), transcript_file_uri="s3://voxgate-results/calls/call-0001.json")
    got = _parse(model, "GetTranscriptionJob", transcription_job_response(done))["TranscriptionJob"]
    assert got["Transcript"] == {"TranscriptFileUri": "s3://voxgate-results/calls/call-0001.json"}
    assert got["CompletionTime"] - got["StartTime"] == timedelta(seconds=8)
    assert (got["MediaSampleRateHertz"], got["MediaFormat"]) == (8000, "wav")
    failed = TranscriptionJobInfo(request, JobStatus.FAILED, CREATED,
                                  failure_reason="The language model ivr-prompts_v1.2 expired on 2028-07-15")
    listed = _parse(model, "ListTranscriptionJobs",
                    list_transcription_jobs_response([done, failed], "next", JobStatus.FAILED))
    summaries = listed["TranscriptionJobSummaries"]
    assert [s["TranscriptionJobStatus"] for s in summaries] == ["COMPLETED", "FAILED"]
    assert summaries[0]["OutputLocationType"] == "CUSTOMER_BUCKET"
    assert summaries[1]["FailureReason"].startswith("The language model ivr-prompts_v1.2 expired")
    assert listed["Status"] == "FAILED" and listed["NextToken"] == "next"


def test_every_modelled_error_type_and_status(model) -> None:
    # Our table agrees with the service model's error shapes.
    for kind in (ErrorType.BAD_REQUEST, ErrorType.CONFLICT, ErrorType.NOT_FOUND, ErrorType.LIMIT_EXCEEDED,
                 ErrorType.INTERNAL_FAILURE):
        assert model.shape_for(kind.value).metadata["error"]["httpStatusCode"] == ERROR_STATUS[kind]
    for operation in Operation:
        declared = {s.name for s in model.operation_model(operation.value).error_shapes}
        assert {k.value for k in OPERATION_ERRORS[operation]} == declared, operation


@pytest.mark.parametrize(("error", "operation", "kind", "status"), [
    (InvalidParameter("bad"), Operation.CREATE_LANGUAGE_MODEL, "BadRequestException", 400),
    (ConflictError("exists"), Operation.CREATE_LANGUAGE_MODEL, "ConflictException", 409),
    (NotFoundError("no such model"), Operation.DESCRIBE_LANGUAGE_MODEL, "NotFoundException", 404),
    # DeleteLanguageModel declares no NotFoundException: Transcribe says BadRequestException.
    (NotFoundError("no such model"), Operation.DELETE_LANGUAGE_MODEL, "BadRequestException", 400),
    (ConflictError("still training"), Operation.DELETE_LANGUAGE_MODEL, "BadRequestException", 400),
    (LimitExceeded("busy"), Operation.LIST_LANGUAGE_MODELS, "LimitExceededException", 429),
    (TooLarge("over 2 GB"), Operation.CREATE_LANGUAGE_MODEL, "BadRequestException", 400),
    (VoxgateError("store down"), Operation.GET_TRANSCRIPTION_JOB, "InternalFailureException", 500),
    (RuntimeError("secret internals"), None, "InternalFailureException", 500),
    (UnknownOperation("nope"), None, "UnknownOperationException", 400),
    (AuthenticationError("bad signature"), Operation.LIST_LANGUAGE_MODELS, "UnrecognizedClientException", 401),
])
def test_error_bodies_read_by_botocore(model, error, operation, kind, status) -> None:
    response = error_response(error, operation)
    assert response.status == status and response.headers["x-amzn-errortype"] == kind
    parsed = _parse(model, (operation or Operation.LIST_LANGUAGE_MODELS).value, json.loads(response.serialize()),
                    status=response.status)
    assert parsed["Error"]["Code"] == kind
    assert parsed["Error"]["Message"] == (error.message if isinstance(error, VoxgateError)
                                          else "Internal error: the server could not process the request.")


def test_the_batch_result_in_transcribes_shape() -> None:
    words = [WordHypothesis("Hello,", 0.04, 0.35, 0.999), WordHypothesis("press", 0.5, 0.8, 0.91),
             WordHypothesis("one.", 0.8, 1.0, 0.875)]
    result = batch_result(job_name="call-0001", account_id="acme", words=words)
    assert result["jobName"] == "call-0001" and result["accountId"] == "acme" and result["status"] == "COMPLETED"
    assert result["results"]["transcripts"] == [{"transcript": "Hello, press one."}]
    items = result["results"]["items"]
    assert items[0] == {"id": 0, "type": "pronunciation", "start_time": "0.04", "end_time": "0.35",
                        "alternatives": [{"confidence": "0.999", "content": "Hello"}]}
    assert items[1] == {"id": 1, "type": "punctuation", "alternatives": [{"confidence": "0.0", "content": ","}]}
    assert [(i["type"], i["alternatives"][0]["content"]) for i in items[2:]] == \
        [("pronunciation", "press"), ("pronunciation", "one"), ("punctuation", ".")]
    assert items[3]["end_time"] == "1.0" and all("start_time" not in i for i in items if i["type"] == "punctuation")
    assert json.loads(json.dumps(result)) == result
    assert batch_result(job_name="j", account_id="a", words=[])["results"] == {"transcripts": [{"transcript": ""}],
                                                                              "items": []}


def test_punctuation_is_split_off_words() -> None:
    assert split_punctuation("(hello,") == (["("], "hello", [","])
    assert split_punctuation("don't") == ([], "don't", [])
    assert split_punctuation("3.5") == ([], "3.5", [])
    assert split_punctuation("...") == ([], "", ["..."])


def test_timestamps_must_be_aware() -> None:
    assert epoch_seconds(datetime(1970, 1, 1, 0, 0, 1, 500000, tzinfo=timezone.utc)) == 1.5
    with pytest.raises(ValueError, match="timezone-aware"):
        epoch_seconds(datetime(2026, 1, 1))


def test_page_tokens() -> None:
    assert page_offset("offset", None) == 0
    assert page_offset("offset", page_token("offset", 15)) == 15
    for bad in ("nope", page_token("offset", 3)[:-2] + "!!", "b2Zmc2V0Oi0x"):  # the last: offset:-1
        with pytest.raises(InvalidParameter, match="NextToken"):
            page_offset("offset", bad)
    with pytest.raises(InvalidParameter, match="NextToken"):  # a job listing's token is not a model listing's
        page_offset("offset", page_token("jobs", 3))
