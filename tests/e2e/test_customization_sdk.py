"""Custom language models end to end with IBM's official ``ibm-watson`` SDK against the real server:
create, add a corpus and words, train, recognise with it; register a newer base release on the running
server, upgrade, restart mid-upgrade, recognise with both versions; ownership; an asynchronous job.

The server starts with only the older shipped broadband version installed; the newer shipped version
is then registered with ``voxgate models register`` as a base-model release would be.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import time

import pytest
from ibm_cloud_sdk_core import ApiException
from ibm_cloud_sdk_core.authenticators import BearerTokenAuthenticator
from ibm_watson import SpeechToTextV1
from ibm_watson.speech_to_text_v1 import CustomWord
from ibm_watson.websocket import AudioSource

from engine.catalog import default_models_dir
from server.catalog import PREVIOUS_VERSION_WARNING, transcription_deadline
from server.config import parse_config
from tests.conftest import FIXTURES
from tests.e2e.test_server_clients import Collector
from tests.server.conftest import ServerThread
from voxgate.cli import main

BB = "en-US_BroadbandModel"
OLD, NEW = f"{BB}.v2026-05-01", f"{BB}.v2026-11-01"
CREDENTIALS = {"credentials": [{"instance": "acme", "api_key": "acme-key"}, {"instance": "rival", "api_key": "rival-key"}]}
CORPUS = "Please call Vorlaxa support today.\nCall Vorlaxa now!\nVorlaxa support is open 24 hours.\n"


def sdk(server: ServerThread, key: str = "acme-key") -> SpeechToTextV1:
    stt = SpeechToTextV1(authenticator=BearerTokenAuthenticator(key))
    stt.set_service_url(server.http)
    return stt


def wait_for(stt: SpeechToTextV1, custom_id: str, statuses: set[str], timeout_s: float = 240) -> dict:
    """Poll the model until its status is one of ``statuses`` (as an SDK user would)."""
    deadline = time.monotonic() + timeout_s
    while True:
        model = stt.get_language_model(custom_id).get_result()
        if model["status"] in statuses:
            return model
        assert model["status"] != "failed", model
        assert time.monotonic() < deadline, f"still {model['status']} after {timeout_s} s"
        time.sleep(0.5)


def recognise(stt: SpeechToTextV1, **options) -> dict:
    with open(FIXTURES / "vorlaxa.wav", "rb") as audio:
        return stt.recognize(audio=audio, content_type="audio/wav", **options).get_result()


def transcript(results: dict) -> str:
    return " ".join(r["alternatives"][0]["transcript"].strip() for r in results["results"])


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Models folder with only the older broadband version; a data directory that outlives one server."""
    root = tmp_path_factory.mktemp("custom-e2e")
    models = root / "models" / BB
    models.mkdir(parents=True)
    (models / OLD).symlink_to(default_models_dir() / BB / OLD)
    return root / "models", root / "data"


def start(setup) -> ServerThread:
    models, data = setup
    return ServerThread(models, parse_config({**CREDENTIALS, "server": {"release_check_s": 0.5}}), data_dir=data).start()


