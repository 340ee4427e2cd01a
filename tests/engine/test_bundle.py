import json
import shutil

import pytest
import torch

from engine.bundle import BundleError, ModelNotFoundError, find_models, load_bundle, parse_version, resolve_model, save_bundle
from engine.features import FeatureConfig
from tests.conftest import tiny_model


def save(root, tokenizer_file, version: str, rate: int = 16000):
    features = FeatureConfig(sample_rate_hz=rate)
    name, _ = parse_version(version)
    return save_bundle(root, model=tiny_model(features.n_mels), tokenizer_file=tokenizer_file, features=features,
                       name=name, version=version, locale="en-US", description="", training_data={"hours": 0})


def test_round_trip_keeps_weights_and_manifest(tmp_path, tokenizer_file) -> None:
    path = save(tmp_path, tokenizer_file, "en-US_BroadbandModel.v2026-01-01")
    bundle = load_bundle(path)
    assert bundle.version == "en-US_BroadbandModel.v2026-01-01"
    assert bundle.manifest["created"] == "2026-01-01"
    assert bundle.sample_rate_hz == 16000
    assert bundle.frame_seconds == pytest.approx(0.04)
    for key, value in tiny_model().state_dict().items():
        assert torch.equal(bundle.model.state_dict()[key], value)
    assert not list(tmp_path.rglob(".tmp-*"))


def test_resolve_newest_and_named_versions(tmp_path, tokenizer_file) -> None:
    for v in ("en-US_BroadbandModel.v2026-05-01", "en-US_BroadbandModel.v2026-11-01"):
        save(tmp_path, tokenizer_file, v)
    save(tmp_path, tokenizer_file, "en-US_NarrowbandModel.v2026-11-01", rate=8000)
    assert [m.version for m in find_models(tmp_path)] == [
        "en-US_BroadbandModel.v2026-05-01", "en-US_BroadbandModel.v2026-11-01", "en-US_NarrowbandModel.v2026-11-01"]
    assert resolve_model(tmp_path, "en-US_BroadbandModel").version.endswith("2026-11-01")
    assert resolve_model(tmp_path, "en-US_BroadbandModel", "en-US_BroadbandModel.v2026-05-01").created.month == 5
    with pytest.raises(ModelNotFoundError, match="installed: en-US_BroadbandModel, en-US_NarrowbandModel"):
        resolve_model(tmp_path, "fr-FR_BroadbandModel")
    with pytest.raises(ModelNotFoundError, match="available: en-US_BroadbandModel.v2026-05-01"):
        resolve_model(tmp_path, "en-US_BroadbandModel", "en-US_BroadbandModel.v2020-01-01")


def test_a_bundle_still_being_copied_into_place_is_not_found(tmp_path, tokenizer_file) -> None:
    """A release is written into a hidden folder and renamed into place; a server looking for new releases
    meanwhile once loaded the half-copied folder, failed, and never served the release (seen in the e2e test)."""
    done = save(tmp_path, tokenizer_file, "en-US_BroadbandModel.v2026-05-01")
    shutil.copytree(done, done.parent / ".en-US_BroadbandModel.v2026-11-01.8c894467.tmp")
    assert [m.path for m in find_models(tmp_path)] == [done]


@pytest.mark.parametrize("bad", ["en-US_BroadbandModel", "en-US_BroadbandModel.v2026-13-01x", "x.v2026-01-01"])
def test_bad_version_ids(bad: str) -> None:
    with pytest.raises(BundleError, match="NAME.vYYYY-MM-DD"):
        parse_version(bad)


def test_broken_manifests_are_refused(tmp_path, tokenizer_file) -> None:
    path = save(tmp_path, tokenizer_file, "en-US_BroadbandModel.v2026-01-01")
    manifest = json.loads((path / "manifest.json").read_text())
    (path / "manifest.json").write_text("{")
    with pytest.raises(BundleError, match="not valid JSON"):
        load_bundle(path)
    del manifest["locale"]
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="lacks"):
        load_bundle(path)
    assert find_models(tmp_path) == []
    with pytest.raises(BundleError, match="has no manifest.json"):
        load_bundle(tmp_path)
