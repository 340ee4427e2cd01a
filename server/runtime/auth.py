"""Who is calling: API keys (Watson dialect) and presigned URLs (Transcribe dialect).

API keys arrive as ``Authorization: Basic base64(apikey:KEY)``, ``Authorization:
Bearer KEY`` or the ``access_token`` query parameter. Presigned URLs are
checked with :func:`protocol.sigv4.verify` against the configured access key
pairs; as on AWS, a URL is good for any number of connections until it expires
(``X-Amz-Expires``, at most 300 s). The earlier single-use rule refused
legitimate clients — botocore signs two identical requests in the same second
to byte-identical URLs, and a URL whose handshake failed was used up — and its
memory was per process, so it held neither across a restart nor across replicas
(issue 13, defects 6 and 8). With no credentials configured the server is
open (and :func:`server.app.serve` only allows loopback then); every caller is
the instance ``local``.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hmac
from collections.abc import Callable, Mapping
from urllib.parse import parse_qsl

from protocol.errors import AuthenticationError
from protocol.sigv4 import ALGORITHM, verify, verify_authorization
from server.config import Credential

OPEN_INSTANCE = "local"


class Authenticator:
    """Maps request credentials to an instance name.

    Args:
        credentials: the configured credentials (empty = open server).
        clock: the current UTC time (injected for tests).
    """

    def __init__(self, credentials: tuple[Credential, ...],
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc)) -> None:
        self._by_api_key = {c.api_key: c.instance for c in credentials if c.api_key}
        self._by_access_key = {c.access_key_id: c for c in credentials if c.access_key_id}
        self._clock = clock

    @property
    def open(self) -> bool:
        """True when no credentials are configured."""
        return not self._by_api_key and not self._by_access_key

    def api_key_instance(self, headers: Mapping[str, str], query: Mapping[str, str]) -> str:
        """The instance of the API key in the request.

        Raises:
            AuthenticationError: no key, a malformed header, or an unknown key.
        """
        if self.open:
            return OPEN_INSTANCE
        key = query.get("access_token")
        header = headers.get("Authorization")
        if header:
            scheme, _, value = header.partition(" ")
            if scheme.lower() == "bearer":
                key = value.strip()
            elif scheme.lower() == "basic":
                try:
                    user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
                except (binascii.Error, UnicodeDecodeError):
                    raise AuthenticationError("the Basic Authorization header is not valid base64 of user:password") from None
                if user != "apikey":
                    raise AuthenticationError("Basic authentication takes the user name 'apikey' and the API key as password")
                key = password
            else:
                raise AuthenticationError(f"unsupported Authorization scheme {scheme!r}; use Basic or Bearer")
        if not key:
            raise AuthenticationError("credentials are required: send an API key (Authorization header or access_token)")
        for known, instance in self._by_api_key.items():
            if hmac.compare_digest(known.encode(), key.encode()):
                return instance
        raise AuthenticationError("the API key is not valid")

    def presigned_instance(self, *, method: str, path: str, raw_query: str, host: str) -> tuple[str, dict[str, str]]:
        """Verify a presigned URL; return the instance and the URL's own (non-auth) parameters.

        In open mode the URL need not be signed.

        Raises:
            AuthenticationError: unsigned (when keys are configured), expired, tampered or an unknown key.
            InvalidParameter: malformed auth parameters.
        """
        if self.open:
            return OPEN_INSTANCE, {k: v for k, v in parse_qsl(raw_query) if not k.startswith("X-Amz-")}
        now = self._clock()
        secrets = {k: c.secret_access_key or "" for k, c in self._by_access_key.items()}
        verified = verify(method=method, path=path, raw_query=raw_query, host=host, secrets=secrets, now=now)
        return self._by_access_key[verified.access_key_id].instance, verified.params

    def signed_request_instance(self, *, method: str, path: str, raw_query: str, headers: Mapping[str, str],
                                query: Mapping[str, str], payload_sha256: str | None = None) -> str:
        """The instance of a request signed with SigV4 in its ``Authorization`` header, or carrying an API key.

        ``payload_sha256``: the hash of a body read whole (see :func:`protocol.sigv4.verify_authorization`).

        Raises:
            AuthenticationError: as :meth:`api_key_instance`, or a bad SigV4 signature.
        """
        if self.open or not headers.get("Authorization", "").startswith(ALGORITHM):
            return self.api_key_instance(headers, query)
        secrets = {k: c.secret_access_key or "" for k, c in self._by_access_key.items()}
        key_id = verify_authorization(method=method, path=path, raw_query=raw_query, headers=headers, secrets=secrets,
                                      now=self._clock(), payload_sha256=payload_sha256)
        return self._by_access_key[key_id].instance
