"""``voxgate stream``, ``voxgate presign`` and ``voxgate loadtest``: the subcommands that talk to a server.

:func:`add_parsers` registers them on the ``voxgate`` parser; :func:`run`
executes one. Every failure the user can fix (a missing file, a bad URL, a
server that is down or refuses) ends in one ``voxgate: ...`` line on stderr
and exit status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
from pathlib import Path
from typing import TextIO

from tqdm import tqdm

from clients import transport
from clients.audio import AudioFile, read_audio
from clients.endpoint import TRANSCRIBE_PATH, WATSON_PATH, websocket_url
from clients.errors import BadInput, ClientError, ServerError
from clients.loadtest import Dialect, LiveCounts, LoadReport, LoadTestConfig, run_load
from clients.pacing import container_chunk_bytes, pcm_chunk_bytes, split_bytes
from clients.recognition import Hypothesis, stream_audio
from clients.transcribe import ANONYMOUS, Credentials, TranscribeConnection, presigned_url
from clients.watson import WatsonConnection
from protocol import sigv4
from protocol.audio import parse_content_type

COMMANDS = ("stream", "presign", "loadtest")


def _add_transcribe_auth(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--access-key-id", help="transcribe: key id that signs the URL (default: anonymous, "
                                                "for a server without authentication)")
    parser.add_argument("--secret-access-key", help="transcribe: the secret of --access-key-id")
    parser.add_argument("--region", default="us-east-1", help="transcribe: region of the signature scope")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register ``stream``, ``presign`` and ``loadtest`` on the ``voxgate`` subparsers."""
    s = sub.add_parser("stream", help="stream an audio file to a server in real time and print the results")
    s.add_argument("file", metavar="FILE")
    s.add_argument("--url", required=True, help="server, e.g. ws://127.0.0.1:8080 (the dialect's path is added)")
    s.add_argument("--protocol", choices=[d.value for d in Dialect], default="watson")
    s.add_argument("--interim", action="store_true", help="also print interim results, marked [interim]")
    s.add_argument("--content-type", help="content type of the file (default: by suffix: audio/wav, audio/flac, "
                                          "audio/l16;rate=16000 for .raw)")
    s.add_argument("--model", help="watson: model name (default: the server's)")
    s.add_argument("--api-key", help="watson: key sent as 'Authorization: Bearer KEY'")
    s.add_argument("--language-code", default="en-US", help="transcribe: language-code")
    s.add_argument("--chunk-ms", type=float, default=100.0, help="milliseconds of audio per message")
    _add_transcribe_auth(s)

    p = sub.add_parser("presign", help="print a presigned Transcribe WebSocket URL")
    p.add_argument("--url", required=True, help="server, e.g. ws://127.0.0.1:8080")
    p.add_argument("--access-key-id", required=True)
    p.add_argument("--secret-access-key", required=True)
    p.add_argument("--session-token", help="temporary-credentials token (signed as X-Amz-Security-Token)")
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--expires", type=int, default=300, help=f"validity in seconds, 1-{sigv4.MAX_EXPIRES_S}")
    p.add_argument("--language-code", default="en-US")
    p.add_argument("--media-encoding", default="pcm", help="pcm, ogg-opus or flac")
    p.add_argument("--sample-rate", type=int, default=16000, help="Hz")

    lt = sub.add_parser("loadtest", help="N concurrent real-time streams: latency percentiles and errors")
    lt.add_argument("--url", required=True, help="server, e.g. ws://127.0.0.1:8080")
    lt.add_argument("--streams", type=int, required=True, help="concurrent streams")
    lt.add_argument("--duration", type=float, required=True, help="seconds of audio per stream (looped or cut)")
    lt.add_argument("--audio", required=True, help="16-bit mono PCM WAV or raw audio/l16 file")
    lt.add_argument("--content-type", help="content type of a headerless --audio, e.g. 'audio/l16;rate=8000'")
    lt.add_argument("--protocol", choices=[d.value for d in Dialect], default="watson")
    lt.add_argument("--json", action="store_true", help="print one JSON object")
    lt.add_argument("--model", help="watson: model name (default: the server's)")
    lt.add_argument("--api-key", help="watson: key sent as 'Authorization: Bearer KEY'")
    lt.add_argument("--language-code", default="en-US", help="transcribe: language-code")
    lt.add_argument("--chunk-ms", type=float, default=100.0, help="milliseconds of audio per message")
    lt.add_argument("--stagger", type=float, default=1.0, help="seconds over which the streams start")
    lt.add_argument("--timeout", type=float, default=30.0, help="seconds allowed for results after the audio ends")
    _add_transcribe_auth(lt)


def run(args: argparse.Namespace) -> int:
    """Execute one of :data:`COMMANDS`; return the exit status."""
    commands = {"stream": stream_command, "presign": presign_command, "loadtest": loadtest_command}
    try:
        return commands[args.command](args)
    except ServerError as exc:
        print(f"voxgate: the server answered: {exc.message}", file=sys.stderr)
    except ClientError as exc:
        print(f"voxgate: {exc.message}", file=sys.stderr)
    except KeyboardInterrupt:
        return 130
    return 1


def _credentials(args: argparse.Namespace) -> Credentials:
    if bool(args.access_key_id) != bool(args.secret_access_key):
        raise BadInput("give both --access-key-id and --secret-access-key, or neither")
    if not args.access_key_id:
        return ANONYMOUS
    return Credentials(args.access_key_id, args.secret_access_key, args.region)


def _chunk_s(args: argparse.Namespace) -> float:
    if not 0 < args.chunk_ms <= 1000:
        raise BadInput(f"--chunk-ms must be 1-1000, got {args.chunk_ms:g}")
    return args.chunk_ms / 1000


