"""Decode audio as it arrives: bytes cut anywhere in, float32 mono samples at the model's rate out.

:class:`StreamDecoder` takes a parsed content type (an :class:`engine.audio.AudioSpec`, as
:func:`engine.audio.decode_bytes` does); each ``feed`` returns every sample that the bytes so far
complete. Two routes:

* numpy on the caller's thread, for headerless audio (``audio/l16``, ``mulaw``, ``alaw``, ``basic``)
  and 16-bit PCM WAV; a partial frame waits for the next bytes. This is the path of the many
  concurrent telephony and browser streams: no thread, no FFmpeg. WAV headers are read before
  FFmpeg sees the stream because its WAV demuxer reads 64 KiB ahead (an S/PDIF probe, 2 s of 16 kHz
  audio) before its first sample; the caller hands in the reader (:func:`protocol.wav.parse_wav_header`,
  a wire format the engine does not import). Other WAV encodings still go to FFmpeg.
* FFmpeg on one worker thread per stream, for FLAC, Ogg, MP3, WebM and undeclared types. FFmpeg
  pulls its input, so it reads a blocking file-like object; ``feed`` hands over the bytes and waits
  until FFmpeg has decoded what it can and asks for more, so the worker never runs ahead of the
  caller. Demuxers hold some audio back: FFmpeg's FLAC parser looks about ten frames ahead (2.5 s
  at 16 kHz with 4096-sample blocks), Ogg gives out whole pages; ``finish`` flushes everything.

Higher rates are resampled by libsoxr's streaming resampler, piece by piece, so a stream reaches
the model as the same samples as :func:`engine.audio.resample` of the whole file; a rate below the
model's, or above :data:`engine.audio.MAX_RATE_HZ`, is refused as soon as it is known. Errors are :class:`engine.audio.AudioError`; one found
on the worker is raised by the next ``feed`` or ``finish``.
"""

from __future__ import annotations

import enum
import threading
import weakref
from collections.abc import Callable
from typing import Protocol

import av
import numpy as np
import soxr
import torch

from engine.audio import (HEADERLESS, RESAMPLE_QUALITY, AudioError, AudioFormat, AudioSpec, check_rate, demuxer,
                          ffmpeg_error, frame_bytes, frame_to_mono, headerless_rate, unpack_headerless)

THREAD_NAME = "audiostream-ffmpeg"
"""Name of the worker threads, one per FFmpeg-decoded stream (for tests and thread dumps)."""

# Without these, FFmpeg reads up to 5 MB or 5 s of a stream to describe it before the first frame;
# the decoder learns the rest from the frames themselves.
_FFMPEG_OPTIONS = {"probesize": "32", "analyzeduration": "1"}
_WAV_HEADER_MAX_BYTES = 1 << 16


class WavLayout(Protocol):
    """What a WAV header reader tells (:class:`protocol.wav.WavHeader` is one).

    Attributes:
        is_pcm16: the samples are 16-bit little-endian PCM.
        channels, sample_rate_hz: of the samples.
        data_offset: where they start in the stream.
        data_bytes: how many bytes of them (None: to the end).
    """

    @property
    def is_pcm16(self) -> bool: ...

    @property
    def channels(self) -> int: ...

    @property
    def sample_rate_hz(self) -> int: ...

    @property
    def data_offset(self) -> int: ...

    @property
    def data_bytes(self) -> int | None: ...


#: Reads a WAV header from a stream's first bytes: None while they end before the ``data`` chunk; raises
#: (its own error, which becomes the stream's) for a broken header.
WavHeaderReader = Callable[[bytes], WavLayout | None]


