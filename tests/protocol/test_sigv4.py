"""SigV4 presigned URLs: botocore's signer makes them, our verifier checks them, and back."""

import datetime as dt
from unittest import mock
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from protocol.errors import AuthenticationError, InvalidParameter
from protocol.sigv4 import presign, verify

SECRETS = {"AKIDEXAMPLE": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}
NOW = dt.datetime(2026, 11, 23, 12, 0, 0, tzinfo=dt.timezone.utc)
HOST = "127.0.0.1:8080"
PATH = "/stream-transcription-websocket"
PARAMS = {"language-code": "en-US", "media-encoding": "pcm", "sample-rate": "16000", "vocabulary-name": "a b/c"}


def botocore_url(expires: int = 300, token: str | None = None) -> str:
    creds = Credentials("AKIDEXAMPLE", SECRETS["AKIDEXAMPLE"], token)
    query = "&".join(f"{k}={v.replace(' ', '%20').replace('/', '%2F')}" for k, v in PARAMS.items())
    request = AWSRequest(method="GET", url=f"http://{HOST}{PATH}?{query}")
    # botocore reads the clock through botocore.auth.get_current_datetime (naive UTC).
    with mock.patch("botocore.auth.get_current_datetime", return_value=NOW.replace(tzinfo=None)):
        SigV4QueryAuth(creds, "transcribe", "us-east-1", expires=expires).add_auth(request)
    return request.url


def check(url: str, now: dt.datetime = NOW, host: str = HOST):
    parts = urlsplit(url)
    return verify(method="GET", path=parts.path, raw_query=parts.query, host=host, secrets=SECRETS, now=now)


def test_botocore_presigned_url_verifies() -> None:
    verified = check(botocore_url())
    assert verified.access_key_id == "AKIDEXAMPLE" and verified.region == "us-east-1"
    assert verified.params == PARAMS


def test_botocore_url_with_session_token_verifies() -> None:
    assert check(botocore_url(token="session/token+=")).params == PARAMS


def test_our_presign_matches_botocore() -> None:
    ours = presign(host=HOST, path=PATH, params=PARAMS, access_key_id="AKIDEXAMPLE",
                   secret_access_key=SECRETS["AKIDEXAMPLE"], region="us-east-1", now=NOW)
    theirs = urlsplit(botocore_url()).query
    assert dict(p.split("=", 1) for p in ours.split("&")) == dict(p.split("=", 1) for p in theirs.split("&"))


@pytest.mark.parametrize(
    ("mutate", "error", "message"),
    [
        (lambda u: u.replace("sample-rate=16000", "sample-rate=8000"), AuthenticationError, "does not match"),
        (lambda u: u.replace("X-Amz-Expires=300", "X-Amz-Expires=301"), AuthenticationError, "must be 1-300"),
        (lambda u: u.replace("AKIDEXAMPLE", "AKIDOTHER"), AuthenticationError, "not known"),
        (lambda u: u.replace("X-Amz-Date=", "X-Amz-Date=x"), InvalidParameter, "malformed"),
        (lambda u: u.split("&X-Amz-Signature")[0], AuthenticationError, "lacks X-Amz-Signature"),
    ],
)
def test_tampered_urls_are_refused(mutate, error, message) -> None:
    with pytest.raises(error, match=message):
        check(mutate(botocore_url()))


def test_expiry_clock_skew_and_host() -> None:
    url = botocore_url(expires=60)
    assert check(url, now=NOW + dt.timedelta(seconds=59))
    with pytest.raises(AuthenticationError, match="expired"):
        check(url, now=NOW + dt.timedelta(seconds=61))
    with pytest.raises(AuthenticationError, match="future"):
        check(url, now=NOW - dt.timedelta(minutes=10))
    with pytest.raises(AuthenticationError, match="does not match"):
        check(url, host="127.0.0.1:9090")


def botocore_signed_headers(body_hash: str | None = "STREAMING-AWS4-HMAC-SHA256-EVENTS") -> dict[str, str]:
    from botocore.auth import SigV4Auth

    headers = {"x-amzn-transcribe-language-code": "en-US", "x-amzn-transcribe-sample-rate": "16000"}
    if body_hash:
        headers["X-Amz-Content-SHA256"] = body_hash
    request = AWSRequest(method="POST", url=f"http://{HOST}/stream-transcription", headers=headers)
    with mock.patch("botocore.auth.get_current_datetime", return_value=NOW.replace(tzinfo=None)):
        SigV4Auth(Credentials("AKIDEXAMPLE", SECRETS["AKIDEXAMPLE"]), "transcribe", "us-east-1").add_auth(request)
    return {**dict(request.headers.items()), "Host": HOST}


def check_headers(headers: dict, now: dt.datetime = NOW) -> str:
    from protocol.sigv4 import verify_authorization

    return verify_authorization(method="POST", path="/stream-transcription", raw_query="", headers=headers,
                                secrets=SECRETS, now=now)


def test_botocore_header_signature_verifies() -> None:
    assert check_headers(botocore_signed_headers()) == "AKIDEXAMPLE"
    assert check_headers(botocore_signed_headers(body_hash=None)) == "AKIDEXAMPLE"


def test_header_signature_failures() -> None:
    headers = botocore_signed_headers()
    with pytest.raises(AuthenticationError, match="does not match"):
        check_headers({**headers, "x-amzn-transcribe-sample-rate": "8000"})
    with pytest.raises(AuthenticationError, match="5 minutes"):
        check_headers(headers, now=NOW + dt.timedelta(minutes=6))
    with pytest.raises(AuthenticationError, match="must use AWS4-HMAC-SHA256"):
        check_headers({**headers, "Authorization": "Bearer x"})
    with pytest.raises(AuthenticationError, match="needs Credential"):
        check_headers({**headers, "Authorization": "AWS4-HMAC-SHA256 nonsense"})


def test_a_json_body_is_verified_by_its_hash() -> None:
    """JSON 1.1 requests: botocore signs the body's SHA-256 without sending it; the server passes the hash."""
    import hashlib

    from botocore.auth import SigV4Auth

    from protocol.sigv4 import verify_authorization

    body = b'{"ModelName": "ivr"}'
    request = AWSRequest(method="POST", url=f"http://{HOST}/", data=body,
                         headers={"X-Amz-Target": "Transcribe.DescribeLanguageModel"})
    with mock.patch("botocore.auth.get_current_datetime", return_value=NOW.replace(tzinfo=None)):
        SigV4Auth(Credentials("AKIDEXAMPLE", SECRETS["AKIDEXAMPLE"]), "transcribe", "us-east-1").add_auth(request)
    headers = {**dict(request.headers.items()), "Host": HOST}

    def verify(sent: bytes, extra: dict | None = None) -> str:
        return verify_authorization(method="POST", path="/", raw_query="", headers={**headers, **(extra or {})},
                                    secrets=SECRETS, now=NOW, payload_sha256=hashlib.sha256(sent).hexdigest())

    assert verify(body) == "AKIDEXAMPLE"
    with pytest.raises(AuthenticationError, match="does not match"):
        verify(b'{"ModelName": "other"}')
    with pytest.raises(AuthenticationError, match="does not match the request body"):
        verify(body, {"X-Amz-Content-SHA256": hashlib.sha256(b"else").hexdigest()})
