"""The whisper-fast recipe (engine.recipe.whisper_u2): teacher transcripts, a resumable run of the decoder's
adapter, refusal of another variant, and the export that a version then serves as its whisper-fast pass."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from engine.audio import load_audio
from engine.bundle import BundleError, load_bundle
from engine.finalpass import FinalPassKind, choose_final_pass
from engine.recipe import whisper_u2
from tests.conftest import FIXTURES


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Three labelled utterances of real speech's features and two unlabelled ones of noise."""
    from engine.features import log_mel
    from engine.whisper.features import WhisperFeatureConfig
    root = tmp_path_factory.mktemp("u2corpus")
    items = []
    for i, name in enumerate(("vm-reenterpassword", "vm-advopts", "conf-muted")):
        mel = log_mel(load_audio(FIXTURES / "allison" / f"{name}.wav", 16000), WhisperFeatureConfig(16000))
        items.append({"index": i, "text": name.replace("-", " "), "band": "wide", "source": "test", "mel": mel.numpy()})
    rng = np.random.default_rng(0)
    for i in range(2):
        items.append({"index": 3 + i, "text": "", "band": "wide", "source": f"noise{i}",
                      "mel": rng.uniform(-1.5, -1.0, size=(80, 80)).astype(np.float32)})
    torch.save(items, root / "labelled-000.pt")
    return root


@pytest.mark.timeout(600)
def test_a_run_trains_resumes_and_exports_the_whisper_fast_adapter(corpus, whisper_bundle, tmp_path) -> None:
    out = tmp_path / "run"
    args = ["--corpus", str(corpus), "--model", str(whisper_bundle.path), "--out", str(out), "--per-kind", "3",
            "--top", "full", "--minutes", "0.001", "--threads", "1", "--batch-frames", "400", "--concat", "1.0"]
    whisper_u2.main(args)
    rows = torch.load(out / "inputs.pt", weights_only=False)
    # every kept utterance has the teacher's transcript (the padded whisper pass) and its features
    assert rows and all({"low", "mel", "teacher", "label"} <= set(r) for r in rows)
    assert any(r["teacher"] for r in rows if r["label"])
    first = torch.load(out / "ckpt-last.pt", weights_only=False)
    assert first["state"]["step"] >= 1 and first["variant"]["top"] == "full" and first["variant"]["concat"] == 1.0
    assert first["data"]["joined"] >= 1  # longer utterances joined from the corpus's short ones
    factors = first["factors"]
    assert any(bool(f["b"].abs().sum() > 0) for f in factors.values())  # trained away from the base network
    version = tmp_path / "version"
    shutil.copytree(whisper_bundle.path, version)
    whisper_u2.main([*args, "--export", str(version)])
    assert torch.load(out / "ckpt-last.pt", weights_only=False)["state"]["step"] > first["state"]["step"]
    bundle = load_bundle(version)
    assert bundle.manifest["whisper_fast"]["adapter"] == whisper_u2.ADAPTER_FILE
    assert bundle.whisper.unpadded is not None
    assert choose_final_pass(bundle, "whisper-fast").kind is FinalPassKind.WHISPER_FAST
    feats = torch.from_numpy(torch.load(corpus / "labelled-000.pt", weights_only=False)[0]["mel"])
    assert isinstance(bundle.whisper.transcribe(feats, padded=False).text, str)
    # the manifest records the adapter's sha256: a changed file is refused at load
    adapter_file = version / whisper_u2.ADAPTER_FILE
    data = adapter_file.read_bytes()
    adapter_file.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))
    with pytest.raises(BundleError, match="sha256"):
        load_bundle(version)
    with pytest.raises(SystemExit, match="not"):  # a resumed run keeps its variant
        whisper_u2.main([*args, "--rank", "8"])
    with pytest.raises(SystemExit, match="--top full"):  # joined utterances need the whole-utterance encoding
        whisper_u2.main(["pretrained" if a == "full" else a for a in args])


def test_a_version_without_the_adapter_refuses_the_unpadded_decode(whisper_bundle) -> None:
    feats = torch.zeros(100, 80) - 1.0
    with pytest.raises(ValueError, match="no decoder adapter"):
        whisper_bundle.whisper.transcribe(feats, padded=False)


def test_joined_utterances_stay_within_a_band_and_whisper_positions() -> None:
    import random
    rows = [{"mel": torch.full((n, 80), float(i)), "teacher": f"t{i}", "label": "", "source": "s", "band": band}
            for i, (n, band) in enumerate([(900, "wide"), (1000, "wide"), (1200, "wide"), (300, "narrow"),
                                           (400, "narrow"), (50, "narrow")])]
    rows.append({"mel": torch.zeros(100, 80), "teacher": "", "label": "", "source": "s", "band": "wide"})
    out = whisper_u2.joined(rows, 2.0, random.Random(0), max_frames=2800)
    assert out
    for row in out:
        parts = row["teacher"].split()
        assert len(parts) >= 2 and "" not in parts
        # the frames are the parts' own, in the transcript's order, and no more than Whisper's 30 s hold
        assert row["mel"].shape[0] == sum(rows[int(p[1:])]["mel"].shape[0] for p in parts) <= 2800
        assert [float(v) for v in row["mel"][:, 0].unique_consecutive()] == [float(p[1:]) for p in parts]
        assert len({rows[int(p[1:])]["band"] for p in parts}) == 1 == len({row["band"]})
    assert whisper_u2.joined(rows, 0.0, random.Random(0)) == []
    # rows that the teacher reads alike are never joined to each other (the adapter learns to repeat itself)
    same = [{"mel": torch.zeros(100, 80), "teacher": "speaking in foreign language", "label": "", "source": "s",
             "band": "narrow"} for _ in range(6)]
    assert whisper_u2.joined(same, 2.0, random.Random(0)) == []
    mixed = whisper_u2.joined(same + rows[3:5], 3.0, random.Random(1))
    assert mixed and all(row["teacher"].count("speaking") <= 1 for row in mixed)


def test_teacher_texts_shared_by_many_utterances_are_left_out() -> None:
    rows = [{"teacher": "speaking in foreign language"}] * 4 + [{"teacher": "thank you"}] * 2 \
        + [{"teacher": "press one"}]
    kept = whisper_u2.common_texts_dropped(rows, 2)
    assert [r["teacher"] for r in kept] == ["thank you", "thank you", "press one"]
    assert whisper_u2.common_texts_dropped(rows, 0) == rows  # 0 keeps everything
