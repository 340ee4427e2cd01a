"""Audio resources of custom acoustic models: single files, zip and tar.gz archives with transcripts,
and the archives a careless or hostile user might send."""

from __future__ import annotations

import io
import tarfile
import zipfile

import pytest

from engine.audio import AudioError
from server.runtime.audio_resources import process
from tests.conftest import FIXTURES

WAV = (FIXTURES / "hello.wav").read_bytes()


def run(data: bytes, content_type: str, tmp_path, **kw):
    options = {"contained_content_type": None, "transcript": None, "min_rate_hz": 8000}
    options.update(kw)
    return process(data, content_type=content_type, out_dir=tmp_path / "files", rel_dir="r", **options)


def zipped(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, payload in members.items():
            z.writestr(name, payload)
    return buf.getvalue()


def tarred(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            t.addfile(info, io.BytesIO(payload))
    return buf.getvalue()


def test_a_single_file_with_its_transcript(tmp_path):
    found = run(WAV, "audio/wav", tmp_path, transcript="hello world")
    assert found.details["type"] == "audio" and found.details["frequency"] >= 8000
    assert found.duration_s > 0.3
    assert found.items == [{"path": None, "transcript": "hello world", "duration": found.duration_s}]


def test_a_zip_with_transcripts(tmp_path):
    data = zipped({"a.wav": WAV, "dir/b.wav": WAV, "transcripts.tsv": b"a.wav\tfirst one\ndir/b.wav\tsecond\n",
                   ".DS_Store": b"junk"})
    found = run(data, "application/zip", tmp_path, contained_content_type="audio/wav")
    assert found.details == {"type": "archive", "compression": "zip"}
    assert [i["transcript"] for i in found.items] == ["first one", "second"]
    assert all((tmp_path / "files" / i["path"].split("/", 1)[1]).read_bytes() == WAV for i in found.items)


def test_a_tar_gz_whose_member_names_try_to_escape(tmp_path):
    data = tarred({"../../evil.wav": WAV, "transcripts.tsv": b"evil\tno escape\n"})
    found = run(data, "application/gzip", tmp_path)
    [item] = found.items
    assert item["path"] == "r/00000.audio" and item["transcript"] == "no escape"  # matched by stem
    assert sorted(p.name for p in (tmp_path / "files").iterdir()) == ["00000.audio"]
    assert not (tmp_path.parent / "evil.wav").exists()


def test_bad_resources_say_what_is_wrong(tmp_path):
    with pytest.raises(AudioError, match="not a readable zip archive"):
        run(b"PK\x03\x04 broken" * 20, "application/zip", tmp_path)
    with pytest.raises(AudioError, match="no usable audio files"):
        run(zipped({"notes.txt": b"hello"}), "application/zip", tmp_path)
    with pytest.raises(AudioError, match="8000 Hz is below the base model's 16000 Hz"):
        run((FIXTURES / "phone.wav").read_bytes(), "audio/wav", tmp_path, min_rate_hz=16000)
    with pytest.raises(AudioError):
        run(b"\x00" * 500, "audio/flac", tmp_path)


def _deflated(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, payload in members.items():
            z.writestr(name, payload)
    return buf.getvalue()


def test_archive_bombs_are_refused_on_what_they_unpack_to(tmp_path, monkeypatch):
    # issue 13, defect 2: a 0.97 MB zip of 1000 MB of zeros was accepted (RSS +4.8 GB, 954 MB written)
    import server.runtime.audio_resources as ar

    zeros = b"\0" * (40 * 1024 ** 2)  # 40 MB of zeros deflate to ~40 kB
    bomb = _deflated({"silence.l16": zeros})
    assert len(bomb) < 100_000
    with pytest.raises(AudioError, match="more than 20 times its size"):
        run(bomb, "application/zip", tmp_path, contained_content_type="audio/l16;rate=8000")
    assert not list((tmp_path / "files").glob("*.audio"))  # refused before a byte of it was written
    monkeypatch.setattr(ar, "MAX_MEMBER_BYTES", 1024 ** 2)
    with pytest.raises(AudioError, match="member 'big.wav' unpacks to more than 1048576 bytes"):
        run(zipped({"big.wav": b"\1" * (2 * 1024 ** 2)}), "application/zip", tmp_path)
    lying = bytearray(zipped({"a.wav": WAV}))  # a member whose header understates its size is still counted
    monkeypatch.setattr(ar, "MAX_UNPACKED_BYTES", len(WAV) - 1)
    with pytest.raises(AudioError, match="unpacks to more than"):
        run(bytes(lying), "application/zip", tmp_path)


def test_the_models_hours_of_audio_are_capped(tmp_path):
    with pytest.raises(AudioError, match="at most 200 hours of audio, 0.00 hours are left"):
        run(WAV, "audio/wav", tmp_path, max_seconds=0.1)
    with pytest.raises(AudioError, match="hours are left"):
        run(zipped({"a.wav": WAV, "b.wav": WAV}), "application/zip", tmp_path, max_seconds=1.5 * len(WAV) / 32000)
