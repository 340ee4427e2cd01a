"""The AWS event-stream binary format (``application/vnd.amazon.eventstream``), sans I/O.

Message layout, all integers big-endian::

    [0..3]  total length (uint32)        [4..7]  headers length (uint32)
    [8..11] prelude CRC-32 of bytes 0..7
    headers | payload (total - headers length - 16 bytes)
    [-4..]  message CRC-32 of every byte before it

A header is ``name length (uint8) | name | type (uint8) | value``; the types
are listed in :class:`HeaderType`. CRC-32 is zlib's. Limits follow the AWS
SDKs: headers ≤ 128 KiB, a string or bytes value ≤ 32767 bytes, payload ≤ 16 MiB.

:class:`EventStreamDecoder` takes bytes as they arrive (a message may be split
across WebSocket frames or HTTP chunks, several may share one) and returns the
complete messages.
"""

from __future__ import annotations

import datetime as dt
import struct
import uuid
import zlib
from dataclasses import dataclass, field
from enum import IntEnum

from protocol.errors import MalformedMessage, TooLarge

PRELUDE_BYTES = 12
CRC_BYTES = 4
MIN_MESSAGE_BYTES = PRELUDE_BYTES + CRC_BYTES
MAX_HEADERS_BYTES = 128 * 1024
MAX_PAYLOAD_BYTES = 16 * 1024 * 1024
MAX_VALUE_BYTES = 32767


class HeaderType(IntEnum):
    """Header value types of the event-stream format."""

    TRUE = 0
    FALSE = 1
    BYTE = 2
    SHORT = 3
    INTEGER = 4
    LONG = 5
    BYTES = 6
    STRING = 7
    TIMESTAMP = 8
    UUID = 9


_INT_FORMATS = {HeaderType.BYTE: ">b", HeaderType.SHORT: ">h", HeaderType.INTEGER: ">i", HeaderType.LONG: ">q"}
HeaderValue = bool | int | bytes | str | dt.datetime | uuid.UUID


@dataclass(frozen=True)
class Header:
    """One typed header."""

    name: str
    type: HeaderType
    value: HeaderValue

    @classmethod
    def of(cls, name: str, value: HeaderValue) -> Header:
        """A header whose type follows the Python value (int becomes a 32-bit integer)."""
        if isinstance(value, bool):
            return cls(name, HeaderType.TRUE if value else HeaderType.FALSE, value)
        if isinstance(value, int):
            return cls(name, HeaderType.INTEGER, value)
        if isinstance(value, bytes):
            return cls(name, HeaderType.BYTES, value)
        if isinstance(value, str):
            return cls(name, HeaderType.STRING, value)
        if isinstance(value, dt.datetime):
            return cls(name, HeaderType.TIMESTAMP, value)
        if isinstance(value, uuid.UUID):
            return cls(name, HeaderType.UUID, value)
        raise TypeError(f"no event-stream header type for {type(value).__name__}")

    def encode(self) -> bytes:
        """Wire form of the header."""
        name = self.name.encode("utf-8")
        if not 0 < len(name) <= 255:
            raise ValueError(f"header name must be 1-255 bytes, got {len(name)}")
        out = struct.pack(">B", len(name)) + name + struct.pack(">B", self.type)
        t = self.type
        if t in (HeaderType.TRUE, HeaderType.FALSE):
            return out
        if t in _INT_FORMATS:
            return out + struct.pack(_INT_FORMATS[t], self.value)
        if t in (HeaderType.BYTES, HeaderType.STRING):
            raw = self.value.encode("utf-8") if t == HeaderType.STRING else self.value
            if len(raw) > MAX_VALUE_BYTES:
                raise ValueError(f"header {self.name!r} value of {len(raw)} bytes exceeds {MAX_VALUE_BYTES}")
            return out + struct.pack(">H", len(raw)) + raw
        if t == HeaderType.TIMESTAMP:
            millis = round(self.value.timestamp() * 1000)
            return out + struct.pack(">q", millis)
        return out + self.value.bytes


