"""The client library and CLI against the real server (in a thread, on a loopback port).

The shipped models make transcripts worth asserting; the tiny model serves
the tests of limits and credentials, where the words do not matter.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from clients import transport
from clients.audio import pcm_content_type, read_audio
from clients.endpoint import TRANSCRIBE_PATH, WATSON_PATH, websocket_url
from clients.errors import HandshakeRejected, ServerError
from clients.loadtest import Dialect, LoadTestConfig, run_load
from clients.pacing import container_chunk_bytes, pcm_chunk_bytes, split_bytes
from clients.recognition import stream_audio
from clients.transcribe import ANONYMOUS, Credentials, TranscribeConnection, presigned_url
from clients.watson import Phase, WatsonConnection
from engine.catalog import default_models_dir
from server.config import parse_config
from tests.conftest import FIXTURES
from tests.server.conftest import ServerThread
from voxgate.cli import main

EXPECTED = dict(line.split("\t") for line in (FIXTURES / "transcripts.tsv").read_text().splitlines() if line)
CHUNK_S = 0.1


@pytest.fixture(scope="module")
def shipped() -> ServerThread:
    """An open server over the shipped models."""
    server = ServerThread(default_models_dir(), parse_config({})).start()
    yield server
    server.stop()


@pytest.fixture()
def tiny_server(tiny_bundle):
    """Start open or credentialed servers over the tiny model; stop them afterwards."""
    started: list[ServerThread] = []

    def start(config: dict) -> ServerThread:
        started.append(ServerThread(tiny_bundle.path.parents[1], parse_config(config)).start())
        return started[-1]

    yield start
    for server in started:
        server.stop()


def _pcm(name: str) -> tuple[bytes, int]:
    return read_audio(FIXTURES / name).require_pcm("the test")


def test_watson_requests_in_sequence_on_one_connection(shipped) -> None:
    wav_pcm, rate = _pcm("hello.wav")
    raw = read_audio(FIXTURES / "hello.raw")  # big-endian l16, sent as it is on disk

    async def go():
        async with transport.new_session() as session:
            url = websocket_url(shipped.ws, WATSON_PATH)
            async with await WatsonConnection.open(session, url) as conn:
                await conn.start(content_type=pcm_content_type(rate), interim_results=True)
                first = await stream_audio(conn, split_bytes(wav_pcm, pcm_chunk_bytes(rate, CHUNK_S)),
                                           chunk_s=CHUNK_S, audio_s=len(wav_pcm) / 2 / rate)
                assert conn.phase is Phase.IDLE  # the second listening ended the request; the socket stays open
                await conn.start(content_type=raw.content_type, interim_results=False)
                second = await stream_audio(conn, split_bytes(raw.data, pcm_chunk_bytes(16000, CHUNK_S)),
                                            chunk_s=CHUNK_S, audio_s=raw.duration_s)
        return first, second

    (finals, timings), (raw_finals, raw_timings) = asyncio.run(asyncio.wait_for(go(), 60))
    assert " ".join(h.transcript for h in finals) == EXPECTED["hello.wav"]
    assert timings.first_partial_ms is not None and timings.final_ms is not None
    assert " ".join(h.transcript for h in raw_finals) == EXPECTED["hello.raw"]
    assert raw_timings.first_partial_at is None  # no interim results were asked for


def test_transcribe_stream(shipped) -> None:
    pcm, rate = _pcm("hello.wav")
    seen = []

    async def go():
        async with transport.new_session() as session:
            url = presigned_url(websocket_url(shipped.ws, TRANSCRIBE_PATH), credentials=ANONYMOUS,
                                sample_rate_hz=rate)
            async with await TranscribeConnection.open(session, url) as conn:
                return await stream_audio(conn, split_bytes(pcm, pcm_chunk_bytes(rate, CHUNK_S)), chunk_s=CHUNK_S,
                                          audio_s=len(pcm) / 2 / rate, on_result=seen.append)

    finals, timings = asyncio.run(asyncio.wait_for(go(), 60))
    assert " ".join(h.transcript for h in finals) == EXPECTED["hello.wav"]
    assert any(not h.final for h in seen) and timings.finished_at is not None


@pytest.mark.parametrize("protocol,name", [("watson", "hello.flac"), ("transcribe", "hello.raw")])
def test_cli_stream(shipped, capsys, protocol: str, name: str) -> None:
    code = main(["stream", str(FIXTURES / name), "--url", shipped.ws, "--protocol", protocol, "--interim"])
    out, err = capsys.readouterr()
    assert code == 0, err
    lines = out.splitlines()
    assert lines[-1] == EXPECTED[name]
    assert lines[0].startswith("[interim] ") and all(line.startswith("[interim] ") for line in lines[:-1])


def test_cli_stream_reports_the_servers_error(shipped, capsys) -> None:
    code = main(["stream", str(FIXTURES / "phone.wav"), "--url", shipped.ws])  # 8 kHz audio, broadband model
    _, err = capsys.readouterr()
    assert code == 1 and err.startswith("voxgate: the server answered: ") and len(err.splitlines()) == 1


def test_watson_start_errors_are_server_errors(shipped) -> None:
    async def go():
        async with transport.new_session() as session:
            async with await WatsonConnection.open(session, websocket_url(shipped.ws, WATSON_PATH)) as conn:
                await conn.start(content_type="audio/l16", interim_results=False)  # no rate

    with pytest.raises(ServerError) as info:
        asyncio.run(asyncio.wait_for(go(), 30))
    assert info.value.kind == "server error"


def test_loadtest_json(shipped, capsys) -> None:
    code = main(["loadtest", "--url", shipped.ws, "--streams", "3", "--duration", "1.5", "--stagger", "0.3",
                 "--audio", str(FIXTURES / "hello.wav"), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    (line,) = out.splitlines()
    report = json.loads(line)
    assert (report["streams"], report["completed"], report["errors"]) == (3, 3, 0)
    assert set(report["final_ms"]) == set(report["first_partial_ms"]) == {"p50", "p95", "p99"}
    assert report["final_ms"]["p50"] is not None and report["rtf"] > 0


def test_full_server_answers_503_and_the_load_test_counts_it(tiny_server) -> None:
    server = tiny_server({"server": {"max_sessions": 1}})
    pcm, rate = _pcm("hello.wav")

    async def go():
        async with transport.new_session() as session:
            url = websocket_url(server.ws, WATSON_PATH)
            async with await WatsonConnection.open(session, url) as holder:
                await holder.start(content_type=pcm_content_type(rate))
                with pytest.raises(HandshakeRejected) as info:
                    await WatsonConnection.open(session, url)
                config = LoadTestConfig(url=server.ws, streams=2, duration_s=0.3, stagger_s=0.0,
                                        dialect=Dialect.TRANSCRIBE)
                report = await run_load(config, pcm, rate, session=session)
        return info.value, report

    rejected, report = asyncio.run(asyncio.wait_for(go(), 60))
    assert rejected.status == 503 and rejected.kind == "http 503"
    assert (report.completed, report.errors, report.error_kinds) == (0, 2, {"http 503": 2})


def test_credentials(tiny_server) -> None:
    server = tiny_server({"credentials": [{"instance": "acme", "api_key": "k-1", "access_key_id": "AKID",
                                           "secret_access_key": "s3cret"}]})
    pcm, rate = _pcm("hello.wav")
    good = Credentials("AKID", "s3cret")

    async def watson(api_key: str | None):
        async with transport.new_session() as session:
            url = websocket_url(server.ws, WATSON_PATH)
            async with await WatsonConnection.open(session, url, api_key=api_key) as conn:
                await conn.start(content_type=pcm_content_type(rate))

    async def transcribe(credentials: Credentials):
        async with transport.new_session() as session:
            url = presigned_url(websocket_url(server.ws, TRANSCRIBE_PATH), credentials=credentials,
                                sample_rate_hz=rate)
            async with await TranscribeConnection.open(session, url) as conn:
                chunks = split_bytes(pcm[:3200], container_chunk_bytes(3200, 0.1, 0.1))
                await stream_audio(conn, chunks, chunk_s=0.1, audio_s=0.1)

    asyncio.run(asyncio.wait_for(watson("k-1"), 30))
    asyncio.run(asyncio.wait_for(transcribe(good), 30))
    for attempt in (watson(None), watson("wrong"), transcribe(ANONYMOUS), transcribe(Credentials("AKID", "nope"))):
        with pytest.raises(HandshakeRejected) as info:
            asyncio.run(asyncio.wait_for(attempt, 30))
        assert info.value.status in (401, 403)