class _Resampler:
    """libsoxr's streaming resampler (:mod:`engine.audio`): the same samples as
    :func:`engine.audio.resample` of the whole signal, with memory bounded for any pair of rates."""

    def __init__(self, rate_hz: int, target_hz: int) -> None:
        self._stream = soxr.ResampleStream(rate_hz, target_hz, 1, dtype="float32", quality=RESAMPLE_QUALITY)

    def push(self, samples: torch.Tensor, *, last: bool) -> torch.Tensor:
        """Resample the next samples; ``last`` flushes the resampler's delay line."""
        return torch.from_numpy(self._stream.resample_chunk(samples.numpy().astype(np.float32, copy=False), last=last))


class _Unpacker:
    """Headerless frames from bytes cut anywhere; a partial frame waits for its rest."""

    def __init__(self, spec: AudioSpec, limit_bytes: int | None = None) -> None:
        self.spec = spec
        self._frame_bytes = frame_bytes(spec)
        self._partial = b""
        self._left_bytes = limit_bytes  # a WAV data chunk's size: bytes after it are other chunks

    def push(self, data: bytes) -> np.ndarray:
        """Samples of the whole frames among the held and the new bytes."""
        if self._left_bytes is not None:
            data = data[: self._left_bytes]
            self._left_bytes -= len(data)
        data = self._partial + data
        whole = len(data) - len(data) % self._frame_bytes
        self._partial = data[whole:]
        return unpack_headerless(data[:whole], self.spec)


class _Input(enum.Enum):
    OPEN = "open"
    ENDED = "ended"
    ABANDONED = "abandoned"


class _Worker(enum.Enum):
    RUNNING = "running"
    STARVED = "starved"  # FFmpeg waits in read() for bytes
    DONE = "done"


class _FFmpegThread:
    """FFmpeg decoding one container on a worker thread; FFmpeg reads this object as its file."""

    def __init__(self, demuxer: str | None, head: bytes) -> None:
        self._cond = threading.Condition()
        self._input = bytearray(head)
        self._input_state = _Input.OPEN
        self._worker = _Worker.RUNNING
        self._frames: list[np.ndarray] = []
        self.rate_hz: int | None = None
        self.error: Exception | None = None
        self._thread = threading.Thread(target=self._run, args=(demuxer,), name=THREAD_NAME, daemon=True)
        self._thread.start()

    def read(self, size: int) -> bytes:
        """FFmpeg's input: wait for bytes; b"" (end of file) once the input ended or was abandoned."""
        with self._cond:
            while not self._input and self._input_state is _Input.OPEN:
                self._worker = _Worker.STARVED
                self._cond.notify_all()
                self._cond.wait()
            self._worker = _Worker.RUNNING
            if self._input_state is _Input.ABANDONED:
                return b""
            data = bytes(self._input[:size])  # never more than size: PyAV copies it into a buffer of that size
            del self._input[:size]
            return data

    def push(self, data: bytes, *, last: bool) -> list[np.ndarray]:
        """Hand over bytes and wait until FFmpeg wants more or stopped; return what it decoded."""
        with self._cond:
            if self._worker is not _Worker.DONE:  # bytes after the container's end are left unread
                self._input += data
            if last:
                self._input_state = _Input.ENDED
            self._cond.notify_all()
            self._cond.wait_for(lambda: self._worker is _Worker.DONE
                                or (not last and self._worker is _Worker.STARVED and not self._input))
            frames, self._frames = self._frames, []
        if last:
            self._thread.join()
        return frames

    def _deliver(self, frame: av.AudioFrame) -> bool:
        samples = frame_to_mono(frame)
        with self._cond:
            if self._input_state is _Input.ABANDONED:
                return False
            if self.rate_hz is not None and frame.sample_rate != self.rate_hz:
                raise AudioError(f"the sample rate changed from {self.rate_hz} to {frame.sample_rate} Hz "
                                 "within the stream")
            self.rate_hz = frame.sample_rate
            self._frames.append(samples)
            return True

    def abandon(self, *, join: bool = True) -> None:
        """Stop FFmpeg at its next read or frame; ``join`` waits for the thread to end."""
        with self._cond:
            self._input_state = _Input.ABANDONED
            self._cond.notify_all()
        if join:
            self._thread.join()

    def _run(self, demuxer: str | None) -> None:
        error: Exception | None = None
        try:
            with av.open(self, format=demuxer, options=_FFMPEG_OPTIONS, metadata_errors="replace") as container:
                if not container.streams.audio:
                    raise AudioError("the stream holds no audio")
                cut_frame = None
                for packet in container.demux(container.streams.audio[0]):
                    if cut_frame is not None and packet.size:
                        raise cut_frame  # not the last packet: the data is corrupt
                    try:
                        frames = packet.decode()
                    except av.error.InvalidDataError as exc:
                        # A stream that stops mid-frame (FLAC) fails on its last packet: drop that
                        # frame, keep the audio before it.
                        cut_frame = exc
                        continue
                    for frame in frames:
                        if not self._deliver(frame):
                            return
        except av.error.EOFError:
            error = AudioError("the stream ended before any audio could be decoded")
        except av.error.FFmpegError as exc:
            error = ffmpeg_error(exc)
        except Exception as exc:  # AudioError, or a bug: either is raised on the caller's thread
            error = exc
        finally:
            with self._cond:
                self.error = error
                self._worker = _Worker.DONE
                self._cond.notify_all()