@dataclass(frozen=True)
class Message:
    """One event-stream message: typed headers and a payload."""

    headers: tuple[Header, ...] = field(default_factory=tuple)
    payload: bytes = b""

    @classmethod
    def build(cls, headers: dict[str, HeaderValue], payload: bytes = b"") -> Message:
        """A message from plain values (see :meth:`Header.of` for the types)."""
        return cls(tuple(Header.of(k, v) for k, v in headers.items()), payload)

    def header(self, name: str, default: HeaderValue | None = None) -> HeaderValue | None:
        """The value of the first header called `name`."""
        return next((h.value for h in self.headers if h.name == name), default)

    def encode(self) -> bytes:
        """Wire form: prelude, prelude CRC, headers, payload, message CRC."""
        headers = b"".join(h.encode() for h in self.headers)
        if len(headers) > MAX_HEADERS_BYTES:
            raise ValueError(f"headers of {len(headers)} bytes exceed {MAX_HEADERS_BYTES}")
        if len(self.payload) > MAX_PAYLOAD_BYTES:
            raise ValueError(f"payload of {len(self.payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
        total = MIN_MESSAGE_BYTES + len(headers) + len(self.payload)
        prelude = struct.pack(">II", total, len(headers))
        body = prelude + struct.pack(">I", zlib.crc32(prelude)) + headers + self.payload
        return body + struct.pack(">I", zlib.crc32(body))

    @classmethod
    def decode(cls, data: bytes) -> Message:
        """Decode exactly one message.

        Raises:
            MalformedMessage: truncated or trailing bytes, bad CRC, bad header.
            TooLarge: over the format's limits.
        """
        decoder = EventStreamDecoder()
        messages = decoder.feed(data)
        if len(messages) != 1 or decoder.buffered:
            raise MalformedMessage(f"expected one event-stream message, got {len(messages)} "
                                   f"and {decoder.buffered} leftover bytes")
        return messages[0]


def _decode_headers(raw: bytes) -> tuple[Header, ...]:
    headers, i = [], 0
    try:
        while i < len(raw):
            name_len = raw[i]
            name = raw[i + 1 : i + 1 + name_len].decode("utf-8")
            i += 1 + name_len
            kind = HeaderType(raw[i])
            i += 1
            if kind in (HeaderType.TRUE, HeaderType.FALSE):
                value: HeaderValue = kind == HeaderType.TRUE
            elif kind in _INT_FORMATS:
                size = struct.calcsize(_INT_FORMATS[kind])
                (value,) = struct.unpack(_INT_FORMATS[kind], raw[i : i + size])
                i += size
            elif kind in (HeaderType.BYTES, HeaderType.STRING):
                (length,) = struct.unpack(">H", raw[i : i + 2])
                chunk = raw[i + 2 : i + 2 + length]
                if len(chunk) != length:
                    raise MalformedMessage(f"header {name!r} value is truncated")
                value = chunk.decode("utf-8") if kind == HeaderType.STRING else bytes(chunk)
                i += 2 + length
            elif kind == HeaderType.TIMESTAMP:
                (millis,) = struct.unpack(">q", raw[i : i + 8])
                value = dt.datetime.fromtimestamp(millis / 1000, tz=dt.timezone.utc)
                i += 8
            else:
                if i + 16 > len(raw):
                    raise MalformedMessage(f"header {name!r} uuid is truncated")
                value = uuid.UUID(bytes=bytes(raw[i : i + 16]))
                i += 16
            if not name:
                raise MalformedMessage("empty header name")
            headers.append(Header(name, kind, value))
    except (struct.error, IndexError, ValueError, UnicodeDecodeError) as exc:
        if isinstance(exc, MalformedMessage):
            raise
        raise MalformedMessage(f"malformed event-stream header at byte {i}: {exc}") from exc
    return tuple(headers)


class EventStreamDecoder:
    """Incremental decoder: ``feed(bytes) -> [Message, ...]``, keeping partial messages."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    @property
    def buffered(self) -> int:
        """Bytes of an incomplete message held so far."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Message]:
        """Add bytes; return every message they complete.

        Raises:
            MalformedMessage: a bad prelude or message CRC, lengths that do not add up, a bad header.
            TooLarge: a message over the format's limits.
        """
        self._buffer += data
        out = []
        while len(self._buffer) >= PRELUDE_BYTES:
            total, headers_len, prelude_crc = struct.unpack(">III", self._buffer[:PRELUDE_BYTES])
            if zlib.crc32(self._buffer[:8]) != prelude_crc:
                raise MalformedMessage("event-stream prelude CRC mismatch")
            if headers_len > MAX_HEADERS_BYTES:
                raise TooLarge(f"event-stream headers of {headers_len} bytes exceed {MAX_HEADERS_BYTES}")
            if total < MIN_MESSAGE_BYTES + headers_len:
                raise MalformedMessage(f"event-stream total length {total} is shorter than its headers and framing")
            if total - MIN_MESSAGE_BYTES - headers_len > MAX_PAYLOAD_BYTES:
                raise TooLarge(f"event-stream payload exceeds {MAX_PAYLOAD_BYTES} bytes")
            if len(self._buffer) < total:
                break
            raw = bytes(self._buffer[:total])
            del self._buffer[:total]
            (message_crc,) = struct.unpack(">I", raw[-CRC_BYTES:])
            if zlib.crc32(raw[:-CRC_BYTES]) != message_crc:
                raise MalformedMessage("event-stream message CRC mismatch")
            headers = _decode_headers(raw[PRELUDE_BYTES : PRELUDE_BYTES + headers_len])
            out.append(Message(headers, raw[PRELUDE_BYTES + headers_len : -CRC_BYTES]))
        return out
