"""Server addresses as users type them, turned into WebSocket URLs."""

import pytest
from yarl import URL

from clients.endpoint import TRANSCRIBE_PATH, WATSON_PATH, host_header, http_url, websocket_url
from clients.errors import BadInput


@pytest.mark.parametrize("typed,expected", [
    ("ws://127.0.0.1:8080", "ws://127.0.0.1:8080/v1/recognize"),
    ("http://127.0.0.1:8080/", "ws://127.0.0.1:8080/v1/recognize"),
    ("https://speech.example.com", "wss://speech.example.com/v1/recognize"),
    ("ws://h:1/v1/recognize?model=en-US_NarrowbandModel", "ws://h:1/v1/recognize?model=en-US_NarrowbandModel"),
    ("wss://h/custom/path", "wss://h/custom/path"),
])
def test_websocket_url(typed: str, expected: str) -> None:
    assert str(websocket_url(typed, WATSON_PATH)) == expected


@pytest.mark.parametrize("typed", ["127.0.0.1:8080", "ftp://h/x", "ws://", "not a url", "ws://h:port"])
def test_bad_urls(typed: str) -> None:
    with pytest.raises(BadInput, match="bad URL"):
        websocket_url(typed, WATSON_PATH)


def test_host_header_as_aiohttp_sends_it() -> None:
    assert host_header(websocket_url("ws://127.0.0.1:8080", TRANSCRIBE_PATH)) == "127.0.0.1:8080"
    assert host_header(URL("wss://h.example:443/x")) == "h.example"  # default port omitted
    assert host_header(URL("ws://[::1]:9000/x")) == "[::1]:9000"


def test_http_url() -> None:
    assert str(http_url(URL("wss://h:9/v1/recognize?model=m"), "/healthz")) == "https://h:9/healthz"
    assert str(http_url(URL("ws://h:9/x"), "/healthz")) == "http://h:9/healthz"
