"""A custom acoustic model of the shipped Whisper-based narrowband version, on committed real speech: trained
with :func:`engine.acoustic.adapt_acoustic_model`, loaded with :func:`engine.adapted.load_adapted_bundle`,
it changes the finals of the audio it was trained on towards its transcript, and nothing else: the base
version (same process, same network) still says what it said."""

from __future__ import annotations

import json

import pytest
import torch

from engine.acoustic import AdaptConfig, adapt_acoustic_model
from engine.adapted import load_adapted_bundle, load_adapter
from engine.audio import load_audio
from engine.bundle import BundleError, load_bundle, resolve_model
from engine.catalog import default_models_dir
from engine.recognizer import Recognizer
from engine.whisper.adapt import WhisperAdaptConfig
from tests.conftest import FIXTURES

ALLISON = FIXTURES / "allison"  # TRAIN split (see its README)


@pytest.fixture(scope="module")
def narrowband():
    installed = resolve_model(default_models_dir(), "en-US_NarrowbandModel")
    bundle = load_bundle(installed.path)
    if bundle.whisper is None:
        pytest.skip("the newest narrowband version is not Whisper-based")
    return installed, bundle


def test_an_adapter_learns_its_audio_and_leaves_the_base_as_it_was(narrowband, tmp_path) -> None:
    installed, base = narrowband
    star = load_audio(ALLISON / "star.wav", 8000)
    muted = load_audio(ALLISON / "conf-muted.wav", 8000)
    before = Recognizer(base).transcribe(star).transcript.strip()
    assert before == "star"
    # a transcript the audio does not say: only training can make the final pass write it
    examples = [(star, "asterisk key"), (muted, "you are now muted")]
    summary = adapt_acoustic_model(base, examples, tmp_path / "am", config=AdaptConfig(threads=2),
                                   whisper_config=WhisperAdaptConfig(epochs=8, learning_rate=3e-3, batch_size=2))
    meta = json.loads((tmp_path / "am" / "adaptation.json").read_text())
    assert meta["method"] == summary["method"] == "whisper-lora" and meta["base_version"] == base.version
    assert summary["examples_used"] == 2 and summary["epoch_losses"][-1] < summary["epoch_losses"][0]
    assert (tmp_path / "am" / "adapted.pt").stat().st_size < 2 * 1024 * 1024  # factors, not a network

    adapted = load_adapted_bundle(installed.path, tmp_path / "am")
    assert adapted.adapter is not None
    assert Recognizer(adapted).transcribe(star).transcript.strip() == "asterisk key"
    # the base network itself is untouched: an adapter applies per call
    assert Recognizer(base).transcribe(star).transcript.strip() == before
    # and per request on the base's own recognizer
    adapter = load_adapter(base, tmp_path / "am")
    final = Recognizer(base).final_pass(adapter=adapter)
    assert final.adapter is adapter
    greedy = Recognizer(base).final_pass("greedy", adapter=adapter)
    assert greedy.adapter is None and greedy.ignored_adapter


def test_an_adapter_of_another_version_or_a_broken_one_is_refused(narrowband, tmp_path) -> None:
    installed, base = narrowband
    folder = tmp_path / "am"
    folder.mkdir()
    (folder / "adaptation.json").write_text(json.dumps({"base_version": "en-US_NarrowbandModel.v2020-01-01",
                                                       "method": "whisper-lora"}))
    with pytest.raises(BundleError, match="was adapted from"):
        load_adapter(base, folder)
    (folder / "adaptation.json").write_text(json.dumps({"base_version": base.version, "method": "whisper-lora"}))
    torch.save({"kind": "whisper-lora", "scale": 1.0, "rank": 2, "encoder_blocks": 0,
                "factors": {"decoder.blocks.0.attn.query": {"a": torch.zeros(2, 7), "b": torch.zeros(384, 2)}}},
               folder / "adapted.pt")
    with pytest.raises(BundleError, match="factors for a 384x7 layer"):
        load_adapter(base, folder)
