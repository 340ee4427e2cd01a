"""Amazon Transcribe custom language models and batch jobs end to end, with boto3 as the only AWS client.

Against the real server on the shipped models and the real S3 server (moto, ``VOXGATE_TEST_S3_URL``):
upload training and tuning text → ``create_language_model`` → poll ``describe_language_model`` to
``COMPLETED`` → stream an IVR prompt (Allison, TRAIN split, 8 kHz) over a presigned WebSocket with
``language-model-name`` and partial-result stabilisation → ``start_transcription_job`` with
``LanguageModelName`` → read the transcript file from the output bucket.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
import uuid
import wave

import aiohttp
import boto3
import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.eventstream import EventStreamBuffer
from botocore.exceptions import ClientError

from engine.catalog import default_models_dir
from engine.text import normalize_transcript
from protocol.eventstream import Message
from server.catalog.lifecycle import transcription_deadline
from server.catalog import utcnow
from server.config import parse_config
from tests.conftest import FIXTURES
from tests.server.conftest import ServerThread
from tests.server.http.transcribe.test_transcribe import _http_stream, audio_events

KEY_ID, SECRET = "AKIDE2ETX", "e2e/transcribe-secret"
PROMPT = FIXTURES / "allison" / "vm-reenterpassword.wav"
# IVR-domain training text (no line of the Allison test split).
TRAINING = """please enter your password followed by the pound key
please re enter your password followed by the pound key
please enter your account number followed by the pound key
your password has been changed
the password you entered is not valid
please enter your new password followed by the pound key
re enter your mailbox number followed by the pound key
press the pound key when you are finished
"""
TUNING = "please re enter your password\nenter your password followed by the pound key\n"


@pytest.fixture(scope="module")
def s3(s3_url):
    return boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1", aws_access_key_id="testing",
                        aws_secret_access_key="testing")


#: days the server's catalog clock runs ahead (the lifecycle's deadlines; SigV4 keeps the real clock)
AHEAD_DAYS = [0]


def catalog_clock() -> dt.datetime:
    return utcnow() + dt.timedelta(days=AHEAD_DAYS[0])


@pytest.fixture(scope="module")
def server(s3_url):
    server = ServerThread(default_models_dir(), clock=catalog_clock, config=parse_config({
        "credentials": [{"instance": "e2e", "access_key_id": KEY_ID, "secret_access_key": SECRET}],
        "s3": {"endpoint_url": s3_url, "region": "us-east-1", "access_key_id": "testing",
               "secret_access_key": "testing"}}))
    server.start()
    yield server
    server.stop()


def transcribe(server):
    return boto3.client("transcribe", endpoint_url=server.http, region_name="us-east-1",
                        aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET)


def wait_completed(client, name: str, timeout_s: float = 600) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        model = client.describe_language_model(ModelName=name)["LanguageModel"]
        assert model["ModelStatus"] != "FAILED", model
        if model["ModelStatus"] == "COMPLETED":
            return model
        assert time.monotonic() < deadline, model
        time.sleep(1)


def presigned(server, params: str) -> str:
    request = AWSRequest(method="GET", url=f"{server.ws}/stream-transcription-websocket?{params}")
    SigV4QueryAuth(Credentials(KEY_ID, SECRET), "transcribe", "us-east-1", expires=300).add_auth(request)
    return request.url


def http_headers(rate: int) -> dict:
    """The headers of a POST /stream-transcription naming the CLM in the older header."""
    return {"x-amzn-transcribe-language-code": "en-US", "x-amzn-transcribe-media-encoding": "pcm",
               "x-amzn-transcribe-sample-rate": str(rate), "x-amzn-language-model-name": "ivr-clm",
               "X-Amz-Content-SHA256": "STREAMING-AWS4-HMAC-SHA256-EVENTS",
               "X-Amz-Target": "com.amazonaws.transcribe.Transcribe.StartStreamTranscription"}


def signed_http(server, rate: int) -> dict:
    """Those headers signed by botocore's SigV4 header signer."""

    request = AWSRequest(method="POST", url=f"{server.http}/stream-transcription", headers=http_headers(rate))
    SigV4Auth(Credentials(KEY_ID, SECRET), "transcribe", "us-east-1").add_auth(request)
    return dict(request.headers.items())


