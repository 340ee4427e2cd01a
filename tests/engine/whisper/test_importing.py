"""``voxgate models import``'s engine side: CTranslate2 folders and openai-whisper checkpoints as weights artifacts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from engine.whisper.importing import ImportedSource, import_checkpoint, resolve_source, tokenizer_file
from engine.whisper.model import load_pretrained, shared_pretrained
from engine.whisper.weights import SOURCES, WeightsError, source_folder

TINY = SOURCES["whisper-tiny.en"]


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:  # the artifact stores float16, as the pinned model.bin does
        if k == "encoder.positional_embedding":  # sinusoids, rebuilt when a checkpoint lacks them
            assert torch.allclose(sa[k], sb[k], atol=1e-3), k
        else:
            assert torch.equal(sa[k].half(), sb[k].half()), k


@pytest.mark.timeout(120)
def test_a_ctranslate2_folder_imports_as_the_same_network(tmp_path: Path) -> None:
    artifact = import_checkpoint(source_folder(TINY), tmp_path / "mine", licence="MIT")
    manifest = json.loads((tmp_path / "mine" / "manifest.json").read_text())
    assert manifest["kind"] == "whisper-weights" and manifest["origin"]["format"] == "ctranslate2"
    assert manifest["origin"]["sha256"]["model.bin"] == TINY.sha256
    assert manifest["name"] == f"imported-{artifact.sha256[:12]}" and manifest["licence"] == "MIT"
    assert resolve_source(str(tmp_path / "mine")) == artifact
    assert tokenizer_file(artifact).read_bytes() == (source_folder(TINY) / "tokenizer.json").read_bytes()
    _same_weights(load_pretrained(str(tmp_path / "mine")), shared_pretrained("whisper-tiny.en"))


@pytest.mark.timeout(120)
def test_an_openai_checkpoint_imports_with_the_matching_tokenizer(tmp_path: Path) -> None:
    reference = shared_pretrained("whisper-tiny.en")
    state = {k: v.half() for k, v in reference.state_dict().items() if k != "encoder.positional_embedding"}
    torch.save({"dims": reference.dims.to_dict(), "model_state_dict": state}, tmp_path / "tiny.en.pt")
    artifact = import_checkpoint(tmp_path / "tiny.en.pt", tmp_path / "art", licence="MIT", name="my-tiny")
    assert artifact.name == "my-tiny" and artifact.origin["format"] == "openai-whisper"
    assert tokenizer_file(artifact).read_bytes() == (source_folder(TINY) / "tokenizer.json").read_bytes()
    _same_weights(load_pretrained(str(tmp_path / "art")), reference)


def test_a_changed_artifact_is_refused(tmp_path: Path) -> None:
    reference = shared_pretrained("whisper-tiny.en")
    torch.save({"dims": reference.dims.to_dict(), "model_state_dict": reference.state_dict()}, tmp_path / "t.pt")
    artifact = import_checkpoint(tmp_path / "t.pt", tmp_path / "art", licence="MIT")
    with open(artifact.folder / "whisper.pt", "ab") as f:
        f.write(b"\0")
    with pytest.raises(WeightsError, match="expected .*recorded at import.*refusing"):
        load_pretrained(str(artifact.folder))


def test_bad_inputs_name_the_problem(tmp_path: Path) -> None:
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="not a PyTorch checkpoint"):
        import_checkpoint(tmp_path / "junk.pt", tmp_path / "a", licence="x")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(WeightsError, match="not an openai-whisper checkpoint"):
        import_checkpoint(tmp_path / "other.pt", tmp_path / "a", licence="x")
    (tmp_path / "empty").mkdir()
    with pytest.raises(WeightsError, match="holds model.bin"):
        import_checkpoint(tmp_path / "empty", tmp_path / "a", licence="x")
    with pytest.raises(WeightsError, match="no such file"):
        import_checkpoint(tmp_path / "missing", tmp_path / "a", licence="x")
    reference = shared_pretrained("whisper-tiny.en")
    state = reference.state_dict()
    state["decoder.ln.weight"] = torch.zeros(7)
    torch.save({"dims": reference.dims.to_dict(), "model_state_dict": state}, tmp_path / "bent.pt")
    with pytest.raises(WeightsError, match="do not fit a Whisper network"):
        import_checkpoint(tmp_path / "bent.pt", tmp_path / "a", licence="x")
    (tmp_path / "taken").mkdir()
    with pytest.raises(WeightsError, match="exists"):
        import_checkpoint(tmp_path / "junk.pt", tmp_path / "taken", licence="x")
    assert not (tmp_path / "a").exists() and sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("."))  == []
    with pytest.raises(WeightsError, match="unknown pretrained weights"):
        resolve_source(str(tmp_path / "nowhere"))
    with pytest.raises(WeightsError, match="not a Whisper weights artifact"):
        ImportedSource.open(tmp_path / "taken")
