"""The event-stream codec against botocore's own parser, with split messages and fuzzing."""

import datetime as dt
import struct
import uuid
import zlib

import pytest
from botocore.eventstream import EventStreamBuffer
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.errors import MalformedMessage, TooLarge
from protocol.eventstream import EventStreamDecoder, Header, HeaderType, Message

ALL_TYPES = Message((
    Header(":message-type", HeaderType.STRING, "event"),
    Header("flag-true", HeaderType.TRUE, True),
    Header("flag-false", HeaderType.FALSE, False),
    Header("byte", HeaderType.BYTE, -7),
    Header("short", HeaderType.SHORT, -300),
    Header("int", HeaderType.INTEGER, 70000),
    Header("long", HeaderType.LONG, -(2**40)),
    Header("bytes", HeaderType.BYTES, b"\x00\xff"),
    Header("time", HeaderType.TIMESTAMP, dt.datetime(2026, 11, 23, 12, 0, 1, 500000, tzinfo=dt.timezone.utc)),
    Header("id", HeaderType.UUID, uuid.UUID("12345678-1234-5678-1234-567812345678")),
), b"payload bytes")


def test_botocore_reads_what_we_write() -> None:
    buf = EventStreamBuffer()
    buf.add_data(ALL_TYPES.encode())
    (parsed,) = list(buf)
    assert parsed.payload == b"payload bytes"
    assert parsed.headers[":message-type"] == "event"
    assert parsed.headers["flag-true"] is True and parsed.headers["flag-false"] is False
    assert (parsed.headers["byte"], parsed.headers["short"], parsed.headers["int"]) == (-7, -300, 70000)
    assert parsed.headers["long"] == -(2**40)
    assert parsed.headers["bytes"] == b"\x00\xff"
    assert parsed.headers["time"] == 1795435201500  # botocore keeps timestamps as epoch milliseconds
    assert parsed.headers["id"] == uuid.UUID("12345678-1234-5678-1234-567812345678").bytes


def test_round_trip_of_every_header_type() -> None:
    assert Message.decode(ALL_TYPES.encode()) == ALL_TYPES


def test_published_vector_empty_message() -> None:
    # awslabs/aws-c-event-stream test vector "empty_message": 16 bytes, no headers, no payload.
    wire = bytes.fromhex("000000100000000005c248eb7d98c8ff")
    assert Message().encode() == wire
    assert Message.decode(wire) == Message()


@pytest.mark.parametrize("split", [1, 2, 5, 11, 12, 13, 50])
def test_messages_split_at_any_byte_and_joined(split: int) -> None:
    wire = ALL_TYPES.encode() + Message.build({":event-type": "AudioEvent"}, b"\x01" * 100).encode()
    decoder = EventStreamDecoder()
    out = []
    for i in range(0, len(wire), split):
        out += decoder.feed(wire[i : i + split])
    assert [m.payload for m in out] == [b"payload bytes", b"\x01" * 100]
    assert decoder.buffered == 0


def test_bad_crcs_and_lengths_are_refused() -> None:
    wire = bytearray(ALL_TYPES.encode())
    corrupted_payload = bytes(wire[:-6]) + b"X" + bytes(wire[-5:])
    with pytest.raises(MalformedMessage, match="message CRC"):
        Message.decode(corrupted_payload)
    wire[1] ^= 0xFF
    with pytest.raises(MalformedMessage, match="prelude CRC"):
        Message.decode(bytes(wire))
    prelude = struct.pack(">II", 8, 0)
    with pytest.raises(MalformedMessage, match="shorter than its headers"):
        EventStreamDecoder().feed(prelude + struct.pack(">I", zlib.crc32(prelude)))
    with pytest.raises(MalformedMessage, match="expected one"):
        Message.decode(Message().encode() * 2)


def test_oversized_payload_is_refused_before_it_is_buffered() -> None:
    prelude = struct.pack(">II", 17 * 1024 * 1024, 0)
    with pytest.raises(TooLarge, match="payload exceeds"):
        EventStreamDecoder().feed(prelude + struct.pack(">I", zlib.crc32(prelude)))


def test_truncated_header_value() -> None:
    headers = b"\x01a\x07\x00\x10abc"  # claims 16 bytes of string, has 3
    total = 16 + len(headers)
    prelude = struct.pack(">II", total, len(headers))
    body = prelude + struct.pack(">I", zlib.crc32(prelude)) + headers
    with pytest.raises(MalformedMessage, match="truncated"):
        Message.decode(body + struct.pack(">I", zlib.crc32(body)))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_decoder_raises_only_protocol_errors(data: bytes) -> None:
    try:
        EventStreamDecoder().feed(data)
    except (MalformedMessage, TooLarge):
        pass


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=20), st.one_of(st.booleans(), st.integers(-2**31, 2**31 - 1),
       st.binary(max_size=50), st.text(max_size=50)), max_size=6), st.binary(max_size=200))
def test_fuzz_round_trip(headers: dict, payload: bytes) -> None:
    message = Message.build(headers, payload)
    assert Message.decode(message.encode()) == message
    buf = EventStreamBuffer()
    buf.add_data(message.encode())
    assert list(buf)[0].payload == payload
