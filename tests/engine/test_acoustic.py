"""Custom acoustic models on the tiny test model: training, the adapted folder, loading, labelling."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from engine.acoustic import AdaptConfig, adapt_acoustic_model, pseudo_label
from engine.adapted import META_FILE, WEIGHTS_FILE, load_adapted_bundle, read_adaptation
from engine.bundle import BundleError, save_bundle
from engine.features import FeatureConfig, log_mel
from engine.recognizer import Recognizer, pad_to_output_frames
from engine.text import normalize_transcript
from tests.conftest import tiny_model

pytestmark = pytest.mark.timeout(60)

TEXTS = ["press one for sales", "goodbye", "thank you for calling"]
FAST = AdaptConfig(epochs=6, learning_rate=3e-3, batch_size=2, augment=False, speeds=(1.0,), threads=1)


def noise(seconds: float, seed: int) -> torch.Tensor:
    """Fixed pseudo-random audio at 16 kHz."""
    return 0.1 * torch.randn(int(16000 * seconds), generator=torch.Generator().manual_seed(seed))


@pytest.fixture()
def examples() -> list[tuple[torch.Tensor, str]]:
    return [(noise(1.5, i), text) for i, text in enumerate(TEXTS)]


def ctc_loss(bundle, examples) -> float:
    """Mean CTC loss of the bundle's model over the examples (eval mode)."""
    total = 0.0
    with torch.no_grad():
        for samples, text in examples:
            feats = pad_to_output_frames(log_mel(samples, bundle.features), 4)
            lp, lengths = bundle.model(feats[None], torch.tensor([feats.shape[0]]))
            tokens = bundle.tokenizer.encode(normalize_transcript(text))
            total += float(F.ctc_loss(lp.transpose(0, 1), torch.tensor(tokens), lengths, torch.tensor([len(tokens)])))
    return total / len(examples)


def state(bundle) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in bundle.model.state_dict().items()}


@pytest.mark.parametrize("method", ["full", "top", "lora"])
def test_loss_goes_down_and_loading_gives_the_adapted_weights(tiny_bundle, examples, tmp_path, method):
    before = state(tiny_bundle)
    config = dataclasses.replace(FAST, method=method, top_blocks=1,
                                 learning_rate=1e-2 if method == "lora" else FAST.learning_rate)
    summary = adapt_acoustic_model(tiny_bundle, examples, tmp_path / "am", config=config)
    losses = summary["epoch_losses"]
    assert len(losses) == config.epochs and losses[-1] < 0.8 * losses[0]
    assert summary["final_loss"] == losses[-1]
    assert summary["base_version"] == tiny_bundle.version and summary["method"] == method
    assert summary["examples_used"] == 3 and summary["audio_minutes"] == pytest.approx(4.5 / 60, rel=0.05)
    assert read_adaptation(tmp_path / "am") == summary
    # The caller's bundle is left as it was.
    assert all(torch.equal(v, tiny_bundle.model.state_dict()[k]) for k, v in before.items())

    adapted = load_adapted_bundle(tiny_bundle.path, tmp_path / "am")
    assert adapted.version == tiny_bundle.version and adapted.manifest["adaptation"]["method"] == method
    assert ctc_loss(adapted, examples) < ctc_loss(tiny_bundle, examples)
    after = state(adapted)
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert not any(k.startswith("feature_") for k in changed)
    if method == "top":
        assert changed and all(k.startswith(("blocks.2.", "norm.", "head.")) for k in changed)
    else:
        assert any(k.startswith("blocks.0.") for k in changed)


def test_lora_folder_keeps_only_the_factors(tiny_bundle, examples, tmp_path):
    adapt_acoustic_model(tiny_bundle, examples, tmp_path / "am", config=dataclasses.replace(FAST, method="lora",
                                                                                          lora_rank=2, epochs=1))
    saved = torch.load(tmp_path / "am" / WEIGHTS_FILE, weights_only=True)
    assert saved["replace"] == {}
    a, b = saved["low_rank"]["head.weight"]["a"], saved["low_rank"]["head.weight"]["b"]
    assert a.shape == (2, 24) and b.shape == (40, 2)


