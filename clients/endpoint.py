"""Server addresses: from what a user types (``ws://host:port``, ``http://host:port/...``) to a WebSocket URL."""

from __future__ import annotations

from yarl import URL

from clients.errors import BadInput

WATSON_PATH = "/v1/recognize"
TRANSCRIBE_PATH = "/stream-transcription-websocket"
_WS_SCHEMES = {"ws": "ws", "wss": "wss", "http": "ws", "https": "wss"}


def websocket_url(url: str, default_path: str) -> URL:
    """The WebSocket URL for `url`: ``http``/``https`` become ``ws``/``wss``, a bare host gets `default_path`.

    Args:
        url: ``ws://host:port``, ``http://host:port``, or a full URL with path and query.
        default_path: the dialect's route, used when `url` has no path.

    Raises:
        BadInput: not an absolute ws/wss/http/https URL with a host.
    """
    try:
        parsed = URL(url)
        host, scheme = parsed.host, parsed.scheme
        parsed.port  # noqa: B018  (a port that is not a number raises here, not at connect time)
    except (ValueError, TypeError) as exc:
        raise BadInput(f"bad URL {url!r}: {exc}") from exc
    if scheme not in _WS_SCHEMES or not host:
        raise BadInput(f"bad URL {url!r}: expected ws://HOST:PORT or http://HOST:PORT")
    parsed = parsed.with_scheme(_WS_SCHEMES[scheme])
    if parsed.path in ("", "/"):
        parsed = parsed.with_path(default_path)
    return parsed


def host_header(url: URL) -> str:
    """The ``Host`` header aiohttp sends for `url` (port only when not the scheme's default): SigV4 signs it."""
    host = url.host_port_subcomponent
    if host is None:
        raise BadInput(f"URL {url} has no host")
    return host


def http_url(url: URL, path: str) -> URL:
    """The plain-HTTP URL of `path` on the same server as the WebSocket URL `url` (e.g. ``/healthz``)."""
    return url.with_scheme("https" if url.scheme == "wss" else "http").with_path(path).with_query(None)
