"""Audio resources of custom acoustic models: validate, measure and unpack what users upload.

A resource is one audio file (any type :func:`engine.audio.decode_bytes`
takes, with its ``Content-Type``), or an archive (``application/zip``, or
``application/gzip`` / ``application/x-tar`` for a tar.gz) of audio files of
one ``Contained-Content-Type``. An archive may carry ``transcripts.tsv``
(``member name<TAB>transcript`` lines); a single file may carry its
transcript in the ``Transcript`` header. Archive members are extracted under
safe generated names (never the member's own path, so ``../`` cannot
escape), one member at a time, with limits against archive bombs on the bytes actually unpacked
(in all, per member and as a ratio to the archive's size) and on the model's hours of audio.
"""

from __future__ import annotations

import io
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from engine.audio import AudioError, decode_bytes
from protocol.audio import parse_content_type, split_content_type
from protocol.errors import VoxgateError

ARCHIVE_TYPES = {"application/zip": "zip", "application/gzip": "gzip", "application/x-gzip": "gzip",
                 "application/x-tar": "tar", "application/x-gtar": "gzip"}
MAX_MEMBERS = 10_000
#: Limits on what an archive unpacks to, counted on the bytes actually read: in all, per member, and
#: as a multiple of the archive's size once past a floor (a zip of 1000 MB of zeros is under 1 MB).
MAX_UNPACKED_BYTES = 1024 ** 3
MAX_MEMBER_BYTES = 100 * 1024 ** 2
MAX_RATIO = 20
RATIO_FLOOR_BYTES = 16 * 1024 ** 2
#: Watson's quota: at most 200 hours of audio per custom acoustic model.
MAX_MODEL_SECONDS = 200 * 3600.0
TRANSCRIPTS = "transcripts.tsv"


@dataclass
class Processed:
    """What processing found: Watson's ``details``, the duration, and the files to train on."""

    duration_s: float
    details: dict
    items: list[dict] = field(default_factory=list)  # {"path": relative, "transcript": str | None, "duration": s}


def _audio_details(data: bytes, content_type: str | None, min_rate_hz: int) -> tuple[float, int]:
    try:
        spec = parse_content_type(content_type)
    except VoxgateError as exc:  # this module's callers take AudioError for every bad resource
        raise AudioError(exc.message) from exc
    samples, rate = decode_bytes(data, spec)
    if rate < min_rate_hz:
        raise AudioError(f"the audio's sample rate {rate} Hz is below the base model's {min_rate_hz} Hz")
    return samples.size / rate, rate


def process(data: bytes, *, content_type: str, contained_content_type: str | None, transcript: str | None,
            min_rate_hz: int, out_dir: Path, rel_dir: str, max_seconds: float = MAX_MODEL_SECONDS) -> Processed:
    """Validate and measure a resource; extract an archive's audio files into ``out_dir``.

    Args:
        data: the uploaded bytes.
        content_type: the request's ``Content-Type``.
        contained_content_type: an archive's ``Contained-Content-Type`` (None: auto-detect each member).
        transcript: a single file's transcript (``Transcript`` header), if any.
        min_rate_hz: the base model's rate (lower rates are invalid).
        out_dir: where extracted members go (absolute), ``rel_dir`` the same relative to the data directory.
        max_seconds: the audio this resource may add to its model (what is left of the model's quota).

    Raises:
        AudioError: undecodable audio, a bad archive, an archive beyond a limit, an archive without
            audio, or more audio than ``max_seconds`` (the message says which).
    """
    try:
        mime = split_content_type(content_type)[0] if content_type else "application/octet-stream"
    except VoxgateError as exc:
        raise AudioError(exc.message) from exc
    kind = ARCHIVE_TYPES.get(mime)
    if kind is None:
        duration, rate = _audio_details(data, content_type, min_rate_hz)
        _check_quota(duration, max_seconds)
        codec = mime.split("/", 1)[1] if "/" in mime else mime
        return Processed(duration, {"type": "audio", "codec": codec, "frequency": rate},
                         [{"path": None, "transcript": transcript, "duration": duration}])
    transcripts: dict[str, str] = {}
    out_dir.mkdir(parents=True, exist_ok=True)
    items, total, bad = [], 0.0, []
    for i, (name, payload) in enumerate(_members(data, kind)):
        if name == TRANSCRIPTS:
            for line in payload.decode("utf-8", errors="replace").splitlines():
                if "\t" in line:
                    member, text = line.split("\t", 1)
                    transcripts[member.strip()] = text.strip()
            continue
        try:
            duration, _rate = _audio_details(payload, contained_content_type, min_rate_hz)
        except AudioError as exc:
            bad.append(f"{name}: {exc}")
            continue
        total += duration
        _check_quota(total, max_seconds)
        path = out_dir / f"{i:05d}.audio"
        path.write_bytes(payload)
        items.append({"path": f"{rel_dir}/{path.name}", "name": name, "transcript": None, "duration": duration,
                      "content_type": contained_content_type})
    if not items:
        reason = f" ({'; '.join(bad[:3])})" if bad else ""
        raise AudioError(f"the archive holds no usable audio files{reason}")
    for item in items:  # transcripts.tsv may come anywhere in the archive
        name = item.pop("name")
        base = name.rsplit("/", 1)[-1]
        item["transcript"] = transcripts.get(name, transcripts.get(base, transcripts.get(base.rsplit(".", 1)[0])))
    details = {"type": "archive", "compression": kind}
    if bad:
        details["invalid_members"] = bad[:20]
    return Processed(total, details, items)


