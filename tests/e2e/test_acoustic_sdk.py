"""Custom acoustic models end to end with IBM's ``ibm-watson`` SDK against the real server on the shipped
narrowband models: audio resources (a file with a Transcript header, a zip with transcripts.tsv),
training, recognition with the acoustic model alone and with a custom language model, the helper-LM
rule, cancelling a training, and ownership."""

from __future__ import annotations

import asyncio
import io
import time
import zipfile
from urllib.parse import quote

import aiohttp
import pytest
from ibm_cloud_sdk_core import ApiException
from ibm_cloud_sdk_core.authenticators import BearerTokenAuthenticator
from ibm_watson import SpeechToTextV1

from engine.bundle import find_models
from engine.catalog import default_models_dir
from server.config import parse_config
from tests.conftest import FIXTURES
from tests.server.conftest import ServerThread

NB = "en-US_NarrowbandModel"
NEWEST_NB = [m for m in find_models(default_models_dir()) if m.name == NB][-1].version
# Real speech (Allison, TRAIN split): 8 kHz, as a telephone caller sends it.
CALL = FIXTURES / "allison" / "vm-reenterpassword.wav"
SAID = "please re enter your password followed by the pound key"
CONFIG = {"credentials": [{"instance": "acme", "api_key": "acme-key"}, {"instance": "rival", "api_key": "rival-key"}],
          "customization": {"min_acoustic_minutes": 0.0}}


def sdk(server: ServerThread, key: str = "acme-key") -> SpeechToTextV1:
    stt = SpeechToTextV1(authenticator=BearerTokenAuthenticator(key))
    stt.set_service_url(server.http)
    return stt


def wait_until(read, done, timeout_s: float = 240):
    deadline = time.monotonic() + timeout_s
    while not done(value := read()):
        assert time.monotonic() < deadline, value
        time.sleep(0.3)
    return value


def cancel(server: ServerThread, custom_id: str) -> int:
    async def main():
        async with aiohttp.ClientSession(server.http, headers={"Authorization": "Bearer acme-key"}) as http, \
                http.post(f"/v1/acoustic_customizations/{custom_id}/cancel_training") as r:
            return r.status
    return asyncio.run(main())


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = ServerThread(default_models_dir(), parse_config(CONFIG), data_dir=tmp_path_factory.mktemp("am-data")).start()
    yield s
    s.stop()


def test_custom_acoustic_model_with_the_watson_sdk(server):
    stt = sdk(server)
    am = stt.create_acoustic_model("caller voices", NB).get_result()["customization_id"]
    phone = CALL.read_bytes()
    stt.add_audio(am, "call-1", io.BytesIO(phone), content_type="audio/wav", headers={"Transcript": quote(SAID)})
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("a.wav", phone)
        z.writestr("transcripts.tsv", f"a.wav\t{SAID}\n")
    stt.add_audio(am, "calls", io.BytesIO(archive.getvalue()), content_type="application/zip",
                  contained_content_type="audio/wav")
    listing = wait_until(lambda: stt.list_audio(am).get_result(),
                         lambda v: all(a["status"] == "ok" for a in v["audio"]) and len(v["audio"]) == 2)
    assert listing["total_minutes_of_audio"] > 0
    assert stt.get_audio(am, "calls").get_result()["container"]["details"]["compression"] == "zip"

    # the helper language model must be trained first
    lm = stt.create_language_model("numbers", NB).get_result()["customization_id"]
    with pytest.raises(ApiException) as untrained:
        stt.train_acoustic_model(am, custom_language_model_id=lm)
    assert untrained.value.status_code == 400 and "must be available" in untrained.value.message

    stt.train_acoustic_model(am)
    trained = wait_until(lambda: stt.get_acoustic_model(am).get_result(), lambda v: v["status"] == "available")
    assert trained["progress"] == 100 and trained["versions"] == [NEWEST_NB]
    assert [(d["base_model_version"], d["state"]) for d in trained["version_deadlines"]] == [(NEWEST_NB, "usable")]

    with open(CALL, "rb") as audio:
        alone = stt.recognize(audio=audio, content_type="audio/wav", model=NB, acoustic_customization_id=am).get_result()
    assert alone["recognized_with"] == {"model": NB, "base_model_version": NEWEST_NB, "acoustic_customization_id": am}
    assert alone["results"][0]["alternatives"][0]["transcript"].strip() == SAID

    stt.add_corpus(lm, "text", io.BytesIO(f"{SAID}\n".encode()))
    wait_until(lambda: stt.get_language_model(lm).get_result(), lambda v: v["status"] == "ready")
    stt.train_language_model(lm)
    wait_until(lambda: stt.get_language_model(lm).get_result(), lambda v: v["status"] == "available")
    with open(CALL, "rb") as audio:
        both = stt.recognize(audio=audio, content_type="audio/wav", acoustic_customization_id=am,
                             language_customization_id=lm).get_result()
    assert both["recognized_with"]["acoustic_customization_id"] == am
    assert both["recognized_with"]["language_customization_id"] == lm
    assert both["results"][0]["alternatives"][0]["transcript"].strip() == SAID
    # Whisper's final pass applies the custom LM (N-best rescoring): no warning says otherwise
    assert not any("not applied" in w for w in both.get("warnings", []))

    # retrain with the helper LM, and cancel it: the model keeps its version
    stt.train_acoustic_model(am, custom_language_model_id=lm)
    assert cancel(server, am) == 200
    after = wait_until(lambda: stt.get_acoustic_model(am).get_result(), lambda v: v["status"] != "training")
    assert after["status"] == "available" and after["versions"] == [NEWEST_NB]

    rival = sdk(server, "rival-key")
    with pytest.raises(ApiException) as other:
        rival.get_acoustic_model(am)
    assert other.value.status_code == 404
    stt.delete_acoustic_model(am)
    stt.delete_language_model(lm)
    assert stt.list_acoustic_models().get_result() == {"customizations": []}