class _Phase(enum.Enum):
    OPEN = "open"
    FAILED = "failed"
    FINISHED = "finished"
    CLOSED = "closed"


class StreamDecoder:
    """Bytes in (cut anywhere), float32 mono samples at the target rate out.

    ``feed`` and ``finish`` are for one caller at a time; ``close`` may come from any thread, also
    while ``finish`` runs. After an error every ``feed``/``finish`` raises it again. For a type that
    FFmpeg decodes, ``feed`` blocks while the worker decodes the bytes (well under a millisecond per
    100 ms of audio) and ``finish`` while it decodes what it held back.

    Args:
        spec: the parsed content type, as for :func:`engine.audio.decode_bytes`
            (:data:`engine.audio.DETECT` recognises the container from its bytes).
        target_rate_hz: the model's sample rate.
        read_wav_header: reads the header of a WAV stream, so that 16-bit PCM WAV is unpacked with
            numpy; without one every WAV goes to FFmpeg (the same samples, later).

    Attributes:
        bytes_in: total bytes fed.

    Raises:
        AudioError: an unsupported encoding, a headerless one without a rate, or a declared rate
            below ``target_rate_hz``.
    """

    def __init__(self, spec: AudioSpec, *, target_rate_hz: int, read_wav_header: WavHeaderReader | None = None,
                 ) -> None:
        self.bytes_in = 0
        self._target_hz = target_rate_hz
        self._phase = _Phase.OPEN
        self._error: Exception | None = None
        self._rate_hz: int | None = None
        self._resampler: _Resampler | None = None
        self._samples_decoded = 0
        self._head = bytearray()  # a container's first bytes, until they say which route decodes it
        self._unpacker: _Unpacker | None = None
        self._ffmpeg: _FFmpegThread | None = None
        self._read_wav_header = read_wav_header
        self._demuxer: str | None = None
        if spec.encoding in HEADERLESS:
            self._set_rate(headerless_rate(spec))
            self._unpacker = _Unpacker(spec)
        else:
            self._demuxer = demuxer(spec)

    @property
    def source_rate_hz(self) -> int | None:
        """The input's sample rate: declared, or read from the container once it tells (else None)."""
        return self._rate_hz

    def feed(self, data: bytes) -> torch.Tensor:
        """Decode the next bytes.

        Returns:
            1-D float32 samples at ``target_rate_hz`` that the bytes so far complete (maybe none).

        Raises:
            AudioError: undecodable audio, or a rate below the target found in the container.
            RuntimeError: the decoder was finished or closed.
        """
        self._check_open("feed")
        self.bytes_in += len(data)
        return self._decode_or_fail(data, last=False)

    def finish(self) -> torch.Tensor:
        """End of input: decode and return the remaining samples; the worker thread, if any, has ended.

        Raises:
            AudioError: empty, undecodable or sample-less audio.
            RuntimeError: the decoder was finished or closed.
        """
        self._check_open("finish")
        samples = self._decode_or_fail(b"", last=True)
        self._phase = _Phase.FINISHED
        return samples

    def close(self) -> None:
        """Abandon the stream (client gone): stop and join the worker thread. Idempotent."""
        if self._phase in (_Phase.OPEN, _Phase.FAILED):
            self._phase = _Phase.CLOSED
        if self._ffmpeg is not None:
            self._ffmpeg.abandon()

    def _check_open(self, method: str) -> None:
        if self._phase is _Phase.FAILED:
            raise self._error
        if self._phase is not _Phase.OPEN:
            raise RuntimeError(f"{method}() on a StreamDecoder that is {self._phase.value}")

    def _decode_or_fail(self, data: bytes, *, last: bool) -> torch.Tensor:
        try:
            return self._decode(data, last=last)
        except Exception as exc:
            self._phase, self._error = _Phase.FAILED, exc
            if self._ffmpeg is not None:
                self._ffmpeg.abandon()
            raise

    def _decode(self, data: bytes, *, last: bool) -> torch.Tensor:
        if last and not self.bytes_in:
            raise AudioError("the audio is empty")
        if self._unpacker is None and self._ffmpeg is None:
            self._head += data
            data = self._choose_route(last=last)
        if data is None:
            chunks = []
        elif self._unpacker is not None:
            chunks = [self._unpacker.push(data)]
        else:
            chunks = self._ffmpeg.push(data, last=last)
            if self._ffmpeg.error is not None:
                raise self._ffmpeg.error
            if self._rate_hz is None and self._ffmpeg.rate_hz is not None:
                self._set_rate(self._ffmpeg.rate_hz)
        samples = torch.from_numpy(np.concatenate(chunks)) if chunks else torch.zeros(0)
        self._samples_decoded += samples.numel()
        if last and not self._samples_decoded:
            raise AudioError("the audio holds no samples")
        return self._resampler.push(samples, last=last) if self._resampler is not None else samples

    def _choose_route(self, *, last: bool) -> bytes | None:
        """Start the numpy or FFmpeg route once the first bytes tell which; return the bytes it is to take.

        None while the bytes do not tell yet (a WAV header not yet complete).
        """
        head, layout = bytes(self._head), None
        if self._demuxer in ("wav", None) and self._read_wav_header is not None:
            if len(head) < 12 and not last:
                return None
            if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
                layout = self._read_wav_header(head)
                if layout is None and not last and len(head) < _WAV_HEADER_MAX_BYTES:
                    return None
        self._head = bytearray()
        if layout is not None and layout.is_pcm16:
            pcm = AudioFormat("l16", layout.sample_rate_hz, layout.channels, big_endian=False)
            self._set_rate(layout.sample_rate_hz)
            self._unpacker = _Unpacker(pcm, layout.data_bytes)
            return head[layout.data_offset:]
        self._ffmpeg = _FFmpegThread(self._demuxer, head)
        # A decoder dropped without finish() or close() must not leave its worker waiting for bytes.
        weakref.finalize(self, self._ffmpeg.abandon, join=False)
        return b""

    def _set_rate(self, rate_hz: int) -> None:
        check_rate(rate_hz)
        if rate_hz < self._target_hz:
            raise AudioError(f"audio at {rate_hz} Hz is below the model's {self._target_hz} Hz; use a model "
                             f"for this rate or send audio at {self._target_hz} Hz or more")
        self._rate_hz = rate_hz
        if rate_hz != self._target_hz:
            self._resampler = _Resampler(rate_hz, self._target_hz)