def test_same_seed_same_weights_other_seed_other_weights(tiny_bundle, examples, tmp_path):
    config = AdaptConfig(epochs=2, batch_size=2, augment=True, threads=1)  # augmentation and speeds are seeded too
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        adapt_acoustic_model(tiny_bundle, examples, tmp_path / name, config=dataclasses.replace(config, seed=seed))
    a, b, c = (torch.load(tmp_path / n / WEIGHTS_FILE, weights_only=True)["replace"] for n in "abc")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_dropout_is_the_configs_not_the_base_models(tiny_bundle, examples, tmp_path):
    """The shipped base models carry dropout 0; fine-tuning applies the config's."""
    config = AdaptConfig(epochs=1, batch_size=2, speeds=(1.0,), threads=1)
    for name, dropout in (("none", 0.0), ("none-again", 0.0), ("half", 0.5)):
        adapt_acoustic_model(tiny_bundle, examples, tmp_path / name, config=dataclasses.replace(config, dropout=dropout))
    a, b, c = (torch.load(tmp_path / n / WEIGHTS_FILE, weights_only=True)["replace"] for n in ("none", "none-again", "half"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
    assert all(m.p == tiny_bundle.model.config.dropout for m in tiny_bundle.model.modules()
               if isinstance(m, torch.nn.Dropout))  # the base model itself is left alone


def test_progress_is_reported_up_to_one(tiny_bundle, examples, tmp_path):
    seen: list[float] = []
    adapt_acoustic_model(tiny_bundle, examples, tmp_path / "am", config=FAST, progress=seen.append)
    assert len(seen) >= FAST.epochs
    assert seen == sorted(seen) and 0 < seen[0] and seen[-1] == 1.0


def test_a_failed_run_leaves_the_previous_folder(tiny_bundle, examples, tmp_path, monkeypatch):
    out = tmp_path / "am"
    adapt_acoustic_model(tiny_bundle, examples, out, config=FAST)
    previous = (out / WEIGHTS_FILE).read_bytes()

    def fail(fraction: float) -> None:
        if fraction > 0.5:
            raise RuntimeError("cancelled")

    with pytest.raises(RuntimeError, match="cancelled"):
        adapt_acoustic_model(tiny_bundle, examples, out, config=dataclasses.replace(FAST, seed=2),
                             progress=fail)
    monkeypatch.setattr(torch, "save", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        adapt_acoustic_model(tiny_bundle, examples, out, config=dataclasses.replace(FAST, seed=2))
    assert (out / WEIGHTS_FILE).read_bytes() == previous
    assert sorted(p.name for p in tmp_path.iterdir()) == ["am", "models"]


def test_a_new_run_replaces_the_folder(tiny_bundle, examples, tmp_path):
    out = tmp_path / "am"
    out.mkdir()
    (out / "stale").write_text("old")
    adapt_acoustic_model(tiny_bundle, examples, out, config=FAST)
    assert sorted(p.name for p in out.iterdir()) == [META_FILE, WEIGHTS_FILE]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["am", "models"]


@pytest.mark.parametrize(("examples", "message"), [
    ([], "no examples"),
    ([(noise(1.0, 0), "[silence]"), (noise(1.0, 1), "  ?! ")], "2 have a transcript with no words"),
    ([(noise(0.05, 0), "thank you for calling")], "1 have audio too short"),
])
def test_nothing_usable_is_a_value_error(tiny_bundle, tmp_path, examples, message):
    with pytest.raises(ValueError, match=message):
        adapt_acoustic_model(tiny_bundle, examples, tmp_path / "am", config=FAST)
    assert not (tmp_path / "am").exists()


def test_unusable_examples_are_skipped_and_counted(tiny_bundle, examples, tmp_path):
    summary = adapt_acoustic_model(tiny_bundle, [*examples, (noise(1.0, 9), "[noise]")], tmp_path / "am",
                                   config=dataclasses.replace(FAST, epochs=1))
    assert summary["examples"] == 4 and summary["examples_used"] == 3
    assert summary["skipped"] == {"empty_transcript": 1, "audio_too_short": 0, "audio_too_long": 0}


def test_speed_perturbation_trains_on_every_example(tiny_bundle, examples, tmp_path):
    config = dataclasses.replace(FAST, speeds=[0.9, 1.0, 1.1], epochs=2)
    assert config.speeds == (0.9, 1.0, 1.1)
    summary = adapt_acoustic_model(tiny_bundle, examples, tmp_path / "am", config=config)
    assert summary["examples_used"] == 3 and summary["config"]["speeds"] == [0.9, 1.0, 1.1]
    assert summary["audio_minutes"] == pytest.approx(4.5 / 60, rel=0.05)


def test_bad_config_is_a_value_error():
    with pytest.raises(ValueError, match="method must be one of"):
        AdaptConfig(method="everything")
    with pytest.raises(ValueError, match="positive"):
        AdaptConfig(epochs=0)
    with pytest.raises(ValueError, match="speeds"):
        AdaptConfig(speeds=(0.1,))
    with pytest.raises(ValueError, match="dropout"):
        AdaptConfig(dropout=1.0)


def test_loading_refuses_another_base_version(tiny_bundle, examples, tmp_path, tokenizer_file):
    adapt_acoustic_model(tiny_bundle, examples, tmp_path / "am", config=FAST)
    other = save_bundle(tmp_path / "other", model=tiny_model(), tokenizer_file=tokenizer_file,
                        features=FeatureConfig(sample_rate_hz=16000), name="en-US_BroadbandModel",
                        version="en-US_BroadbandModel.v2026-06-01", locale="en-US", description="other",
                        training_data={})
    with pytest.raises(BundleError, match="adapted from 'en-US_BroadbandModel.v2026-01-01', not from"):
        load_adapted_bundle(other, tmp_path / "am")
    with pytest.raises(BundleError, match="not an adapted acoustic model"):
        load_adapted_bundle(tiny_bundle.path, tmp_path / "missing")


def test_pseudo_label_agrees_with_the_recognizer(tiny_bundle):
    samples = noise(2.0, 3)
    label = pseudo_label(tiny_bundle, samples)
    assert label == normalize_transcript(Recognizer(tiny_bundle).transcribe(samples).transcript)
    assert label  # the sharpened random head emits pieces
    assert pseudo_label(tiny_bundle, torch.zeros(10)) == ""
