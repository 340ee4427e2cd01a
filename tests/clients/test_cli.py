"""``voxgate presign``, and the one-line errors of ``stream`` and ``loadtest`` (no server needed)."""

import datetime as dt
import socket
from pathlib import Path

import pytest
from yarl import URL

from clients.endpoint import host_header
from protocol import sigv4
from tests.conftest import FIXTURES
from voxgate.cli import main


def run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture()
def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_presign_prints_a_url_the_server_verifies(capsys) -> None:
    code, out, err = run(capsys, "presign", "--url", "http://127.0.0.1:8080", "--access-key-id", "AKID",
                         "--secret-access-key", "s3cret/+=", "--region", "us-west-2", "--expires", "60",
                         "--sample-rate", "8000", "--language-code", "en-GB")
    assert code == 0, err
    (line,) = out.splitlines()
    url = URL(line, encoded=True)
    assert (url.scheme, url.raw_path) == ("ws", "/stream-transcription-websocket")
    verified = sigv4.verify(method="GET", path=url.raw_path, raw_query=url.raw_query_string, host=host_header(url),
                            secrets={"AKID": "s3cret/+="}, now=dt.datetime.now(dt.timezone.utc))
    assert verified.params == {"language-code": "en-GB", "media-encoding": "pcm", "sample-rate": "8000"}
    assert verified.region == "us-west-2"
    assert (verified.expires_at - verified.signed_at).total_seconds() == 60


@pytest.mark.parametrize("argv,message", [
    (["presign", "--url", "ws://h:1", "--access-key-id", "A", "--secret-access-key", "S", "--expires", "301"],
     "voxgate: --expires must be 1-300 seconds, got 301"),
    (["presign", "--url", "h:1", "--access-key-id", "A", "--secret-access-key", "S"], "voxgate: bad URL 'h:1'"),
    (["stream", "missing.wav", "--url", "ws://127.0.0.1:1"], "cannot read file"),
    (["stream", str(FIXTURES / "hello.wav"), "--url", "ftp://x"], "voxgate: bad URL 'ftp://x'"),
    (["stream", str(FIXTURES / "hello.flac"), "--url", "ws://127.0.0.1:1", "--protocol", "transcribe"],
     "the transcribe protocol needs 16-bit mono PCM"),
    (["stream", str(FIXTURES / "hello.wav"), "--url", "ws://127.0.0.1:1", "--protocol", "transcribe",
      "--access-key-id", "A"], "voxgate: give both --access-key-id and --secret-access-key"),
    (["stream", str(FIXTURES / "hello.wav"), "--url", "ws://127.0.0.1:1", "--chunk-ms", "0"],
     "voxgate: --chunk-ms must be 1-1000"),
    (["loadtest", "--url", "ws://127.0.0.1:1", "--streams", "0", "--duration", "1", "--audio",
      str(FIXTURES / "hello.wav")], "voxgate: the number of streams must be at least 1, got 0"),
    (["loadtest", "--url", "ws://127.0.0.1:1", "--streams", "1", "--duration", "1", "--audio",
      str(FIXTURES / "phone.wav")], "loadtest needs 16-bit mono PCM"),
    (["loadtest", "--url", "nope", "--streams", "1", "--duration", "1", "--audio", str(FIXTURES / "hello.wav")],
     "voxgate: bad URL 'nope'"),
])
def test_bad_input_is_one_line_and_exit_1(capsys, argv: list[str], message: str) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 1 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith("voxgate: ") and message in err


@pytest.mark.parametrize("protocol", ["watson", "transcribe"])
def test_stream_with_the_server_down(capsys, closed_port: int, protocol: str) -> None:
    code, out, err = run(capsys, "stream", str(FIXTURES / "hello.wav"), "--url", f"ws://127.0.0.1:{closed_port}",
                         "--protocol", protocol)
    assert code == 1 and out == ""
    assert err.startswith(f"voxgate: cannot connect to ws://127.0.0.1:{closed_port}/") and "connection refused" in err
    assert len(err.splitlines()) == 1


def test_loadtest_with_the_server_down(capsys, closed_port: int) -> None:
    code, out, err = run(capsys, "loadtest", "--url", f"ws://127.0.0.1:{closed_port}", "--streams", "3",
                         "--duration", "1", "--stagger", "0", "--audio", str(FIXTURES / "hello.wav"), "--json")
    assert code == 1 and out == ""
    assert err.startswith("voxgate: cannot connect to") and "connection refused" in err
    assert len(err.splitlines()) == 1


def test_missing_file_names_the_path(capsys, tmp_path: Path) -> None:
    code, _, err = run(capsys, "stream", str(tmp_path / "nope.wav"), "--url", "ws://127.0.0.1:1")
    assert code == 1 and f"voxgate: {tmp_path / 'nope.wav'}: cannot read file" in err
