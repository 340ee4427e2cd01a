"""Streaming training text from a real S3-compatible server (moto, started by ``scripts/s3.sh``)."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from protocol.errors import InvalidParameter, TooLarge
from server.config import S3Config
from server.runtime.s3text import ReadCancelled, S3Location, read_text, read_text_sync, s3_client

pytestmark = pytest.mark.timeout(120)


@pytest.fixture()
def s3(s3_url: str) -> Iterator:
    """A client for the test S3 server."""
    client = s3_client(S3Config(endpoint_url=s3_url, access_key_id="testing", secret_access_key="testing"))
    yield client
    client.close()


@pytest.fixture()
def bucket(s3) -> str:
    """A fresh, empty bucket."""
    name = f"voxgate-test-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_every_object_under_the_prefix_in_key_order_across_pages(s3, bucket, tmp_path) -> None:
    texts = {f"train/part-{i:02d}.txt": f"line {i} of the training text\n" for i in range(7)}
    for key, text in texts.items():
        s3.put_object(Bucket=bucket, Key=key, Body=text.encode())
    s3.put_object(Bucket=bucket, Key="train/", Body=b"")  # a console's "folder" marker
    s3.put_object(Bucket=bucket, Key="other/not-this.txt", Body=b"elsewhere\n")
    destination = tmp_path / "out" / "train.txt"
    read = asyncio.run(read_text(s3, f"s3://{bucket}/train/", destination, limit_bytes=10_000, page_size=2))
    assert read.keys == tuple(sorted(texts))
    assert read.bytes_read == sum(len(t.encode()) for t in texts.values())
    assert destination.read_text(encoding="utf-8") == "".join(texts[k] for k in sorted(texts))
    assert _leftovers(destination.parent) == ["train.txt"]


def test_a_single_key_and_the_joins_between_objects(s3, bucket, tmp_path) -> None:
    s3.put_object(Bucket=bucket, Key="a.txt", Body="\ufefffirst line without newline".encode())
    s3.put_object(Bucket=bucket, Key="b.txt", Body=b"")
    s3.put_object(Bucket=bucket, Key="c.txt", Body="\ufeffsecond".encode())
    destination = tmp_path / "text.txt"
    read = read_text_sync(s3, f"s3://{bucket}", destination, limit_bytes=1000, chunk_bytes=1)
    assert read.keys == ("a.txt", "b.txt", "c.txt")
    # Byte-order marks dropped; a newline between objects so lines never run together.
    assert destination.read_text(encoding="utf-8") == "first line without newline\nsecond"
    one = read_text_sync(s3, f"s3://{bucket}/c.txt", tmp_path / "one.txt", limit_bytes=1000)
    assert one.keys == ("c.txt",) and (tmp_path / "one.txt").read_text(encoding="utf-8") == "second"


@pytest.mark.parametrize("chunk_bytes", [1, 2, 3, 5, 7])
def test_utf8_split_inside_characters_across_chunks(s3, bucket, tmp_path, chunk_bytes) -> None:
    text = "naïve café – 東京 🙂 straße\n" * 3  # 2-, 3- and 4-byte characters
    s3.put_object(Bucket=bucket, Key="t/multi.txt", Body=text.encode())
    destination = tmp_path / "multi.txt"
    read = read_text_sync(s3, f"s3://{bucket}/t/", destination, limit_bytes=1000, chunk_bytes=chunk_bytes)
    assert destination.read_bytes() == text.encode() and read.bytes_read == len(text.encode())


@pytest.mark.parametrize(("body", "expected"), [
    ("good text ".encode() * 3 + b"\xff\xfe" + b" more", "'t/bad.bin' is not UTF-8 text: it has the byte 0xff at offset 30"),
    ("ends mid-character ".encode() + "東".encode()[:2], "'t/bad.bin' is not UTF-8 text: it ends inside a character"),
    (b"PK\x03\x04\x00\x00zip", "'t/bad.bin' is not plain text: it has a NUL byte at offset 4"),
])
def test_a_non_text_object_is_named_and_nothing_is_written(s3, bucket, tmp_path, body, expected) -> None:
    s3.put_object(Bucket=bucket, Key="t/a-good.txt", Body=b"fine\n")
    s3.put_object(Bucket=bucket, Key="t/bad.bin", Body=body)
    destination = tmp_path / "text.txt"
    destination.write_text("the previous training text")
    with pytest.raises(InvalidParameter) as caught:
        read_text_sync(s3, f"s3://{bucket}/t/", destination, limit_bytes=1000, chunk_bytes=4)
    assert expected in caught.value.message
    assert caught.value.aws_type == "BadRequestException" and caught.value.http_status == 400
    assert destination.read_text() == "the previous training text" and _leftovers(tmp_path) == ["text.txt"]


def test_an_empty_prefix(s3, bucket, tmp_path) -> None:
    s3.put_object(Bucket=bucket, Key="elsewhere/x.txt", Body=b"x")
    with pytest.raises(InvalidParameter, match=rf"there are no objects under s3://{bucket}/train/"):
        read_text_sync(s3, f"s3://{bucket}/train/", tmp_path / "text.txt", limit_bytes=1000)
    assert _leftovers(tmp_path) == []


def test_a_missing_bucket(s3, tmp_path) -> None:
    with pytest.raises(InvalidParameter, match="the S3 bucket 'voxgate-no-such-bucket' does not exist"):
        read_text_sync(s3, "s3://voxgate-no-such-bucket/train/", tmp_path / "text.txt", limit_bytes=1000)


def test_over_the_limit_before_anything_is_downloaded(s3, bucket, tmp_path) -> None:
    for i in range(3):
        s3.put_object(Bucket=bucket, Key=f"t/{i}.txt", Body=b"0123456789")
    with pytest.raises(TooLarge, match=rf"the objects under s3://{bucket}/t/ hold 30 bytes, over the limit of 25 bytes"):
        read_text_sync(s3, f"s3://{bucket}/t/", tmp_path / "text.txt", limit_bytes=25)
    assert _leftovers(tmp_path) == []
    assert read_text_sync(s3, f"s3://{bucket}/t/", tmp_path / "text.txt", limit_bytes=30).bytes_read == 30


def test_a_cancelled_read_writes_nothing(s3, bucket, tmp_path) -> None:
    s3.put_object(Bucket=bucket, Key="t/x.txt", Body=b"some text")
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(ReadCancelled):
        read_text_sync(s3, f"s3://{bucket}/t/", tmp_path / "text.txt", limit_bytes=1000, cancel=cancel)
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("uri", ["http://bucket/x", "s3:/bucket/x", "s3://", "s3:///prefix", "s3://ab/x",
                                 "s3://Upper-Case/x", "s3://bad..dots/x", "s3://-leading/x", 42])
def test_bad_uris(uri) -> None:
    with pytest.raises(InvalidParameter, match="S3 URI"):
        S3Location.parse(uri)


def test_good_uris() -> None:
    assert S3Location.parse("s3://my.bucket-1/train/data/") == S3Location("my.bucket-1", "train/data/")
    assert S3Location.parse("s3://bucket") == S3Location("bucket", "")
    assert str(S3Location("bucket", "a/b")) == "s3://bucket/a/b"