def pcm(path) -> tuple[bytes, int]:
    with wave.open(str(path)) as w:
        return w.readframes(w.getnframes()), w.getframerate()


async def stream(url: str, audio: bytes, rate: int) -> tuple[list[dict], dict]:
    chunk = rate * 2 // 10  # 100 ms of 16-bit samples
    frames = [Message.build({":message-type": "event", ":event-type": "AudioEvent",
                             ":content-type": "application/octet-stream"}, audio[i:i + chunk]).encode()
              for i in range(0, len(audio), chunk)]
    frames.append(Message.build({":message-type": "event", ":event-type": "AudioEvent"}, b"").encode())
    buffer = EventStreamBuffer()
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        headers = dict(ws._response.headers)
        for f in frames:
            await ws.send_bytes(f)
        async for msg in ws:
            buffer.add_data(msg.data)
    events = [json.loads(m.payload) for m in buffer]
    return [r for e in events for r in e["Transcript"]["Results"]], headers


def test_clm_stream_and_job_with_boto3(server, s3):
    bucket, out_bucket = f"clm-{uuid.uuid4().hex[:8]}", f"out-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.create_bucket(Bucket=out_bucket)
    s3.put_object(Bucket=bucket, Key="train/part-1.txt", Body=TRAINING.encode())
    s3.put_object(Bucket=bucket, Key="tune/tuning.txt", Body=TUNING.encode())
    s3.put_object(Bucket=bucket, Key="media/prompt.wav", Body=PROMPT.read_bytes())
    client = transcribe(server)
    config = {"S3Uri": f"s3://{bucket}/train/", "TuningDataS3Uri": f"s3://{bucket}/tune/",
              "DataAccessRoleArn": "arn:aws:iam::123456789012:role/transcribe-clm"}
    created = client.create_language_model(LanguageCode="en-US", BaseModelName="NarrowBand", ModelName="ivr-clm",
                                           InputDataConfig=config)
    assert created["ModelStatus"] == "IN_PROGRESS" and created["ModelName"] == "ivr-clm"
    with pytest.raises(ClientError) as again:
        client.create_language_model(LanguageCode="en-US", BaseModelName="NarrowBand", ModelName="ivr-clm",
                                     InputDataConfig=config)
    assert again.value.response["Error"]["Code"] == "ConflictException"

    model = wait_completed(client, "ivr-clm")
    assert model["BaseModelName"] == "NarrowBand" and model["InputDataConfig"] == config
    assert model["UpgradeAvailability"] is False and "FailureReason" not in model
    listed = client.list_language_models(NameContains="IVR")["Models"]
    assert [m["ModelName"] for m in listed] == ["ivr-clm"]

    audio, rate = pcm(PROMPT)
    params = f"language-code=en-US&media-encoding=pcm&sample-rate={rate}&language-model-name=ivr-clm"
    results, headers = asyncio.run(stream(presigned(server, params), audio, rate))
    assert "x-voxgate-warnings" not in {k.lower() for k in headers}
    finals = [r for r in results if not r["IsPartial"]]
    said = normalize_transcript(" ".join(r["Alternatives"][0]["Transcript"] for r in finals))
    assert "password" in said and "pound key" in said, said
    assert all("Stable" not in i for r in results for i in r["Alternatives"][0]["Items"])
    # the same CLM over chunked HTTP, named in the older x-amzn-language-model-name header
    status, _headers, messages = asyncio.run(_http_stream(server, audio_events(audio), signed_http(server, rate)))
    finals = [r for m in messages for r in json.loads(m.payload)["Transcript"]["Results"] if not r["IsPartial"]]
    said = normalize_transcript(" ".join(r["Alternatives"][0]["Transcript"] for r in finals))
    assert status == 200 and "password" in said, said

    # Stabilised partials on the same real audio: once Stable, an item never changes, final included.
    stabilised = params + "&enable-partial-results-stabilization=true&partial-results-stability=low"
    results, _headers = asyncio.run(stream(presigned(server, stabilised), audio, rate))
    assert all(i["Stable"] for r in results if not r["IsPartial"] for i in r["Alternatives"][0]["Items"])
    pinned: dict[str, list] = {}
    for r in results:
        items = [(i["Content"], i["StartTime"], i["EndTime"]) for i in r["Alternatives"][0]["Items"]]
        before = pinned.get(r["ResultId"], [])
        assert items[:len(before)] == before, (before, items)
        flags = [i["Stable"] for i in r["Alternatives"][0]["Items"]]
        pinned[r["ResultId"]] = items[:flags.index(False) if False in flags else len(flags)]
    assert any(pinned.values())
    with pytest.raises(aiohttp.WSServerHandshakeError):
        asyncio.run(stream(presigned(server, params.replace("ivr-clm", "no-such-clm")), audio, rate))

    job = client.start_transcription_job(TranscriptionJobName="ivr-job", LanguageCode="en-US",
                                         Media={"MediaFileUri": f"s3://{bucket}/media/prompt.wav"},
                                         MediaFormat="wav", ModelSettings={"LanguageModelName": "ivr-clm"},
                                         OutputBucketName=out_bucket, OutputKey="results/")
    assert job["TranscriptionJob"]["TranscriptionJobStatus"] in ("QUEUED", "IN_PROGRESS")
    deadline = time.monotonic() + 300
    while (status := client.get_transcription_job(TranscriptionJobName="ivr-job")["TranscriptionJob"])[
            "TranscriptionJobStatus"] not in ("COMPLETED", "FAILED"):
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert status["TranscriptionJobStatus"] == "COMPLETED", status
    assert status["Transcript"]["TranscriptFileUri"] == f"s3://{out_bucket}/results/ivr-job.json"
    result = json.loads(s3.get_object(Bucket=out_bucket, Key="results/ivr-job.json")["Body"].read())
    text = normalize_transcript(result["results"]["transcripts"][0]["transcript"])
    assert "password" in text and "pound key" in text, text
    assert all("start_time" in i for i in result["results"]["items"] if i["type"] == "pronunciation")
    summaries = client.list_transcription_jobs(Status="COMPLETED")["TranscriptionJobSummaries"]
    assert [j["TranscriptionJobName"] for j in summaries] == ["ivr-job"]

    client.delete_transcription_job(TranscriptionJobName="ivr-job")

    # Three years on the CLM has expired: a job naming it is refused with the model and its deadline; a
    # stream falls back to the newest base version and says so in the handshake's headers.
    deadline = transcription_deadline(utcnow().date())
    AHEAD_DAYS[0] = 3 * 366
    try:
        with pytest.raises(ClientError) as expired:
            client.start_transcription_job(TranscriptionJobName="late-job", LanguageCode="en-US",
                                           Media={"MediaFileUri": f"s3://{bucket}/media/prompt.wav"},
                                           ModelSettings={"LanguageModelName": "ivr-clm"}, OutputBucketName=out_bucket)
        error = expired.value.response["Error"]
        assert error["Code"] == "BadRequestException" and "ivr-clm" in error["Message"], error
        assert deadline.isoformat() in error["Message"], error
        results, headers = asyncio.run(stream(presigned(server, params), audio, rate))
        warnings = {k.lower(): v for k, v in headers.items()}["x-voxgate-warnings"]
        assert "expired" in warnings and deadline.isoformat() in warnings, warnings
        assert any(not r["IsPartial"] for r in results)
        status, headers, _messages = asyncio.run(_http_stream(server, audio_events(audio), signed_http(server, rate)))
        assert status == 200 and "expired" in headers["x-voxgate-warnings"]
    finally:
        AHEAD_DAYS[0] = 0
    client.delete_language_model(ModelName="ivr-clm")
    with pytest.raises(ClientError) as gone:
        client.describe_language_model(ModelName="ivr-clm")
    assert gone.value.response["Error"]["Code"] == "NotFoundException"
