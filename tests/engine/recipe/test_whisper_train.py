"""The streaming-Whisper fine-tune (engine.recipe.whisper_train): both methods train, checkpoint what an
artifact carries, resume, and refuse to resume a run of the other method."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.recipe import whisper_train
from engine.whisper.model import WhisperCTCConfig, build_streaming, shared_pretrained

WORDS = "press one for sales two for support the pound key please enter your number after the tone".split()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Eight short utterances of random 'speech' (five labelled, three not) and a text folder."""
    root = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(0)
    items = []
    for i in range(8):
        mel = rng.uniform(-1.5, 0.0, size=(60 + 8 * i, 80)).astype(np.float32)
        text = " ".join(WORDS[i: i + 3]) if i < 5 else ""
        items.append({"index": i, "text": text, "band": "wide", "source": "test", "mel": mel})
    (root / "corpus").mkdir()
    torch.save(items, root / "corpus" / "labelled-000.pt")
    (root / "text").mkdir()
    lines = [" ".join(rng.permutation(WORDS)[:6]) for _ in range(200)]
    (root / "text" / "train.txt").write_text("\n".join(lines) + "\n")
    return root


def _train(corpus, out, *extra: str) -> None:
    whisper_train.main(["--corpus", str(corpus / "corpus"), "--text", str(corpus / "text"), "--out", str(out),
                        "--vocab-size", "40", "--minutes", "0.001", "--threads", "1", "--checkpoint-minutes", "100",
                        *extra])


@pytest.mark.parametrize("method", ["top", "lora"])
def test_a_run_checkpoints_the_artifact_weights_and_resumes(corpus, tmp_path, method) -> None:
    out = tmp_path / method
    _train(corpus, out, "--method", method, "--trained-blocks", "1", "--lr", "1e-2")
    ckpt = torch.load(out / "ckpt-last.pt", weights_only=False)
    assert ckpt["method"] == method and ckpt["step"] >= 1
    config = WhisperCTCConfig.from_dict(ckpt["config"])
    pretrained = shared_pretrained(config.pretrained)
    # the names an artifact has, whichever way the blocks were trained, and weights that moved
    model = build_streaming(config, pretrained, ckpt["model"])
    name = "encoder.blocks.3.attn.query.weight"
    assert not torch.equal(model.state_dict()[name], pretrained.state_dict()[name])
    assert torch.equal(model.state_dict()["encoder.blocks.2.attn.query.weight"],
                       pretrained.state_dict()["encoder.blocks.2.attn.query.weight"])
    assert bool(ckpt["lora"]) == (method == "lora")
    _train(corpus, out, "--method", method, "--trained-blocks", "1", "--lr", "1e-2")
    assert torch.load(out / "ckpt-last.pt", weights_only=False)["step"] > ckpt["step"]


def test_resuming_with_the_other_method_is_refused(corpus, tmp_path) -> None:
    out = tmp_path / "run"
    _train(corpus, out, "--method", "lora", "--trained-blocks", "1")
    with pytest.raises(SystemExit, match="--method lora"):
        _train(corpus, out, "--method", "top", "--trained-blocks", "1")
