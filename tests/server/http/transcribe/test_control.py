"""The JSON 1.1 control plane (``POST /``) over a real socket, driven by boto3 and botocore's signer: error
types and statuses per operation, SigV4 over the body, CLMs that fail with a reason, paging, filters, and
which models each dialect lists."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

CREDS = [{"instance": "acme", "api_key": "acme-key", "access_key_id": "AKIDVOX", "secret_access_key": "wJalr/secret"},
         {"instance": "rival", "access_key_id": "AKIDRIVAL", "secret_access_key": "rival/secret"}]
ROLE = "arn:aws:iam::123456789012:role/transcribe"


@pytest.fixture()
def server(server_factory, s3_url):
    return server_factory({"credentials": CREDS, "s3": {"endpoint_url": s3_url, "access_key_id": "testing",
                                                        "secret_access_key": "testing"}})


def client(server, key: str = "AKIDVOX", secret: str = "wJalr/secret"):
    return boto3.client("transcribe", endpoint_url=server.http, region_name="us-east-1", aws_access_key_id=key,
                        aws_secret_access_key=secret)


def code(call) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as err:
        call()
    response = err.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Message"]


def signed(server, target: str, body: bytes, *, sent: bytes | None = None) -> tuple[int, dict]:
    """POST / signed by botocore over ``body``; ``sent``: other bytes to send instead (a tampered body)."""
    request = AWSRequest(method="POST", url=f"{server.http}/", data=body,
                         headers={"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1"})
    SigV4Auth(Credentials("AKIDVOX", "wJalr/secret"), "transcribe", "us-east-1").add_auth(request)
    raw = urllib.request.Request(request.url, data=sent if sent is not None else body, method="POST",
                                 headers=dict(request.headers.items()))
    try:
        with urllib.request.urlopen(raw, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def failed(transcribe, name: str, timeout_s: float = 60) -> dict:
    deadline = time.monotonic() + timeout_s
    while (model := transcribe.describe_language_model(ModelName=name)["LanguageModel"])["ModelStatus"] != "FAILED":
        assert model["ModelStatus"] == "IN_PROGRESS", model
        assert time.monotonic() < deadline, model
        time.sleep(0.2)
    return model


def test_error_types_and_statuses(server) -> None:
    transcribe = client(server)
    assert code(lambda: transcribe.describe_language_model(ModelName="nope"))[:2] == ("NotFoundException", 404)
    # DeleteLanguageModel declares no NotFoundException: the service model's BadRequestException
    assert code(lambda: transcribe.delete_language_model(ModelName="nope"))[:2] == ("BadRequestException", 400)
    kind, status, message = code(lambda: transcribe.create_language_model(
        LanguageCode="en-US", BaseModelName="NarrowBand", ModelName="m",
        InputDataConfig={"S3Uri": "s3://bucket/x", "DataAccessRoleArn": ROLE}))
    assert (kind, status) == ("BadRequestException", 400) and "en-US_NarrowbandModel is not installed" in message
    assert code(lambda: client(server, secret="wrong").list_language_models())[1] in (401, 403)
    assert signed(server, "Transcribe.Nope", b"{}")[1]["__type"] == "UnknownOperationException"
    status, body = signed(server, "Transcribe.ListLanguageModels", b"{}")
    assert (status, body) == (200, {"Models": []})
    status, body = signed(server, "Transcribe.ListLanguageModels", b"{}", sent=b'{"MaxResults": 1}')
    assert status in (401, 403) and "signature does not match" in body["Message"]  # the body is signed


def test_a_clm_whose_text_cannot_be_read_fails_with_the_reason(server, tiny_bundle, s3_url) -> None:
    transcribe = client(server)
    missing = f"missing-{uuid.uuid4().hex[:8]}"
    config = {"S3Uri": f"s3://{missing}/train/", "DataAccessRoleArn": ROLE}
    created = transcribe.create_language_model(LanguageCode="en-US", BaseModelName="WideBand", ModelName="clm-1",
                                               InputDataConfig=config, Tags=[{"Key": "team", "Value": "ivr"}])
    assert created["ModelStatus"] == "IN_PROGRESS"
    assert code(lambda: transcribe.create_language_model(LanguageCode="en-US", BaseModelName="WideBand",
                                                         ModelName="clm-1", InputDataConfig=config))[:2] == \
        ("ConflictException", 409)
    model = failed(transcribe, "clm-1")
    assert missing in model["FailureReason"] and model["InputDataConfig"] == config
    assert model["BaseModelName"] == "WideBand" and model["UpgradeAvailability"] is False

    bucket = f"empty-{uuid.uuid4().hex[:8]}"
    s3 = boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1", aws_access_key_id="testing",
                      aws_secret_access_key="testing")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="train/a.bin", Body=b"\xff\xfe not text")
    transcribe.create_language_model(LanguageCode="en-US", BaseModelName="WideBand", ModelName="clm-2",
                                     InputDataConfig={"S3Uri": f"s3://{bucket}/train/", "DataAccessRoleArn": ROLE})
    assert "train/a.bin" in failed(transcribe, "clm-2")["FailureReason"]


def test_listing_pages_filters_and_dialects(server, tiny_bundle) -> None:
    transcribe = client(server)
    for i in range(3):
        transcribe.create_language_model(LanguageCode="en-US", BaseModelName="WideBand", ModelName=f"Clm-{i}",
                                         InputDataConfig={"S3Uri": f"s3://missing-{uuid.uuid4().hex[:8]}/t",
                                                          "DataAccessRoleArn": ROLE})
    for i in range(3):
        failed(transcribe, f"Clm-{i}")
    # a Watson model of the same owner: listed by Watson, not by Transcribe
    request = urllib.request.Request(f"{server.http}/v1/customizations", method="POST",
                                     data=json.dumps({"name": "watson-one", "base_model_name": tiny_bundle.name}).encode(),
                                     headers={"Authorization": "Bearer acme-key", "Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=30).close()
    first = transcribe.list_language_models(MaxResults=2)
    assert [m["ModelName"] for m in first["Models"]] == ["Clm-2", "Clm-1"]  # newest first
    second = transcribe.list_language_models(MaxResults=2, NextToken=first["NextToken"])
    assert [m["ModelName"] for m in second["Models"]] == ["Clm-0"] and "NextToken" not in second
    assert len(transcribe.list_language_models(StatusEquals="FAILED", NameContains="clm")["Models"]) == 3
    assert transcribe.list_language_models(StatusEquals="COMPLETED")["Models"] == []
    assert client(server, "AKIDRIVAL", "rival/secret").list_language_models()["Models"] == []  # per credential
    assert code(lambda: transcribe.list_language_models(NextToken="bogus"))[0] == "BadRequestException"
    watson = urllib.request.Request(f"{server.http}/v1/customizations", headers={"Authorization": "Bearer acme-key"})
    with urllib.request.urlopen(watson, timeout=30) as r:
        names = sorted(m["name"] for m in json.loads(r.read())["customizations"])
    assert names == ["Clm-0", "Clm-1", "Clm-2", "watson-one"]
    transcribe.delete_language_model(ModelName="Clm-1")
    assert [m["ModelName"] for m in transcribe.list_language_models()["Models"]] == ["Clm-2", "Clm-0"]


def test_a_build_a_stopped_server_left_unfinished_fails_at_the_next_start(server_factory, s3_url, tiny_bundle,
                                                                           tmp_path) -> None:
    from protocol.transcribe_api import BaseModelName, InputDataConfig
    from server.runtime.transcribe_models import ClmSettings

    config = {"credentials": CREDS, "s3": {"endpoint_url": s3_url, "access_key_id": "testing",
                                           "secret_access_key": "testing"}}
    first = server_factory(config, data_dir=tmp_path / "shared")
    # what a server stopped mid-build leaves: the CLM's record, untrained and with no job queued
    settings = ClmSettings("en-US", BaseModelName.WIDE_BAND, InputDataConfig("s3://bucket/train/", ROLE))
    request = urllib.request.Request(f"{first.http}/v1/customizations", method="POST", data=json.dumps(
        {"name": "half-built", "base_model_name": tiny_bundle.name, "description": settings.serialize()}).encode(),
        headers={"Authorization": "Bearer acme-key", "Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=30).close()
    assert client(first).describe_language_model(ModelName="half-built")["LanguageModel"]["ModelStatus"] == \
        "IN_PROGRESS"
    first.stop()
    second = server_factory(config, data_dir=tmp_path / "shared")
    model = client(second).describe_language_model(ModelName="half-built")["LanguageModel"]
    assert model["ModelStatus"] == "FAILED" and "create it again" in model["FailureReason"]


def wait_job(transcribe, name: str, timeout_s: float = 120) -> dict:
    deadline = time.monotonic() + timeout_s
    while (job := transcribe.get_transcription_job(TranscriptionJobName=name)["TranscriptionJob"])[
            "TranscriptionJobStatus"] in ("QUEUED", "IN_PROGRESS"):
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
    return job


def test_batch_jobs_on_the_tiny_model(server, s3_url) -> None:
    from tests.conftest import FIXTURES

    s3 = boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1", aws_access_key_id="testing",
                      aws_secret_access_key="testing")
    bucket = f"media-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="in/hello.wav", Body=(FIXTURES / "hello.wav").read_bytes())
    transcribe = client(server)
    media = {"MediaFileUri": f"s3://{bucket}/in/hello.wav"}
    assert code(lambda: transcribe.start_transcription_job(TranscriptionJobName="j", LanguageCode="en-US",
                                                           Media=media))[0] == "BadRequestException"  # no bucket
    kind, _status, message = code(lambda: transcribe.start_transcription_job(
        TranscriptionJobName="j", LanguageCode="en-US", Media=media, OutputBucketName=bucket,
        ModelSettings={"LanguageModelName": "nope"}))
    assert kind == "BadRequestException" and "nope" in message
    assert code(lambda: transcribe.get_transcription_job(TranscriptionJobName="j"))[0] == "NotFoundException"

    transcribe.start_transcription_job(TranscriptionJobName="j", LanguageCode="en-US", Media=media,
                                       OutputBucketName=bucket, OutputKey="out/result.json")
    assert code(lambda: transcribe.start_transcription_job(TranscriptionJobName="j", LanguageCode="en-US",
                                                           Media=media, OutputBucketName=bucket))[0] == \
        "ConflictException"
    job = wait_job(transcribe, "j")
    assert job["TranscriptionJobStatus"] == "COMPLETED", job
    assert job["Transcript"]["TranscriptFileUri"] == f"s3://{bucket}/out/result.json"
    assert job["MediaSampleRateHertz"] == 16000  # read from the WAV header
    result = json.loads(s3.get_object(Bucket=bucket, Key="out/result.json")["Body"].read())
    assert result["jobName"] == "j" and result["accountId"] == "acme" and result["status"] == "COMPLETED"
    assert set(result["results"]) == {"transcripts", "items"}

    transcribe.start_transcription_job(TranscriptionJobName="missing", LanguageCode="en-US", OutputBucketName=bucket,
                                       Media={"MediaFileUri": f"s3://{bucket}/in/none.wav"})
    failed_job = wait_job(transcribe, "missing")
    assert failed_job["TranscriptionJobStatus"] == "FAILED" and "in/none.wav" in failed_job["FailureReason"]
    names = [j["TranscriptionJobName"] for j in transcribe.list_transcription_jobs()["TranscriptionJobSummaries"]]
    assert names == ["missing", "j"]
    assert [j["TranscriptionJobName"] for j in transcribe.list_transcription_jobs(Status="FAILED")[
        "TranscriptionJobSummaries"]] == ["missing"]
    assert client(server, "AKIDRIVAL", "rival/secret").list_transcription_jobs()["TranscriptionJobSummaries"] == []
    transcribe.delete_transcription_job(TranscriptionJobName="j")
    assert code(lambda: transcribe.get_transcription_job(TranscriptionJobName="j"))[0] == "NotFoundException"
