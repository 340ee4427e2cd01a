"""Training text read from S3 as a stream: every object under an ``s3://`` prefix, checked, into one file.

A custom language model's ``InputDataConfig.S3Uri`` (up to 2 GB) and ``TuningDataS3Uri`` (up to
200 MB) name a folder or a file in a bucket (PROTOCOLS.md §2.6). :func:`read_text` lists every
object under the prefix (all pages, in key order), reads each one in chunks, checks that it is
UTF-8 text — incrementally, so a character split between two chunks is fine and a bad byte is
reported with its object and offset — and appends it to a temporary file beside the destination,
which is fsynced and renamed into place only when everything was read. No object is ever held
whole in memory, and a failed read leaves no file behind.

The concatenation: a UTF-8 byte-order mark at the start of an object is dropped, and a newline is
put between two objects when the first does not end with one, so the last line of one file never
runs into the first line of the next. Zero-byte keys ending in ``/`` (the "folders" that S3
consoles create) are skipped. The limit counts the objects' bytes as stored; it is checked on the
listing before anything is downloaded, and again while reading (an object may grow in between).

Why boto3 in a worker thread and not aiobotocore: the whole read is one blocking pipeline
(network reads, file writes, fsync) that belongs off the event loop anyway, and one
``asyncio.to_thread`` call keeps it there with the official, synchronous client, whose version
moves in lockstep with the installed botocore; aiobotocore pins its own narrow botocore range,
which would fight the botocore the tests use for Transcribe's shapes, and would still need a
thread for the file writes and fsync. Cancelling :func:`read_text` stops the thread at its next
chunk and removes the partial file.

Errors are :mod:`protocol.errors` exceptions: :class:`~protocol.errors.InvalidParameter`
(Transcribe's ``BadRequestException``) for a bad URI, a missing bucket, a prefix with no objects,
a store that refuses the credentials, and an object that is not text (named);
:class:`~protocol.errors.TooLarge` for data over the limit; :class:`~protocol.errors.VoxgateError`
when the store cannot be reached at all.
"""

from __future__ import annotations

import asyncio
import codecs
import os
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import boto3
from botocore.config import Config as BotocoreConfig
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from protocol.errors import InvalidParameter, TooLarge, VoxgateError
from server.config import S3Config

#: Most training text of one custom language model (Transcribe's quota: 2 GB).
TRAINING_LIMIT_BYTES = 2 * 1024 ** 3
#: Most tuning text of one custom language model (Transcribe's quota: 200 MB).
TUNING_LIMIT_BYTES = 200 * 1024 ** 2
#: Bytes read from S3 and written to the file at a time.
CHUNK_BYTES = 1024 * 1024

# S3 bucket naming rules (AWS S3 User Guide, "Bucket naming rules"): 3-63 characters, lower-case
# letters, digits, dots and hyphens, beginning and ending with a letter or digit.
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_BOM = codecs.BOM_UTF8
_DENIED = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403", "AllAccessDisabled"}


@dataclass(frozen=True)
class S3Location:
    """A bucket and a key prefix (empty: the whole bucket), parsed from ``s3://bucket/prefix``."""

    bucket: str
    prefix: str

    @classmethod
    def parse(cls, uri: str) -> S3Location:
        """Read an ``s3://bucket[/prefix]`` URI.

        Raises:
            InvalidParameter: not an ``s3://`` URI, or a bucket name S3 would not accept.
        """
        if not isinstance(uri, str) or not uri.startswith("s3://"):
            raise InvalidParameter(f"expected an S3 URI s3://bucket/prefix, got {uri!r}")
        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        if not _BUCKET.fullmatch(bucket) or ".." in bucket:
            raise InvalidParameter(f"the S3 URI {uri!r} does not name a valid bucket (3-63 characters: "
                                   f"a-z, 0-9, '.', '-'), got {bucket!r}")
        return cls(bucket, prefix)

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


@dataclass(frozen=True)
class S3Object:
    """One object found under a prefix: its key and its size in bytes as listed."""

    key: str
    size_bytes: int


@dataclass(frozen=True)
class TextRead:
    """What :func:`read_text` read.

    Attributes:
        location: the prefix read.
        objects: every object read, in key order.
        bytes_read: the objects' bytes (the quantity the limit counts).
    """

    location: S3Location
    objects: tuple[S3Object, ...]
    bytes_read: int

    @property
    def keys(self) -> tuple[str, ...]:
        """The keys of the objects read, in order."""
        return tuple(o.key for o in self.objects)


