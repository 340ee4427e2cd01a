"""The shipped models behind the real server, driven by official clients: IBM's Watson SDK and botocore."""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import threading

import aiohttp
import pytest
from ibm_cloud_sdk_core.authenticators import BearerTokenAuthenticator
from ibm_watson import SpeechToTextV1
from ibm_watson.websocket import AudioSource, RecognizeCallback
from websocket import WebSocketConnectionClosedException

from engine.catalog import default_models_dir
from server.config import parse_config
from tests.conftest import FIXTURES
from tests.server.conftest import ServerThread

EXPECTED = dict(line.split("\t") for line in (FIXTURES / "transcripts.tsv").read_text().splitlines() if line)
KEY = "e2e-key"


@pytest.fixture(scope="module")
def real_server():
    """The server on the shipped models, with one credential (an API key and an access key pair)."""
    server = ServerThread(default_models_dir(), parse_config({"credentials": [
        {"instance": "e2e", "api_key": KEY, "access_key_id": "AKIDE2E", "secret_access_key": "e2e/secret"}]}))
    server.start()
    yield server
    server.stop()


class Collector(RecognizeCallback):
    """Keeps what the SDK reports."""

    def __init__(self) -> None:
        super().__init__()
        self.data: list[dict] = []
        self.errors: list = []
        self.hypotheses: list[str] = []
        self.timeouts: list[str] = []

    def on_data(self, data: dict) -> None:
        self.data.append(data)

    def on_hypothesis(self, hypothesis: str) -> None:
        self.hypotheses.append(hypothesis)

    def on_error(self, error) -> None:
        self.errors.append(error)

    def on_inactivity_timeout(self, error) -> None:
        self.timeouts.append(error)


def _sdk(server: ServerThread, url: str) -> SpeechToTextV1:
    stt = SpeechToTextV1(authenticator=BearerTokenAuthenticator(KEY))
    stt.set_service_url(url)
    return stt


@pytest.mark.parametrize("name,content_type", [("hello.wav", "audio/wav"), ("hello.flac", "audio/flac")])
def test_watson_sdk_websocket(real_server, name: str, content_type: str) -> None:
    stt = _sdk(real_server, real_server.ws)  # the SDK rewrites only https: -> wss:, so give it ws: directly
    callback = Collector()
    with open(FIXTURES / name, "rb") as audio:
        stt.recognize_using_websocket(audio=AudioSource(audio), content_type=content_type, recognize_callback=callback,
                                      interim_results=True, timestamps=True, word_confidence=True)
    assert not callback.errors
    finals = [r for d in callback.data for r in d["results"] if r["final"]]
    transcript = " ".join(r["alternatives"][0]["transcript"].strip() for r in finals)
    assert transcript == EXPECTED[name]
    assert callback.hypotheses  # interim results arrived through the SDK's own callback


def test_watson_sdk_sessionless(real_server) -> None:
    stt = _sdk(real_server, real_server.http)
    with open(FIXTURES / "allison" / "vm-reenterpassword.wav", "rb") as audio:  # real speech, 8 kHz
        result = stt.recognize(audio=audio, content_type="audio/wav", model="en-US_NarrowbandModel",
                               timestamps=True).get_result()
    transcript = " ".join(r["alternatives"][0]["transcript"].strip() for r in result["results"])
    assert transcript == "please re enter your password followed by the pound key"


def test_watson_sdk_alternatives_and_keywords(real_server) -> None:
    """Issue 12: ``max_alternatives`` > 1 gives the next-best transcripts of Whisper's beam; ``keywords``
    give ``keywords_result`` with times inside the utterance and the decoder's confidence."""
    stt = _sdk(real_server, real_server.http)
    with open(FIXTURES / "allison" / "vm-reenterpassword.wav", "rb") as audio:
        result = stt.recognize(audio=audio, content_type="audio/wav", model="en-US_NarrowbandModel",
                               max_alternatives=3, keywords=["password", "pound key", "extension"],
                               keywords_threshold=0.5, word_alternatives_threshold=0.01).get_result()
    [final] = result["results"]
    best, *others = final["alternatives"]
    assert best["transcript"].strip() == "please re enter your password followed by the pound key"
    assert 1 <= len(others) <= 2 and all("confidence" not in a for a in others)
    assert len({a["transcript"] for a in final["alternatives"]}) == len(final["alternatives"])
    spotted = final["keywords_result"]
    assert set(spotted) == {"password", "pound key"}
    [password] = spotted["password"]
    assert 0 < password["start_time"] < password["end_time"] and password["confidence"] >= 0.5
    # word_alternatives: each slot's words at or above the threshold, most likely first; the best
    # transcript's words are the top of their slots (clear speech), in time order
    slots = final["word_alternatives"]
    words = best["transcript"].split()
    assert 0 < len(slots) <= len(words)
    assert [s["alternatives"][0]["word"] for s in slots] == [w for w in words if w in
                                                             {a["word"] for s in slots for a in s["alternatives"]}][:len(slots)]
    for slot in slots:
        confidences = [a["confidence"] for a in slot["alternatives"]]
        assert confidences == sorted(confidences, reverse=True) and min(confidences) >= 0.01 and sum(confidences) <= 1.0001
        assert 0 <= slot["start_time"] < slot["end_time"]
    assert [s["start_time"] for s in slots] == sorted(s["start_time"] for s in slots)
    assert "warnings" not in result