def _check_quota(seconds: float, max_seconds: float) -> None:
    if seconds > max_seconds:
        raise AudioError(f"the resource brings more audio than its model may still take: a custom acoustic model "
                         f"holds at most {MAX_MODEL_SECONDS / 3600:g} hours of audio, "
                         f"{max(0.0, max_seconds) / 3600:.2f} hours are left")


class _Budget:
    """Counts the bytes actually unpacked (never trusting an archive's own sizes) against the limits."""

    def __init__(self, compressed_bytes: int) -> None:
        self.compressed = max(1, compressed_bytes)
        self.total = 0
        self.members = 0

    def member(self) -> None:
        self.members += 1
        if self.members > MAX_MEMBERS:
            raise AudioError(f"the archive has more than {MAX_MEMBERS} files")

    def read(self, fh, name: str) -> bytes:
        out = bytearray()
        while block := fh.read(1 << 20):
            out += block
            self.total += len(block)
            if len(out) > MAX_MEMBER_BYTES:
                raise AudioError(f"the archive member {name!r} unpacks to more than {MAX_MEMBER_BYTES} bytes")
            if self.total > MAX_UNPACKED_BYTES:
                raise AudioError(f"the archive unpacks to more than {MAX_UNPACKED_BYTES} bytes")
            if self.total > RATIO_FLOOR_BYTES and self.total > MAX_RATIO * self.compressed:
                raise AudioError(f"the archive unpacks to more than {MAX_RATIO} times its size "
                                 f"({self.compressed} bytes): audio does not compress like that")
        return bytes(out)


def _members(data: bytes, kind: str) -> Iterator[tuple[str, bytes]]:
    """``(name, bytes)`` of each file member, one at a time, hidden files skipped; limits as :class:`_Budget`."""
    budget = _Budget(len(data))
    try:
        if kind == "zip":
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                for info in archive.infolist():
                    if info.is_dir():
                        continue
                    budget.member()
                    with archive.open(info) as fh:
                        payload = budget.read(fh, info.filename)
                    if not info.filename.rsplit("/", 1)[-1].startswith("."):
                        yield info.filename, payload
        else:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz" if kind == "gzip" else "r:") as archive:
                for member in archive:
                    if not member.isfile():
                        continue
                    budget.member()
                    fh = archive.extractfile(member)
                    if fh is None:
                        continue
                    with fh:
                        payload = budget.read(fh, member.name)
                    if not member.name.rsplit("/", 1)[-1].startswith("."):
                        yield member.name, payload
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise AudioError(f"not a readable {kind} archive: {exc}") from exc
