"""AWS Signature Version 4 for presigned WebSocket URLs (query-string auth), sans I/O.

Implements the canonical request and string to sign of the SigV4 spec for a
``GET`` with all auth in the query (``X-Amz-Algorithm``, ``X-Amz-Credential``,
``X-Amz-Date``, ``X-Amz-Expires``, ``X-Amz-SignedHeaders``, optional
``X-Amz-Security-Token``, and ``X-Amz-Signature``, which is excluded from the
canonical query). The verifier re-sorts the received parameters itself and
checks expiry (``X-Amz-Expires`` ≤ 300 s), clock skew, and the signature in
constant time. Replay protection (a URL used once) is the server's job: it
remembers :attr:`VerifiedRequest.signature` until the URL expires.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote

from protocol.errors import AuthenticationError, InvalidParameter

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "transcribe"
MAX_EXPIRES_S = 300
MAX_CLOCK_SKEW_S = 300
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_DATE_FORMAT = "%Y%m%dT%H%M%SZ"


def _quote(value: str) -> str:
    """RFC 3986 encoding: unreserved A-Za-z0-9-_.~ kept, everything else %XY upper-case."""
    return quote(value, safe="-_.~")


def canonical_query(params: list[tuple[str, str]]) -> str:
    """Encoded ``name=value`` pairs sorted by encoded name, then value (code-point order)."""
    encoded = sorted((_quote(k), _quote(v)) for k, v in params)
    return "&".join(f"{k}={v}" for k, v in encoded)


def signing_key(secret_access_key: str, date: str, region: str, service: str = SERVICE) -> bytes:
    """``HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")``."""
    key = hmac.new(("AWS4" + secret_access_key).encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def _signature(secret: str, method: str, path: str, params: list[tuple[str, str]], host: str,
               amz_date: str, scope: str) -> str:
    canonical = "\n".join([method, path, canonical_query(params), f"host:{host}", "", "host", EMPTY_SHA256])
    to_sign = "\n".join([ALGORITHM, amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    date, region, service, _ = scope.split("/")
    return hmac.new(signing_key(secret, date, region, service), to_sign.encode(), hashlib.sha256).hexdigest()


def presign(*, host: str, path: str, params: dict[str, str], access_key_id: str, secret_access_key: str,
            region: str, now: dt.datetime, expires_s: int = MAX_EXPIRES_S, session_token: str | None = None) -> str:
    """A presigned ``GET`` query string (without the leading ``?``).

    Args:
        host: the ``Host`` header value the client will send, port included.
        path: the request path, e.g. ``/stream-transcription-websocket``.
        params: the request's own query parameters.
        now: signing time (UTC).
        expires_s: validity, 1-300 seconds.
    """
    if not 1 <= expires_s <= MAX_EXPIRES_S:
        raise ValueError(f"expires_s must be 1-{MAX_EXPIRES_S}, got {expires_s}")
    amz_date = now.astimezone(dt.timezone.utc).strftime(_DATE_FORMAT)
    scope = f"{amz_date[:8]}/{region}/{SERVICE}/aws4_request"
    query = list(params.items()) + [
        ("X-Amz-Algorithm", ALGORITHM), ("X-Amz-Credential", f"{access_key_id}/{scope}"),
        ("X-Amz-Date", amz_date), ("X-Amz-Expires", str(expires_s)), ("X-Amz-SignedHeaders", "host"),
    ]
    if session_token:
        query.append(("X-Amz-Security-Token", session_token))
    signature = _signature(secret_access_key, "GET", path, query, host, amz_date, scope)
    return canonical_query(query) + f"&X-Amz-Signature={signature}"


@dataclass(frozen=True)
class VerifiedRequest:
    """What a valid presigned URL says."""

    access_key_id: str
    region: str
    signed_at: dt.datetime
    expires_at: dt.datetime
    signature: str
    params: dict[str, str]


def verify(*, method: str, path: str, raw_query: str, host: str, secrets: dict[str, str],
           now: dt.datetime) -> VerifiedRequest:
    """Check a presigned request.

    Args:
        raw_query: the query string as received (percent-encoded).
        host: the ``Host`` header exactly as received.
        secrets: access key id -> secret access key.
        now: the server's clock (UTC).

    Returns:
        The verified request, with its own (non-auth) parameters.

    Raises:
        AuthenticationError: missing auth, unknown key, expired or future-dated URL, bad signature.
        InvalidParameter: malformed auth parameters.
    """
    pairs = parse_qsl(raw_query, keep_blank_values=True)
    given = dict(pairs)
    if len(given) != len(pairs):
        raise InvalidParameter("a query parameter appears twice in the presigned URL")
    missing = [k for k in ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
                           "X-Amz-SignedHeaders", "X-Amz-Signature") if k not in given]
    if missing:
        raise AuthenticationError(f"the presigned URL lacks {', '.join(missing)}")
    if given["X-Amz-Algorithm"] != ALGORITHM:
        raise AuthenticationError(f"unsupported signing algorithm {given['X-Amz-Algorithm']!r}; expected {ALGORITHM}")
    if given["X-Amz-SignedHeaders"].lower() != "host":
        raise AuthenticationError("only the host header may be signed in a presigned URL")
    try:
        key_id, date, region, service, terminal = given["X-Amz-Credential"].split("/")
        signed_at = dt.datetime.strptime(given["X-Amz-Date"], _DATE_FORMAT).replace(tzinfo=dt.timezone.utc)
        expires_s = int(given["X-Amz-Expires"])
    except ValueError as exc:
        raise InvalidParameter(f"malformed presigned-URL parameter: {exc}") from exc
    if service != SERVICE or terminal != "aws4_request" or date != given["X-Amz-Date"][:8]:
        raise AuthenticationError("the credential scope does not match the request date and service")
    if not 1 <= expires_s <= MAX_EXPIRES_S:
        raise AuthenticationError(f"X-Amz-Expires must be 1-{MAX_EXPIRES_S} seconds, got {expires_s}")
    if key_id not in secrets:
        raise AuthenticationError("the access key id is not known to this server")
    if signed_at - now > dt.timedelta(seconds=MAX_CLOCK_SKEW_S):
        raise AuthenticationError("the presigned URL is dated in the future (check the client's clock)")
    expires_at = signed_at + dt.timedelta(seconds=expires_s)
    if now > expires_at:
        raise AuthenticationError(f"the presigned URL expired at {expires_at.isoformat()}")
    unsigned = [(k, v) for k, v in pairs if k != "X-Amz-Signature"]
    scope = f"{date}/{region}/{service}/{terminal}"
    expected = _signature(secrets[key_id], method, path, unsigned, host, given["X-Amz-Date"], scope)
    if not hmac.compare_digest(expected, given["X-Amz-Signature"]):
        raise AuthenticationError("the request signature does not match (tampered URL or wrong secret)")
    own = {k: v for k, v in given.items() if not k.startswith("X-Amz-")}
    return VerifiedRequest(key_id, region, signed_at, expires_at, given["X-Amz-Signature"], own)


def _canonical_header_value(value: str) -> str:
    return " ".join(value.split())


def verify_authorization(*, method: str, path: str, raw_query: str, headers: Mapping[str, str],
                         secrets: dict[str, str], now: dt.datetime, payload_sha256: str | None = None) -> str:
    """Check a request signed in its ``Authorization`` header (the HTTP streaming route); return the access key id.

    The payload hash is the ``X-Amz-Content-SHA256`` header (``STREAMING-AWS4-HMAC-SHA256-EVENTS`` for an
    event stream); without that header the body is taken as signed empty, as botocore does for a
    bodiless request. Per-event chunk signatures are not checked here.

    Args:
        headers: the received headers, looked up case-insensitively by name.
        payload_sha256: the hex SHA-256 of a body the server has read whole (JSON 1.1 requests: botocore
            signs the body's hash without sending it in a header); a header that says otherwise is refused.

    Raises:
        AuthenticationError: missing or malformed header, unknown key, skewed clock, bad signature.
    """
    lower = {k.lower(): v for k, v in headers.items()}
    auth = lower.get("authorization", "")
    algorithm, _, rest = auth.partition(" ")
    if algorithm != ALGORITHM:
        raise AuthenticationError(f"the Authorization header must use {ALGORITHM}")
    fields = dict(part.strip().partition("=")[::2] for part in rest.split(","))
    try:
        key_id, date, region, service, terminal = fields["Credential"].split("/")
        signed = fields["SignedHeaders"].split(";")
        given = fields["Signature"]
        amz_date = lower["x-amz-date"]
        signed_at = dt.datetime.strptime(amz_date, _DATE_FORMAT).replace(tzinfo=dt.timezone.utc)
    except (KeyError, ValueError):
        raise AuthenticationError("the Authorization header needs Credential, SignedHeaders and Signature, "
                                  "and the request an X-Amz-Date header") from None
    if service != SERVICE or terminal != "aws4_request" or date != amz_date[:8]:
        raise AuthenticationError("the credential scope does not match the request date and service")
    if "host" not in signed or any(name not in lower for name in signed):
        raise AuthenticationError("the signed headers must include host and be present in the request")
    if key_id not in secrets:
        raise AuthenticationError("the access key id is not known to this server")
    if abs((signed_at - now).total_seconds()) > MAX_CLOCK_SKEW_S:
        raise AuthenticationError("the request date is more than 5 minutes from the server's clock")
    if payload_sha256 is not None and lower.get("x-amz-content-sha256", payload_sha256) != payload_sha256:
        raise AuthenticationError("the X-Amz-Content-SHA256 header does not match the request body")
    canonical_headers = "".join(f"{name}:{_canonical_header_value(lower[name])}\n" for name in signed)
    canonical = "\n".join([method, quote(path, safe="/~"), canonical_query(parse_qsl(raw_query, keep_blank_values=True)),
                           canonical_headers, ";".join(signed), payload_sha256 or lower.get("x-amz-content-sha256", EMPTY_SHA256)])
    scope = f"{date}/{region}/{service}/{terminal}"
    to_sign = "\n".join([ALGORITHM, amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    expected = hmac.new(signing_key(secrets[key_id], date, region, service), to_sign.encode(),
                        hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, given):
        raise AuthenticationError("the request signature does not match (tampered request or wrong secret)")
    return key_id