class ReadCancelled(Exception):
    """:func:`read_text_sync` stopped because its ``cancel`` event was set; nothing was written."""


def s3_client(config: S3Config) -> Any:
    """A boto3 S3 client for the configured store (path-style addressing when an endpoint is given).

    Clients are thread-safe; close it with ``client.close()`` when done.
    """
    options: dict[str, Any] = {"region_name": config.region}
    if config.endpoint_url:
        options["endpoint_url"] = config.endpoint_url
    if config.access_key_id:
        options["aws_access_key_id"] = config.access_key_id
        options["aws_secret_access_key"] = config.secret_access_key
    # Path-style URLs (http://host/bucket/key): what S3-compatible servers on a plain host:port expect.
    addressing = "path" if config.endpoint_url else "auto"
    return boto3.session.Session().client(
        "s3", config=BotocoreConfig(s3={"addressing_style": addressing},
                                    retries={"mode": "standard", "max_attempts": 3}), **options)


async def read_text(client: Any, uri: str, destination: Path, *, limit_bytes: int,
                    chunk_bytes: int = CHUNK_BYTES, page_size: int = 1000) -> TextRead:
    """Read every object under ``uri`` into ``destination``, off the event loop (see the module docstring).

    Args:
        client: an S3 client (:func:`s3_client`).
        uri: ``s3://bucket/prefix``; a prefix that is a whole key reads that one object.
        destination: the file to write; replaced atomically, only when everything was read.
        limit_bytes: the most bytes all objects together may hold
            (:data:`TRAINING_LIMIT_BYTES`, :data:`TUNING_LIMIT_BYTES`).
        chunk_bytes: bytes read and written at a time.
        page_size: keys asked for per listing request (S3's most is 1000).

    Returns:
        The objects read and their bytes.

    Raises:
        InvalidParameter: a bad URI, a missing bucket, no objects under the prefix, credentials
            the store refuses, or an object that is not UTF-8 text (named, with the offset).
        TooLarge: the objects hold more than ``limit_bytes``.
        VoxgateError: the store could not be reached or gave an unexpected error.
    """
    cancel = threading.Event()
    try:
        return await asyncio.to_thread(read_text_sync, client, uri, destination, limit_bytes=limit_bytes,
                                       chunk_bytes=chunk_bytes, page_size=page_size, cancel=cancel)
    except asyncio.CancelledError:
        cancel.set()
        raise


def read_text_sync(client: Any, uri: str, destination: Path, *, limit_bytes: int, chunk_bytes: int = CHUNK_BYTES,
                   page_size: int = 1000, cancel: threading.Event | None = None) -> TextRead:
    """:func:`read_text` on the calling thread (e.g. in a worker process).

    Raises:
        ReadCancelled: ``cancel`` was set; checked between chunks.
        InvalidParameter, TooLarge, VoxgateError: as :func:`read_text`.
    """
    if limit_bytes < 1 or chunk_bytes < 1 or not 1 <= page_size <= 1000:
        raise ValueError(f"bad read parameters: limit_bytes={limit_bytes}, chunk_bytes={chunk_bytes}, "
                         f"page_size={page_size}")
    location = S3Location.parse(uri)
    cancel = cancel or threading.Event()
    objects = list_objects(client, location, page_size=page_size)
    listed = sum(o.size_bytes for o in objects)
    if listed > limit_bytes:
        raise TooLarge(f"the objects under {location} hold {listed} bytes, over the limit of {limit_bytes} bytes")
    total = 0
    with _atomic_file(destination) as out:
        ends_with_newline = True
        for obj in objects:
            if not ends_with_newline:
                out.write(b"\n")
            size, ends_with_newline = _copy_object(client, location, obj, out, chunk_bytes=chunk_bytes,
                                                   budget_bytes=limit_bytes - total, limit_bytes=limit_bytes,
                                                   cancel=cancel)
            total += size
    return TextRead(location, tuple(objects), total)


def list_objects(client: Any, location: S3Location, *, page_size: int = 1000) -> list[S3Object]:
    """Every object under the prefix, all pages, in key order ("folder" markers left out).

    Raises:
        InvalidParameter: the bucket does not exist or may not be read, or holds nothing under the prefix.
        VoxgateError: the store could not be reached.
    """
    objects: list[S3Object] = []
    paginator = client.get_paginator("list_objects_v2")
    with _s3_errors(location):
        for page in paginator.paginate(Bucket=location.bucket, Prefix=location.prefix,
                                       PaginationConfig={"PageSize": page_size}):
            for entry in page.get("Contents", []):
                if entry["Key"].endswith("/") and entry["Size"] == 0:
                    continue
                objects.append(S3Object(entry["Key"], int(entry["Size"])))
    if not objects:
        raise InvalidParameter(f"there are no objects under {location}; upload the text files there first")
    return objects


