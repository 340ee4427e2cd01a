"""The web page's routes (``server.http.ui``): content types, cache headers, 404s, no way out of ``static/``."""

from __future__ import annotations

import http.client
import re
from pathlib import Path

import pytest

from server.http import ui

PAGES = ("index.html", "models.html")


def _get(server, path: str) -> tuple[int, dict[str, str], bytes]:
    """GET `path` exactly as written (no client-side normalisation of ``..`` or escapes)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.putrequest("GET", path, skip_accept_encoding=True)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def test_root_serves_the_live_page_without_credentials(server_factory) -> None:
    server = server_factory({"credentials": [{"instance": "a", "api_key": "k"}]})
    status, headers, body = _get(server, "/")
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Cache-Control"] == "no-cache"
    assert body == (ui.STATIC_DIR / "index.html").read_bytes()


@pytest.mark.parametrize("name,content_type,cache", [
    ("models.html", "text/html; charset=utf-8", "no-cache"),
    ("live.js", "text/javascript; charset=utf-8", "public, max-age=3600"),
    ("pcm-worklet.js", "text/javascript; charset=utf-8", "public, max-age=3600"),
    ("style.css", "text/css; charset=utf-8", "public, max-age=3600"),
])
def test_assets_have_their_content_type_and_cache_header(server, name: str, content_type: str, cache: str) -> None:
    status, headers, body = _get(server, f"/ui/{name}")
    assert (status, headers["Content-Type"], headers["Cache-Control"]) == (200, content_type, cache)
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert body == (ui.STATIC_DIR / name).read_bytes()


@pytest.mark.parametrize("path", [
    "/ui/missing.js", "/ui/", "/ui/index.htm", "/ui/__init__.py",
    "/ui/../app.py", "/ui/..%2f__init__.py", "/ui/%2e%2e%2f%2e%2e%2fauth.py", "/ui/..%5c__init__.py",
    "/ui/%2fetc%2fpasswd", "/ui/static%2findex.html", "/ui/.%2findex.html", "/ui//etc/passwd",
])
def test_unknown_files_and_traversal_get_404(server, path: str) -> None:
    status, _, body = _get(server, path)
    assert status == 404, (path, body[:200])
    assert b"import" not in body and b"root:" not in body


def test_every_file_a_page_links_is_served() -> None:
    files = ui.static_files()
    linked = set()
    for page in PAGES + ("live.js", "models.js"):
        linked |= set(re.findall(r"/ui/([\w.-]+)", (ui.STATIC_DIR / page).read_text()))
    assert linked and linked <= set(files), linked - set(files)


def test_only_plain_files_with_known_suffixes_are_servable(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<!doctype html>")
    (tmp_path / "notes.txt").write_text("not served")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "deep.js").write_text("")
    files = ui.static_files(tmp_path)
    assert list(files) == ["index.html"]
    assert files["index.html"].content_type == "text/html; charset=utf-8"


def test_a_missing_index_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="index.html is missing"):
        ui.routes(tmp_path)