def test_watson_sdk_inactivity_timeout(real_server, monkeypatch) -> None:
    # After the server closes on the timeout, the SDK's sender thread (started with _thread, no handle)
    # still writes its audio and stop message and dies of it, as it would against IBM's service. Catch
    # that here, deterministically, instead of letting it land in a later test.
    sender_died = threading.Event()
    unraisable: list[type] = []

    def hook(args) -> None:
        unraisable.append(args.exc_type)
        sender_died.set()

    monkeypatch.setattr(sys, "unraisablehook", hook)
    stt = _sdk(real_server, real_server.ws)
    callback = Collector()
    silence = AudioSource(_Silence(3 * 32000))
    stt.recognize_using_websocket(audio=silence, content_type="audio/l16;rate=16000;endianness=little-endian",
                                  recognize_callback=callback, inactivity_timeout=1)
    assert callback.timeouts == ["No speech detected for 1s."]
    assert sender_died.wait(timeout=30)
    gc.collect()
    assert set(unraisable) <= {WebSocketConnectionClosedException, ResourceWarning}


class _Silence:
    """A file-like source of zero bytes (raw silence)."""

    def __init__(self, n: int) -> None:
        self.left = n

    def read(self, size: int) -> bytes:
        n = min(size, self.left)
        self.left -= n
        return b"\0" * n

    def close(self) -> None:
        pass


def test_wrong_key_is_refused_before_the_upgrade(real_server) -> None:
    async def main():
        async with aiohttp.ClientSession() as http:
            try:
                async with http.ws_connect(f"{real_server.ws}/v1/recognize?access_token=wrong"):
                    return 101, None
            except aiohttp.WSServerHandshakeError as exc:
                return exc.status, exc.message

    status, _ = asyncio.run(main())
    assert status == 401


def test_base_model_version_selects_the_older_model(real_server) -> None:
    stt = _sdk(real_server, real_server.http)
    versions = sorted(v for v in real_server.models.versions if v.startswith("en-US_BroadbandModel"))
    with open(FIXTURES / "hello.wav", "rb") as audio:
        result = stt.recognize(audio=audio, content_type="audio/wav", base_model_version=versions[0]).get_result()
    assert json.dumps(result)  # the older version answers; its accuracy is the README's business
    assert isinstance(result["results"], list)


def test_transcribe_presigned_stream_with_botocore(real_server) -> None:
    """botocore signs the URL (with the server's access key) and parses our TranscriptEvents of real audio."""
    import wave

    from botocore.auth import SigV4QueryAuth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    from botocore.eventstream import EventStreamBuffer

    from protocol.eventstream import Message

    with wave.open(str(FIXTURES / "hello.wav"), "rb") as w:
        pcm, rate = w.readframes(w.getnframes()), w.getframerate()
    url = (f"{real_server.ws}/stream-transcription-websocket?language-code=en-US&media-encoding=pcm"
           f"&sample-rate={rate}")
    request = AWSRequest(method="GET", url=url)
    SigV4QueryAuth(Credentials("AKIDE2E", "e2e/secret"), "transcribe", "us-east-1", expires=60).add_auth(request)

    def event(payload: bytes) -> bytes:
        return Message.build({":message-type": "event", ":event-type": "AudioEvent",
                              ":content-type": "application/octet-stream"}, payload).encode()

    async def main():
        buffer = EventStreamBuffer()
        async with aiohttp.ClientSession() as http, http.ws_connect(request.url) as ws:
            for i in range(0, len(pcm), 3200):
                await ws.send_bytes(event(pcm[i : i + 3200]))
            await ws.send_bytes(event(b""))
            async for msg in ws:
                buffer.add_data(msg.data)
            return [json.loads(m.payload)["Transcript"]["Results"][0] for m in buffer], ws.close_code

    results, code = asyncio.run(main())
    assert code == 1000
    finals = [r["Alternatives"][0]["Transcript"] for r in results if not r["IsPartial"]]
    assert " ".join(finals) == EXPECTED["hello.wav"]