def _copy_object(client: Any, location: S3Location, obj: S3Object, out: IO[bytes], *, chunk_bytes: int,
                 budget_bytes: int, limit_bytes: int, cancel: threading.Event) -> tuple[int, bool]:
    """Append one object to ``out`` in chunks, checking UTF-8 as it goes and dropping a leading BOM.

    Returns:
        The object's bytes and whether what was written of it ends with a newline (True when nothing was).
    """
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    size = 0
    head: bytes | None = b""  # the object's first bytes, held until there are enough to tell whether a BOM starts it
    last = b"\n"
    with _s3_errors(location, key=obj.key):
        body = client.get_object(Bucket=location.bucket, Key=obj.key)["Body"]
        try:
            for chunk in body.iter_chunks(chunk_bytes):
                if cancel.is_set():
                    raise ReadCancelled(f"reading {location} was cancelled")
                _check_text(decoder, chunk, obj.key, size)
                size += len(chunk)
                if size > budget_bytes:
                    raise TooLarge(f"the objects under {location} grew past the limit of {limit_bytes} bytes "
                                   f"while they were read (at the object {obj.key!r})")
                if head is not None:
                    head += chunk
                    if len(head) < len(_BOM):
                        continue
                    chunk, head = head.removeprefix(_BOM), None
                if chunk:
                    out.write(chunk)
                    last = chunk[-1:]
        finally:
            body.close()
    _check_text(decoder, b"", obj.key, size, final=True)
    if head:  # an object shorter than a BOM
        out.write(head)
        last = head[-1:]
    return size, last == b"\n"


def _check_text(decoder: codecs.IncrementalDecoder, chunk: bytes, key: str, offset: int, *,
                final: bool = False) -> None:
    """Feed one chunk (at ``offset`` in its object) to the object's UTF-8 decoder.

    Raises:
        InvalidParameter: the bytes are not UTF-8, or hold a NUL (binary data that happens to decode),
            naming the key and the byte offset.
    """
    try:
        decoder.decode(chunk, final=final)
    except UnicodeDecodeError as exc:
        reason = ("ends inside a character" if final
                  else f"has the byte 0x{chunk[exc.start]:02x} at offset {offset + exc.start}")
        raise InvalidParameter(f"the object {key!r} is not UTF-8 text: it {reason}; training data must be "
                               "plain UTF-8 text files") from None
    # 0x00 is never part of a multi-byte UTF-8 sequence, so the byte offset is exact.
    nul = chunk.find(b"\x00")
    if nul >= 0:
        raise InvalidParameter(f"the object {key!r} is not plain text: it has a NUL byte at offset {offset + nul}; "
                               "training data must be plain UTF-8 text files")


@contextmanager
def _atomic_file(destination: Path) -> Iterator[IO[bytes]]:
    """A temporary file beside ``destination``, fsynced and renamed over it on success, removed on failure."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    tmp = destination.with_name(f".{destination.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        with tmp.open("wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, destination)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    # The rename itself survives a crash only once the folder is fsynced.
    fd = os.open(destination.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def _s3_errors(location: S3Location, *, key: str | None = None) -> Iterator[None]:
    """Turn boto3's errors into :mod:`protocol.errors` exceptions that name the bucket or the object."""
    what = f"the object {key!r} in bucket {location.bucket!r}" if key else f"{location}"
    try:
        yield
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code == "NoSuchBucket":
            raise InvalidParameter(f"the S3 bucket {location.bucket!r} does not exist") from None
        if code in ("NoSuchKey", "404"):
            raise InvalidParameter(f"{what} disappeared while it was read") from None
        if code in _DENIED:
            raise InvalidParameter(f"the S3 store refused access to {what} ({code}); check the [s3] "
                                   "credentials") from None
        raise VoxgateError(f"the S3 store failed reading {what} ({code or 'no error code'})") from exc
    except NoCredentialsError:
        raise VoxgateError("no S3 credentials: set [s3] access_key_id and secret_access_key "
                           "(or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)") from None
    except BotoCoreError as exc:
        raise VoxgateError(f"the S3 store could not be reached reading {what}") from exc
