"""Audio content types: what the ``Content-Type`` of a request (or Watson's ``content-type`` start field) says.

One parser for the server, the clients and the CLI. :func:`parse_content_type` turns
``audio/l16; rate=16000; endianness=little-endian`` into an :class:`AudioType`: the encoding the
bytes are in and, for headerless audio, their rate, channels and byte order. The engine decodes from
those values (it does not import this module); the clients read durations from them.

Media types follow IBM's list of Watson audio formats (PROTOCOLS.md §1.2) with their common aliases:
headerless ``audio/l16`` (RFC 2586: linear 16-bit PCM, network byte order unless
``endianness=little-endian``), ``audio/mulaw``, ``audio/alaw`` and ``audio/basic`` (RFC 2046:
8 kHz µ-law); containers WAV, FLAC, Ogg (Watson's ``audio/opus`` is Ogg Opus), MP3 and WebM; and
``application/octet-stream`` (or no type at all), whose container is recognised from its bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from protocol.errors import InvalidParameter, UnsupportedMedia


class Encoding(StrEnum):
    """How the bytes of a media type are laid out; the values are what the engine's decoder takes."""

    L16 = "l16"      # headerless linear 16-bit PCM
    MULAW = "mulaw"  # headerless G.711 µ-law
    ALAW = "alaw"    # headerless G.711 A-law
    WAV = "wav"
    FLAC = "flac"
    OGG = "ogg"
    MP3 = "mp3"
    WEBM = "webm"
    DETECT = "detect"  # a container recognised from its first bytes

    @property
    def headerless(self) -> bool:
        """Whether the bytes are bare samples, so that rate and channels come from the content type."""
        return self in (Encoding.L16, Encoding.MULAW, Encoding.ALAW)

    @property
    def sample_bytes(self) -> int:
        """Bytes per sample of a headerless encoding (2 for l16, 1 for G.711).

        Raises:
            ValueError: a container encoding (its samples have no fixed size).
        """
        if not self.headerless:
            raise ValueError(f"{self.value} is a container: its samples have no fixed size")
        return 2 if self is Encoding.L16 else 1


#: Every media type voxgate decodes, lower-case, and the encoding of its bytes.
MEDIA_TYPES: Mapping[str, Encoding] = MappingProxyType({
    "audio/l16": Encoding.L16, "audio/mulaw": Encoding.MULAW, "audio/basic": Encoding.MULAW,
    "audio/alaw": Encoding.ALAW,
    "audio/wav": Encoding.WAV, "audio/x-wav": Encoding.WAV, "audio/wave": Encoding.WAV, "audio/vnd.wave": Encoding.WAV,
    "audio/flac": Encoding.FLAC, "audio/x-flac": Encoding.FLAC,
    "audio/ogg": Encoding.OGG, "audio/opus": Encoding.OGG,
    "audio/mp3": Encoding.MP3, "audio/mpeg": Encoding.MP3,
    "audio/webm": Encoding.WEBM,
    "application/octet-stream": Encoding.DETECT,
})

#: ``audio/basic`` is 8 kHz µ-law by definition (RFC 2046 §4.3); a ``rate`` parameter may still say otherwise.
BASIC_RATE_HZ = 8000

_ENDIANNESS = {"big-endian": True, "little-endian": False}


@dataclass(frozen=True)
class AudioType:
    """A parsed audio content type.

    Attributes:
        media_type: the lower-case type without parameters, e.g. ``audio/l16``.
        encoding: how its bytes are laid out.
        rate_hz: the declared sample rate; always set for headerless encodings, else None unless given.
        channels: interleaved channels of headerless audio (1 unless given).
        big_endian: the byte order of ``audio/l16`` samples (network order unless given).
        params: every parameter, names lower-case, values unquoted (``codecs``, ...).
    """

    media_type: str
    encoding: Encoding
    rate_hz: int | None = None
    channels: int = 1
    big_endian: bool = True
    params: Mapping[str, str] = field(default_factory=dict, compare=False)

    @property
    def frame_bytes(self) -> int:
        """Bytes per frame (a sample of each channel) of headerless audio.

        Raises:
            ValueError: a container type.
        """
        return self.encoding.sample_bytes * self.channels


