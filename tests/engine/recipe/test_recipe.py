import hashlib
import math
import random
from pathlib import Path

import pytest
import torch

from engine.recipe import augment
from engine.recipe.allison import prompts, split_of
from engine.recipe.export import training_summary
from engine.recipe.sentences import clean_sentence, harvest, is_held_out
from engine.recipe import train
from engine.recipe.train import augment_features, load_init
from engine.recipe.voices import ESPEAK_TRAIN_ACCENTS, FLITE_TRAIN, HELD_OUT, random_training_voice
from tests.conftest import tiny_model


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Return the number of items in the queue.", "return the number of items in the queue"),
        ("Call foo() with x=1.", None),
        ("see https://example.org for details", None),
        ("Too short.", None),
        ("lowercase start is not a sentence start here", None),
    ],
)
def test_clean_sentence(raw: str, expected: str | None) -> None:
    assert clean_sentence(raw) == expected


def test_harvest_deduplicates_and_splits() -> None:
    text = "Open the file for reading. Open the file for reading.\n\nClose the file when you are done."
    assert harvest([text]) == ["open the file for reading", "close the file when you are done"]


def test_held_out_split_is_stable() -> None:
    assert is_held_out("a b c") == is_held_out("a b c")
    share = sum(is_held_out(f"sentence {i}") for i in range(5000)) / 5000
    assert 0.02 < share < 0.06


def test_allison_split_follows_the_sha1_rule() -> None:
    for name in ("vm-goodbye", "digits/1", "agent-pass", "conf-onlyperson"):
        last = hashlib.sha1(name.encode()).hexdigest()[-1]
        assert split_of(name) == ("test" if last in "012" else "train")


def test_training_voices_never_include_held_out_ones() -> None:
    rng = random.Random(0)
    reserved = {name for _, name in HELD_OUT.values()}
    for _ in range(2000):
        voice = random_training_voice(rng)
        assert voice.name.split("+")[0] not in reserved
        assert "hts" not in voice.name
    assert "en-gb-scotland" not in ESPEAK_TRAIN_ACCENTS and "awb" not in FLITE_TRAIN


def test_augment_chain_keeps_audio_finite_and_bounded() -> None:
    rng = random.Random(3)
    x = torch.sin(torch.arange(16000) / 10.0) * 0.5
    for _ in range(10):
        y = augment.augment(x, rng)
        assert torch.isfinite(y).all() and y.abs().max() <= 1.0
        assert 0.8 * 16000 < y.numel() < 2.6 * 16000
    narrow = augment.telephone(x, rng)
    assert narrow.numel() == 8000


def test_feature_augmentation_keeps_shape() -> None:
    x = torch.randn(2, 64, 80)
    y = augment_features(x.clone(), torch.tensor([64, 40]), torch.Generator().manual_seed(0))
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert not torch.equal(x, y)


def test_narrowband_model_starts_from_broadband_weights(tmp_path) -> None:
    wide = tiny_model(80)
    torch.save({"model": wide.state_dict()}, tmp_path / "wide.pt")
    narrow = tiny_model(64, seed=5)
    load_init(narrow, tmp_path / "wide.pt")
    w_wide = wide.proj.weight.reshape(24, 4, 80)
    w_narrow = narrow.proj.weight.reshape(24, 4, 64)
    assert torch.equal(w_narrow, w_wide[:, :, :64])
    assert torch.equal(narrow.blocks[1].conv.weight, wide.blocks[1].conv.weight)


def test_training_summary_names_the_held_out_voices() -> None:
    ck = {"band": "wide", "hours": 1.234, "utterances": 10, "epoch": 2, "history": []}
    summary = training_summary(ck)
    assert summary["held_out_voices"] == sorted(HELD_OUT)
    assert summary["hours"] == 1.23


def test_atomic_save_replaces_and_leaves_no_temporary(tmp_path) -> None:
    from engine.recipe.checkpoint import atomic_save

    target = tmp_path / "ckpt.pt"
    atomic_save({"epoch": 1}, target)
    atomic_save({"epoch": 2}, target)
    assert torch.load(target)["epoch"] == 2
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]


def test_training_runs_resumes_and_keeps_the_last_epochs_plain(tmp_path, monkeypatch) -> None:
    """A tiny run: snapshots, no dropout by default, feature augmentation off in the plain epochs, resume."""
    n, frames = 20, 40
    (tmp_path / "corpus").mkdir()
    torch.save({"features": torch.randn(n * frames, 80).half(), "lengths": torch.full((n,), frames),
                "texts": ["a cat"] * n}, tmp_path / "corpus" / "train-wideband.pt")
    tokenizer = next(Path("models/en-US_BroadbandModel").glob("*/tokenizer.model"))
    augmented = []

    def counting_augment(x, lengths, gen):
        augmented.append(x.shape[0])
        return augment_features(x, lengths, gen)

    monkeypatch.setattr(train, "augment_features", counting_augment)
    args = ["--corpus", str(tmp_path / "corpus"), "--band", "wide", "--out", str(tmp_path / "run"),
            "--tokenizer", str(tokenizer), "--channels", "16", "--max-frames", str(4 * frames), "--threads", "1",
            "--plain-epochs", "1", "--snapshot-epochs", "1"]
    train.main([*args, "--epochs", "2"])
    # 18 training utterances (2 are dev) in batches of 4: 5 batches in the one augmented epoch.
    assert len(augmented) == 5
    last = torch.load(tmp_path / "run" / "ckpt-last.pt", weights_only=False)
    assert last["epoch"] == 2 and last["config"]["dropout"] == 0.0
    assert torch.load(tmp_path / "run" / "ckpt-epoch1.pt", weights_only=False)["epoch"] == 1
    train.main([*args, "--epochs", "3"])
    resumed = torch.load(tmp_path / "run" / "ckpt-last.pt", weights_only=False)
    assert resumed["epoch"] == 3 and [h["epoch"] for h in resumed["history"]] == [1, 2, 3]
    assert all(math.isfinite(h["loss"]) and h["loss"] > 0 for h in resumed["history"])


def test_allison_references_leave_out_the_transcribers_notes(tmp_path) -> None:
    """``(10 seconds of silence)`` and ``(simple tone sound plays)`` are notes, not speech: a silence prompt
    keeps an empty reference, a prompt that is only a [sound description] is left out."""
    import gzip

    transcripts = tmp_path / "core-sounds-en.txt.gz"
    transcripts.write_bytes(gzip.compress(
        b"; comment\nsilence/7: (7 seconds of silence)\n"
        b"vm-intro: Please leave your message after the tone.  (simple tone sound plays)\n"
        b"beep: [this is a simple beep tone]\nspy-iax2: IAX (note: does not say \"2\")\n"))
    assert prompts(transcripts) == {"silence/7": "", "vm-intro": "Please leave your message after the tone.",
                                    "spy-iax2": "IAX"}