class ResultPrinter:
    """Prints results as they arrive: finals as plain transcripts, interim ones marked ``[interim]``.

    An interim result equal to the last one printed for its utterance is
    skipped: servers repeat a hypothesis while the audio adds nothing to it.
    """

    def __init__(self, out: TextIO, *, interim: bool) -> None:
        self._out = out
        self._interim = interim
        self._last: dict[str, str] = {}

    def __call__(self, hypothesis: Hypothesis) -> None:
        """Print one result (flushed, so a pipe sees it at once)."""
        if hypothesis.final:
            self._last.pop(hypothesis.key, None)
            print(hypothesis.transcript, file=self._out, flush=True)
        elif self._interim and self._last.get(hypothesis.key) != hypothesis.transcript:
            self._last[hypothesis.key] = hypothesis.transcript
            print(f"[interim] {hypothesis.transcript}", file=self._out, flush=True)


def _watson_chunks(audio: AudioFile, chunk_s: float) -> list[bytes]:
    size = container_chunk_bytes(len(audio.data), audio.duration_s, chunk_s)
    if parse_content_type(audio.content_type).encoding.headerless:
        size = math.ceil(size / 4) * 4  # whole frames: 4 bytes fit l16 mono and stereo, µ-law and A-law
    return split_bytes(audio.data, size)


def stream_command(args: argparse.Namespace) -> int:
    """``voxgate stream``: one file in real time, results printed as they arrive."""
    chunk_s = _chunk_s(args)
    audio = read_audio(Path(args.file), args.content_type)
    printer = ResultPrinter(sys.stdout, interim=args.interim)

    async def go() -> None:
        async with transport.new_session() as session:
            if args.protocol == Dialect.WATSON.value:
                url = websocket_url(args.url, WATSON_PATH)
                async with await WatsonConnection.open(session, url, model=args.model, api_key=args.api_key) as conn:
                    await conn.start(content_type=audio.content_type, interim_results=args.interim)
                    await stream_audio(conn, _watson_chunks(audio, chunk_s), chunk_s=chunk_s,
                                       audio_s=audio.duration_s, on_result=printer)
                for warning in dict.fromkeys(conn.warnings):
                    print(f"voxgate: warning from the server: {warning}", file=sys.stderr)
            else:
                pcm, rate = audio.require_pcm("the transcribe protocol")
                url = presigned_url(websocket_url(args.url, TRANSCRIBE_PATH), credentials=_credentials(args),
                                    language_code=args.language_code, sample_rate_hz=rate)
                async with await TranscribeConnection.open(session, url) as conn:
                    await stream_audio(conn, split_bytes(pcm, pcm_chunk_bytes(rate, chunk_s)), chunk_s=chunk_s,
                                       audio_s=len(pcm) / 2 / rate, on_result=printer)

    asyncio.run(go())
    return 0


def presign_command(args: argparse.Namespace) -> int:
    """``voxgate presign``: print a presigned ``/stream-transcription-websocket`` URL."""
    if not 1 <= args.expires <= sigv4.MAX_EXPIRES_S:
        raise BadInput(f"--expires must be 1-{sigv4.MAX_EXPIRES_S} seconds, got {args.expires}")
    if args.sample_rate <= 0:
        raise BadInput(f"--sample-rate must be positive, got {args.sample_rate}")
    credentials = Credentials(args.access_key_id, args.secret_access_key, args.region, args.session_token)
    url = presigned_url(websocket_url(args.url, TRANSCRIBE_PATH), credentials=credentials,
                        language_code=args.language_code, media_encoding=args.media_encoding,
                        sample_rate_hz=args.sample_rate, expires_s=args.expires)
    print(url)
    return 0


def loadtest_command(args: argparse.Namespace) -> int:
    """``voxgate loadtest``: run the streams with a live progress bar, then print the report.

    Exit status 0 when at least one stream completed; 1 when none did (with
    only a one-line error when the server could not even be reached).
    """
    config = LoadTestConfig(url=args.url, streams=args.streams, duration_s=args.duration,
                            dialect=Dialect(args.protocol), chunk_s=_chunk_s(args), stagger_s=args.stagger,
                            model=args.model, api_key=args.api_key, credentials=_credentials(args),
                            language_code=args.language_code, response_timeout_s=args.timeout)
    websocket_url(config.url, WATSON_PATH)  # a bad URL is bad input, not one error per stream
    pcm, rate = read_audio(Path(args.audio), args.content_type).require_pcm("loadtest")
    report = transport.run_event_loop(_run_with_progress(config, pcm, rate))
    if report.completed == 0 and set(report.error_kinds) == {"connect failed"}:
        raise ClientError(report.error_examples["connect failed"])
    print(json.dumps(report.to_json()) if args.json else report.render(), flush=True)
    return 0 if report.completed else 1


async def _run_with_progress(config: LoadTestConfig, pcm: bytes, rate: int) -> LoadReport:
    """Run the test while a tqdm bar on stderr shows elapsed audio time, live streams and errors (off without a TTY)."""
    counts = LiveCounts()
    task = asyncio.create_task(run_load(config, pcm, rate, counts=counts))
    total_s = config.stagger_s + config.duration_s
    began = time.monotonic()
    with tqdm(total=round(total_s, 1), unit="s", file=sys.stderr, disable=None, leave=False,
              bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} s {postfix}") as bar:
        while not task.done():
            await asyncio.wait({task}, timeout=0.5)
            bar.n = round(min(time.monotonic() - began, total_s), 1)
            bar.set_postfix(live=counts.active, done=counts.completed, errors=counts.errors, refresh=False)
            bar.refresh()
    return task.result()