def test_custom_language_model_lifecycle_with_the_watson_sdk(setup):
    models, data = setup
    server = start(setup)
    try:
        stt = sdk(server)
        custom_id = stt.create_language_model("support line", BB, description="IVR words").get_result()[
            "customization_id"]
        assert stt.get_language_model(custom_id).get_result()["status"] == "pending"
        stt.add_corpus(custom_id, "support", io.BytesIO(CORPUS.encode()))
        stt.add_words(custom_id, [CustomWord(word="Vorlaxa", display_as="VORLAXA")])
        ready = wait_for(stt, custom_id, {"ready"})
        assert ready["versions"] == [OLD]
        corpus = stt.get_corpus(custom_id, "support").get_result()
        assert corpus["status"] == "analyzed" and corpus["out_of_vocabulary_words"] >= 1
        words = stt.list_words(custom_id, word_type="user").get_result()["words"]
        assert [(w["word"], w["display_as"], w["source"]) for w in words] == [("Vorlaxa", "VORLAXA", ["user"])]

        base_only = recognise(stt)
        assert "VORLAXA" not in transcript(base_only)
        stt.train_language_model(custom_id, customization_weight=0.5)
        trained = wait_for(stt, custom_id, {"available"})
        assert trained["progress"] == 100 and trained["customization_weight"] == 0.5
        # issue 13, deviation 6: each trained version's own deadline, as GET /v1/models has the base versions'
        [deadline] = trained["version_deadlines"]
        assert deadline["base_model_version"] == OLD and deadline["state"] == "usable"
        assert deadline["transcription_deadline"] == transcription_deadline(
            dt.date.fromisoformat(deadline["created"][:10])).isoformat()
        assert stt.list_language_models().get_result()["customizations"][0]["version_deadlines"] == [deadline]
        with pytest.raises(ApiException) as again:
            stt.train_language_model(custom_id)
        assert again.value.status_code == 400 and "No input data modified" in again.value.message

        custom = recognise(stt, language_customization_id=custom_id)
        assert "VORLAXA" in transcript(custom)
        assert custom["recognized_with"] == {"model": BB, "base_model_version": OLD,
                                             "language_customization_id": custom_id}

        # another instance cannot see, use or delete it
        rival = sdk(server, "rival-key")
        for call in (lambda: rival.get_language_model(custom_id), lambda: rival.delete_language_model(custom_id),
                     lambda: recognise(rival, language_customization_id=custom_id)):
            with pytest.raises(ApiException) as other:
                call()
            assert other.value.status_code == 404
        assert rival.list_language_models().get_result() == {"customizations": []}

        # an asynchronous job with the custom model
        with open(FIXTURES / "vorlaxa.wav", "rb") as audio:
            job = stt.create_job(audio, content_type="audio/wav", language_customization_id=custom_id,
                                 user_token="t1").get_result()
        assert job["status"] in ("waiting", "processing", "completed")
        deadline = time.monotonic() + 120
        while (done := stt.check_job(job["id"]).get_result())["status"] not in ("completed", "failed"):
            assert time.monotonic() < deadline
            time.sleep(0.3)
        assert done["status"] == "completed", done
        assert "VORLAXA" in transcript(done["results"][0])
        assert [j["id"] for j in stt.check_jobs().get_result()["recognitions"]] == [job["id"]]
        stt.delete_job(job["id"])
        with pytest.raises(ApiException) as gone:
            stt.check_job(job["id"])
        assert gone.value.status_code == 404

        # A base-model release arrives while the server runs: registered, it is served without a restart
        # (issue 13, deviation 7), and an upgrade asked for at once finds it installed.
        assert main(["models", "register", str(default_models_dir() / BB / NEW),
                     "--models-dir", str(models), "--data-dir", str(data)]) == 0
        deadline = time.monotonic() + 60
        while len((listed := stt.get_model(BB).get_result())["versions"]) < 2:
            assert time.monotonic() < deadline, "the registered release was not picked up"
            time.sleep(0.2)
        assert [v["version"] for v in listed["versions"]] == [OLD, NEW]
        assert listed["supported_features"]["custom_language_model"] is True
        assert listed["supported_features"]["custom_acoustic_model"] is True
        # still on the old version: results say so, with Watson's warning
        old = recognise(stt, language_customization_id=custom_id)
        assert old["recognized_with"]["base_model_version"] == OLD
        assert old["warnings"] == [PREVIOUS_VERSION_WARNING]
        stt.upgrade_language_model(custom_id)
        assert stt.get_language_model(custom_id).get_result()["status"] in ("upgrading", "available")
        assert recognise(stt)["recognized_with"]["base_model_version"] == NEW  # new sessions get the release
    finally:
        server.stop()  # mid-upgrade: the job must resume at the next start, not stay "upgrading"
    server = start(setup)
    try:
        stt = sdk(server)
        upgraded = wait_for(stt, custom_id, {"available"})
        assert upgraded["versions"] == [OLD, NEW]
        new = recognise(stt, language_customization_id=custom_id)
        assert new["recognized_with"]["base_model_version"] == NEW and "warnings" not in new
        assert "VORLAXA" in transcript(new)
        older = recognise(stt, language_customization_id=custom_id, base_model_version=OLD)
        assert older["recognized_with"]["base_model_version"] == OLD
        assert older["warnings"] == [PREVIOUS_VERSION_WARNING]
        assert "VORLAXA" in transcript(older)
        callback = Collector()
        with open(FIXTURES / "vorlaxa.wav", "rb") as audio:
            ws = SpeechToTextV1(authenticator=BearerTokenAuthenticator("acme-key"))
            ws.set_service_url(server.ws)
            ws.recognize_using_websocket(audio=AudioSource(audio), content_type="audio/wav",
                                         recognize_callback=callback, language_customization_id=custom_id)
        assert not callback.errors
        assert any("VORLAXA" in r["alternatives"][0]["transcript"] for d in callback.data for r in d["results"])
        assert callback.data[0]["recognized_with"]["language_customization_id"] == custom_id
        stt.delete_language_model(custom_id)
        with pytest.raises(ApiException) as deleted:
            stt.get_language_model(custom_id)
        assert deleted.value.status_code == 404
    finally:
        server.stop()
    listing = json.loads(_run_cli(["models", "lifecycle", "--json", "--models-dir", str(models),
                                   "--data-dir", str(data)]))
    assert {e["version"] for e in listing} == {OLD, NEW}


def _run_cli(argv: list[str]) -> str:
    import contextlib

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(argv) == 0
    return out.getvalue()
