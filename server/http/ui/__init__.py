"""The web page voxgate serves: ``GET /`` (the live page) and ``GET /ui/{file}`` (its other pages and assets).

Plain HTML, CSS and JavaScript shipped in ``static/`` as package data: no build step, nothing fetched
from elsewhere at run time. The page itself needs no credentials (it holds no data); the API calls it
makes carry the key the user types in, as any other client's would.

Only the files found in ``static/`` when :func:`routes` is called are served, by their bare names, so a
request can name nothing outside that folder (``..``, encoded slashes and absolute paths all miss the
table and get 404). They are read once, then, so no request reads a file on the event loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

STATIC_DIR = Path(__file__).resolve().parent / "static"
INDEX = "index.html"
#: Content types by file suffix; a file with another suffix in ``static/`` is not served.
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}
#: Pages are revalidated on every load (a server upgrade shows at once); assets may be kept for an hour.
PAGE_CACHE = "no-cache"
ASSET_CACHE = "public, max-age=3600"


@dataclass(frozen=True)
class StaticFile:
    """One servable file, read into memory.

    Attributes:
        body: its bytes.
        content_type: its ``Content-Type``.
        cache_control: its ``Cache-Control``.
    """

    body: bytes
    content_type: str
    cache_control: str

    @classmethod
    def read(cls, path: Path) -> StaticFile:
        """Read `path` (its suffix must be one of :data:`CONTENT_TYPES`)."""
        cache = PAGE_CACHE if path.suffix == ".html" else ASSET_CACHE
        return cls(path.read_bytes(), CONTENT_TYPES[path.suffix], cache)

    def response(self) -> web.Response:
        """A 200 response with the file."""
        return web.Response(body=self.body, headers={"Content-Type": self.content_type,
                                                     "Cache-Control": self.cache_control,
                                                     "X-Content-Type-Options": "nosniff"})


def static_files(folder: Path = STATIC_DIR) -> dict[str, StaticFile]:
    """The servable files of `folder` by name: plain files with a known suffix, no subfolders."""
    return {p.name: StaticFile.read(p) for p in sorted(folder.iterdir())
            if p.is_file() and p.suffix in CONTENT_TYPES}


def routes(folder: Path = STATIC_DIR) -> list[web.AbstractRouteDef]:
    """``GET /`` → ``index.html``; ``GET /ui/{file}`` → that file of `folder`, or 404.

    Args:
        folder: where the page's files are (the shipped ``static/`` by default).

    Raises:
        FileNotFoundError: `folder` has no ``index.html`` (a broken install).
    """
    files = static_files(folder)
    if INDEX not in files:
        raise FileNotFoundError(f"the web page's {INDEX} is missing from {folder}")

    async def index(request: web.Request) -> web.Response:
        """``GET /``: the live transcription page."""
        return files[INDEX].response()

    async def asset(request: web.Request) -> web.Response:
        """``GET /ui/{file}``: a page or asset by its bare name."""
        file = files.get(request.match_info["file"])
        if file is None:
            raise web.HTTPNotFound(text=f"no such file of the web page: {request.match_info['file']!r}")
        return file.response()

    return [web.get("/", index), web.get("/ui/{file}", asset)]