#: No content type at all: the container is recognised from its bytes.
DETECT = AudioType("application/octet-stream", Encoding.DETECT)


def split_content_type(text: str) -> tuple[str, dict[str, str]]:
    """``'Audio/L16; rate="8000"'`` -> ``("audio/l16", {"rate": "8000"})``: RFC 2045 syntax, any media type.

    Tolerant of case, spaces, quotes and empty parameters (``audio/wav;``).

    Raises:
        InvalidParameter: a parameter without ``=``.
    """
    media_type, *rest = [part.strip() for part in text.split(";")]
    params: dict[str, str] = {}
    for part in rest:
        if not part:
            continue
        name, sep, value = part.partition("=")
        if not sep:
            raise InvalidParameter(f"malformed content-type parameter {part!r} in {text!r}")
        params[name.strip().lower()] = value.strip().strip('"')
    return media_type.lower(), params


def parse_content_type(text: str | None) -> AudioType:
    """Parse an audio content type such as ``audio/l16; rate=16000; channels=1; endianness=little-endian``.

    Args:
        text: the content type; None or blank means none was given (:data:`DETECT`).

    Returns:
        The type's encoding and, for headerless audio, its rate (``audio/basic``: 8000 Hz unless given),
        channels and byte order.

    Raises:
        UnsupportedMedia: a media type voxgate does not decode.
        InvalidParameter: a malformed parameter; a rate or channel count that is not a positive integer; an
            endianness other than ``big-endian`` or ``little-endian``; headerless audio (but ``audio/basic``)
            without a rate.
    """
    if text is None or not text.strip():
        return DETECT
    media_type, params = split_content_type(text)
    encoding = MEDIA_TYPES.get(media_type)
    if encoding is None:
        raise UnsupportedMedia(f"unsupported audio type {media_type!r}")
    rate = _positive_int(params, "rate", text)
    channels = _positive_int(params, "channels", text) or 1
    endianness = params.get("endianness", "big-endian").lower()
    if endianness not in _ENDIANNESS:
        raise InvalidParameter(f"endianness must be big-endian or little-endian, got {endianness!r}")
    if rate is None and media_type == "audio/basic":
        rate = BASIC_RATE_HZ
    if rate is None and encoding.headerless:
        raise InvalidParameter(f"{media_type} needs a rate parameter, e.g. '{media_type};rate=8000'")
    return AudioType(media_type, encoding, rate, channels, _ENDIANNESS[endianness], MappingProxyType(params))


def _positive_int(params: Mapping[str, str], name: str, text: str) -> int | None:
    """The integer parameter ``name`` (None when absent).

    Raises:
        InvalidParameter: not an integer, or not positive.
    """
    value = params.get(name)
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        raise InvalidParameter(f"{name} must be an integer in {text!r}, got {value!r}") from None
    if number <= 0:
        raise InvalidParameter(f"{name} must be positive in {text!r}, got {number}")
    return number


#: Content types by file suffix, for files named without one (headerless ones at the rate voxgate's CLIs assume).
SUFFIX_CONTENT_TYPES: Mapping[str, str] = MappingProxyType({
    ".wav": "audio/wav", ".wave": "audio/wav", ".flac": "audio/flac",
    ".raw": "audio/l16;rate=16000", ".pcm": "audio/l16;rate=16000", ".l16": "audio/l16;rate=16000",
    ".ulaw": "audio/mulaw;rate=8000", ".mulaw": "audio/mulaw;rate=8000", ".alaw": "audio/alaw;rate=8000",
})


def content_type_for_suffix(suffix: str) -> str | None:
    """The content type a file suffix (``.raw``, ``.WAV``) implies; None when it implies none."""
    return SUFFIX_CONTENT_TYPES.get(suffix.lower())
