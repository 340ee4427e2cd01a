"""Audio resources of custom acoustic models: validate, measure and unpack what users upload.

A resource is one audio file (any type :func:`engine.audio.decode_bytes`
takes, with its ``Content-Type``), or an archive (``application/zip``, or
``application/gzip`` / ``application/x-tar`` for a tar.gz) of audio files of
one ``Contained-Content-Type``. An archive may carry ``transcripts.tsv``
(``member name<TAB>transcript`` lines); a single file may carry its
transcript in the ``Transcript`` header. Archive members are extracted under
safe generated names (never the member's own path, so ``../`` cannot
escape), with limits on count and size against archive bombs.
"""

from __future__ import annotations

import io
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from engine.audio import AudioError, AudioFormat, decode_bytes

ARCHIVE_TYPES = {"application/zip": "zip", "application/gzip": "gzip", "application/x-gzip": "gzip",
                 "application/x-tar": "tar", "application/x-gtar": "gzip"}
MAX_MEMBERS = 10_000
MAX_UNPACKED_BYTES = 1024 ** 3
TRANSCRIPTS = "transcripts.tsv"


@dataclass
class Processed:
    """What processing found: Watson's ``details``, the duration, and the files to train on."""

    duration_s: float
    details: dict
    items: list[dict] = field(default_factory=list)  # {"path": relative, "transcript": str | None, "duration": s}


def _audio_details(data: bytes, content_type: str | None, min_rate_hz: int) -> tuple[float, int]:
    samples, rate = decode_bytes(data, content_type)
    if rate < min_rate_hz:
        raise AudioError(f"the audio's sample rate {rate} Hz is below the base model's {min_rate_hz} Hz")
    return samples.size / rate, rate


def process(data: bytes, *, content_type: str, contained_content_type: str | None, transcript: str | None,
            min_rate_hz: int, out_dir: Path, rel_dir: str) -> Processed:
    """Validate and measure a resource; extract an archive's audio files into ``out_dir``.

    Args:
        data: the uploaded bytes.
        content_type: the request's ``Content-Type``.
        contained_content_type: an archive's ``Contained-Content-Type`` (None: auto-detect each member).
        transcript: a single file's transcript (``Transcript`` header), if any.
        min_rate_hz: the base model's rate (lower rates are invalid).
        out_dir: where extracted members go (absolute), ``rel_dir`` the same relative to the data directory.

    Raises:
        AudioError: undecodable audio, a bad archive, or an archive without audio (the message says which).
    """
    mime = AudioFormat.parse(content_type).mime if content_type else "application/octet-stream"
    kind = ARCHIVE_TYPES.get(mime)
    if kind is None:
        duration, rate = _audio_details(data, content_type, min_rate_hz)
        codec = mime.split("/", 1)[1] if "/" in mime else mime
        return Processed(duration, {"type": "audio", "codec": codec, "frequency": rate},
                         [{"path": None, "transcript": transcript, "duration": duration}])
    members = _members(data, kind)
    transcripts: dict[str, str] = {}
    if TRANSCRIPTS in members:
        for line in members.pop(TRANSCRIPTS).decode("utf-8", errors="replace").splitlines():
            if "\t" in line:
                name, text = line.split("\t", 1)
                transcripts[name.strip()] = text.strip()
    out_dir.mkdir(parents=True, exist_ok=True)
    items, total, bad = [], 0.0, []
    for i, (name, payload) in enumerate(sorted(members.items())):
        try:
            duration, _rate = _audio_details(payload, contained_content_type, min_rate_hz)
        except AudioError as exc:
            bad.append(f"{name}: {exc}")
            continue
        path = out_dir / f"{i:05d}.audio"
        path.write_bytes(payload)
        base = name.rsplit("/", 1)[-1]
        text = transcripts.get(name, transcripts.get(base, transcripts.get(base.rsplit(".", 1)[0])))
        items.append({"path": f"{rel_dir}/{path.name}", "transcript": text, "duration": duration,
                      "content_type": contained_content_type})
        total += duration
    if not items:
        reason = f" ({'; '.join(bad[:3])})" if bad else ""
        raise AudioError(f"the archive holds no usable audio files{reason}")
    details = {"type": "archive", "compression": kind}
    if bad:
        details["invalid_members"] = bad[:20]
    return Processed(total, details, items)


def _members(data: bytes, kind: str) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    unpacked = 0
    try:
        if kind == "zip":
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                infos = [i for i in archive.infolist() if not i.is_dir()]
                if len(infos) > MAX_MEMBERS:
                    raise AudioError(f"the archive has more than {MAX_MEMBERS} files")
                for info in infos:
                    unpacked += info.file_size
                    if unpacked > MAX_UNPACKED_BYTES:
                        raise AudioError(f"the archive unpacks to more than {MAX_UNPACKED_BYTES} bytes")
                    out[info.filename] = archive.read(info)
        else:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz" if kind == "gzip" else "r:") as archive:
                for member in archive:
                    if not member.isfile():
                        continue
                    if len(out) >= MAX_MEMBERS:
                        raise AudioError(f"the archive has more than {MAX_MEMBERS} files")
                    unpacked += member.size
                    if unpacked > MAX_UNPACKED_BYTES:
                        raise AudioError(f"the archive unpacks to more than {MAX_UNPACKED_BYTES} bytes")
                    fh = archive.extractfile(member)
                    if fh is not None:
                        out[member.name] = fh.read()
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        raise AudioError(f"not a readable {kind} archive: {exc}") from exc
    return {name: payload for name, payload in out.items() if not name.rsplit("/", 1)[-1].startswith(".")}
