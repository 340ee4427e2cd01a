"""CLI behaviour on tiny models: routing by rate, JSON fields, and every bad input."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile

from engine.bundle import save_bundle
from engine.features import FeatureConfig
from tests.conftest import tiny_model
from voxgate.cli import main

VERSIONS = ["en-US_BroadbandModel.v2026-05-01", "en-US_BroadbandModel.v2026-11-01", "en-US_NarrowbandModel.v2026-11-01"]


@pytest.fixture()
def models(tmp_path: Path, tokenizer_file: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "models"
    for version in VERSIONS:
        features = FeatureConfig(sample_rate_hz=8000 if "Narrowband" in version else 16000)
        save_bundle(root, model=tiny_model(features.n_mels), tokenizer_file=tokenizer_file, features=features,
                    name=version.split(".")[0], version=version, locale="en-US", description="", training_data={})
    monkeypatch.setenv("VOXGATE_MODELS", str(root))
    return root


def audio(tmp_path: Path, name: str, rate: int, seconds: float = 1.0, **kwargs) -> Path:
    t = np.arange(int(rate * seconds)) / rate
    path = tmp_path / name
    soundfile.write(path, (0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32), rate, **kwargs)
    return path


def run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_json_fields_and_routing_by_rate(models, tmp_path, capsys) -> None:
    wide, narrow = audio(tmp_path, "w.flac", 16000), audio(tmp_path, "n.wav", 8000)
    code, out, err = run(capsys, "transcribe", "--json", str(wide), str(narrow))
    assert code == 0, err
    first, second = [json.loads(line) for line in out.splitlines()]
    assert set(first) == {"path", "transcript", "words", "audio_seconds", "processing_seconds", "model_version"}
    assert first["model_version"] == "en-US_BroadbandModel.v2026-11-01"
    assert second["model_version"] == "en-US_NarrowbandModel.v2026-11-01"
    assert first["audio_seconds"] == pytest.approx(1.0)


def test_older_version_and_plain_output(models, tmp_path, capsys) -> None:
    wide = audio(tmp_path, "w.wav", 48000)
    code, out, _ = run(capsys, "transcribe", "--base-model-version", VERSIONS[0], "--json", str(wide))
    assert code == 0 and json.loads(out)["model_version"] == VERSIONS[0]
    code, out, _ = run(capsys, "transcribe", str(wide))
    assert code == 0 and out.startswith(f"{wide}\t")


def test_headerless_l16(models, tmp_path, capsys) -> None:
    raw = tmp_path / "a.raw"
    raw.write_bytes((np.sin(np.arange(16000) / 5) * 8000).astype(">i2").tobytes())
    code, out, err = run(capsys, "transcribe", "--json", str(raw))
    assert code == 0, err
    assert json.loads(out)["audio_seconds"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("make", "args", "message"),
    [
        (lambda d: d / "missing.wav", [], "cannot read file: No such file or directory"),
        (lambda d: (d / "text.wav").write_text("hello") and d / "text.wav", [], "not decodable as audio"),
        (lambda d: (d / "empty.wav").write_bytes(b"") or d / "empty.wav", [], "the audio is empty"),
        (lambda d: audio(d, "short.wav", 16000, seconds=0.01), [], "too short"),
        (lambda d: audio(d, "n.wav", 8000), ["--model", "en-US_BroadbandModel"], "below the 16000 Hz"),
        (lambda d: audio(d, "w.wav", 16000), ["--model", "fr-FR_BroadbandModel"], "unknown model 'fr-FR_BroadbandModel'"),
        (lambda d: audio(d, "w.wav", 16000), ["--base-model-version", "en-US_BroadbandModel.v1999-01-01"],
         "has no version"),
        (lambda d: audio(d, "w.wav", 16000), ["--base-model-version", "nonsense"], "NAME.vYYYY-MM-DD"),
        (lambda d: audio(d, "w.wav", 16000), ["--model", "en-US_NarrowbandModel", "--base-model-version", VERSIONS[0]],
         "is not a version of model"),
    ],
)
def test_bad_input_names_the_file_and_the_problem(models, tmp_path, capsys, make, args, message) -> None:
    bad = make(tmp_path)
    good = audio(tmp_path, "good.wav", 16000)
    code, out, err = run(capsys, "transcribe", *args, str(bad), str(good))
    assert code == 1
    assert err.startswith(f"voxgate: {bad}: ") and message in err
    assert len(err.strip().splitlines()) == 1 or "good.wav" in err  # a bad model setting fails both files
    if "--model" not in args and "--base-model-version" not in args:
        assert out.startswith(f"{good}\t")  # the good file still ran


def test_eval_on_a_tiny_manifest(models, tmp_path, capsys) -> None:
    audio(tmp_path, "a.wav", 16000)
    audio(tmp_path, "b.wav", 8000)
    (tmp_path / "m.tsv").write_text("a.wav\tPress 1.\nb.wav\thello there\n")
    code, out, err = run(capsys, "eval", "--manifest", str(tmp_path / "m.tsv"), "--json", "--threads", "1")
    assert code == 0, err
    report = json.loads(out)
    assert report["files"] == 2 and report["reference_words"] == 4 and report["torch_threads"] == 1
    assert 0 <= report["wer"] and report["rtf"] > 0
    assert report["model_versions"] == ["en-US_BroadbandModel.v2026-11-01", "en-US_NarrowbandModel.v2026-11-01"]
    assert report["final_pass"] == "auto"
    code, out, err = run(capsys, "eval", "--manifest", str(tmp_path / "m.tsv"), "--json", "--final-pass", "greedy",
                         "--details", str(tmp_path / "details.jsonl"))
    assert code == 0, err
    assert json.loads(out)["final_pass"] == "greedy"
    details = [json.loads(line) for line in (tmp_path / "details.jsonl").read_text().splitlines()]
    assert [d["reference"] for d in details] == ["press one", "hello there"]
    assert [Path(d["audio"]).name for d in details] == ["a.wav", "b.wav"]
    assert sum(d["errors"] for d in details) == round(json.loads(out)["wer"] * 4)


def test_eval_with_a_custom_lm_and_its_refusals(models, tmp_path, capsys) -> None:
    from engine.bundle import load_bundle, resolve_model
    from engine.customlm import build_custom_lm

    audio(tmp_path, "a.wav", 16000)
    (tmp_path / "m.tsv").write_text("a.wav\tPress 1.\n")
    bundle = load_bundle(resolve_model(models, "en-US_BroadbandModel").path)
    build_custom_lm(bundle, ["press one for sales\npress two for support\n"], [], tmp_path / "clm")
    code, out, err = run(capsys, "eval", "--manifest", str(tmp_path / "m.tsv"), "--json", "--custom-lm",
                         str(tmp_path / "clm"), "--customization-weight", "0.5")
    assert code == 0, err
    report = json.loads(out)
    assert (report["custom_lm"], report["customization_weight"]) == (str(tmp_path / "clm"), 0.5)
    code, _, err = run(capsys, "eval", "--manifest", str(tmp_path / "m.tsv"), "--custom-lm", str(tmp_path))
    assert code == 1 and "is not a custom language model" in err
    code, _, err = run(capsys, "eval", "--manifest", str(tmp_path / "m.tsv"), "--custom-lm", str(tmp_path / "clm"),
                       "--customization-weight", "2")
    assert code == 1 and "--customization-weight must be in [0, 1]" in err


@pytest.mark.parametrize(("content", "message"), [("a.wav no tab\n", "line 1: expected"), ("", "lists no audio")])
def test_eval_bad_manifest(models, tmp_path, capsys, content, message) -> None:
    (tmp_path / "m.tsv").write_text(content)
    code, _, err = run(capsys, "eval", "--manifest", str(tmp_path / "m.tsv"))
    assert code == 1 and message in err


def test_models_lifecycle_json(capsys) -> None:
    assert main(["models", "lifecycle", "--at", "2029-02-01", "--json"]) == 0
    entries = {e["version"]: e for e in json.loads(capsys.readouterr().out)}
    old, new = entries["en-US_BroadbandModel.v2026-05-01"], entries["en-US_BroadbandModel.v2026-12-01"]
    assert set(old) == {"model", "version", "kind", "created", "adaptation_deadline", "transcription_deadline", "state"}
    assert (old["kind"], old["created"], old["adaptation_deadline"], old["transcription_deadline"]) == (
        "base", "2026-05-01", "2027-07-15", "2028-07-15")
    assert old["state"] == "expired: falls back to the newest base version"
    assert new["state"] == "past its deadline: still serving as the newest base version"
    assert entries["en-US_BroadbandModel.v2026-11-01"]["state"] == "expired: falls back to the newest base version"


def test_models_lifecycle_table_and_bad_date(capsys, tmp_path) -> None:
    assert main(["models", "lifecycle", "--at", "2026-11-23"]) == 0
    assert "en-US_NarrowbandModel.v2026-11-01" in capsys.readouterr().out
    assert main(["models", "lifecycle", "--models-dir", str(tmp_path)]) == 1
    assert "no model artifacts" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["models", "lifecycle", "--at", "tomorrow"])


def test_models_lifecycle_lists_the_catalogs_custom_models(capsys, tmp_path) -> None:
    import asyncio
    import datetime as dt

    from server.catalog import LANGUAGE, Catalog, Database, DataDir, InstalledBase, WordSpec, sqlite_url

    data = DataDir(tmp_path / "data")

    async def make() -> str:
        db = Database(sqlite_url(data.database))
        await db.migrate()
        catalog = Catalog(db, data, clock=lambda: dt.datetime(2024, 7, 14, 9, 0))
        await catalog.sync_base_versions([InstalledBase("en-US_BroadbandModel", "en-US_BroadbandModel.v2026-11-01",
                                                        "en-US", 16000, dt.date(2026, 11, 1), "/m")])
        model = await catalog.create("acme", LANGUAGE, name="m", base_model_name="en-US_BroadbandModel")
        await catalog.add_words("acme", model.id, [WordSpec("zed")])
        await catalog.start_training("acme", model.id, customization_weight=None, strict=True)
        await catalog.finish_job(model.id, "en-US_BroadbandModel.v2026-11-01", "customizations/x/y", {})
        await db.close()
        return model.id

    custom_id = asyncio.run(make())
    assert main(["models", "lifecycle", "--at", "2026-07-16", "--json", "--data-dir", str(data.root)]) == 0
    [entry] = [e for e in json.loads(capsys.readouterr().out) if e["model"] == custom_id]
    assert entry == {"model": custom_id, "version": "en-US_BroadbandModel.v2026-11-01", "kind": "language",
                     "created": "2024-07-14", "adaptation_deadline": None, "transcription_deadline": "2026-07-15",
                     "state": "expired: falls back to the newest base version"}


def test_models_register_refuses_what_it_cannot_use(capsys, tmp_path) -> None:
    from engine.catalog import default_models_dir

    assert main(["models", "register", str(tmp_path), "--data-dir", str(tmp_path / "d")]) == 2
    assert "not a usable model artifact" in capsys.readouterr().err
    shipped = default_models_dir() / "en-US_BroadbandModel" / "en-US_BroadbandModel.v2026-11-01"
    assert main(["models", "register", str(shipped), "--data-dir", str(tmp_path / "d")]) == 2
    assert "already installed" in capsys.readouterr().err


def test_models_import_writes_an_artifact_and_refuses_junk(capsys, tmp_path) -> None:
    from engine.whisper.weights import SOURCES, source_folder

    code, out, _ = run(capsys, "models", "import", str(source_folder(SOURCES["whisper-tiny.en"])),
                       "--out", str(tmp_path / "mine"), "--licence", "MIT", "--name", "tiny-copy")
    assert code == 0 and "imported" in out and "tiny-copy" in out and "whisper_train --pretrained" in out
    assert json.loads((tmp_path / "mine" / "manifest.json").read_text())["name"] == "tiny-copy"
    (tmp_path / "junk.pt").write_bytes(b"nope")
    code, _, err = run(capsys, "models", "import", str(tmp_path / "junk.pt"), "--out", str(tmp_path / "j"),
                       "--licence", "MIT")
    assert code == 2 and "junk.pt" in err and "not a PyTorch checkpoint" in err


def test_models_compare_prints_each_version_of_a_custom_model(models, capsys, tmp_path) -> None:
    """Issue 12: ``voxgate models compare`` — WER of the old and the new version of a custom model, and of
    each base version alone, on the user's own audio, before they switch."""
    import asyncio
    import datetime as dt

    from engine.bundle import load_bundle, resolve_model
    from engine.customlm import build_custom_lm
    from server.catalog import LANGUAGE, Catalog, Database, DataDir, InstalledBase, WordSpec, sqlite_url

    data = DataDir(tmp_path / "data")
    old, new = VERSIONS[0], VERSIONS[1]
    for version in (old, new):
        bundle = load_bundle(resolve_model(models, "en-US_BroadbandModel", version).path)
        build_custom_lm(bundle, ["press one for sales\n"], [], data.path(f"customizations/m/{version}"))

    async def make() -> str:
        db = Database(sqlite_url(data.database))
        await db.migrate()
        catalog = Catalog(db, data, clock=lambda: dt.datetime(2026, 11, 20, 9, 0))
        await catalog.sync_base_versions([InstalledBase("en-US_BroadbandModel", old, "en-US", 16000,
                                                        dt.date(2026, 5, 1), "/m")])
        model = await catalog.create("acme", LANGUAGE, name="m", base_model_name="en-US_BroadbandModel")
        await catalog.add_words("acme", model.id, [WordSpec("zed")])
        await catalog.start_training("acme", model.id, customization_weight=0.4, strict=True)
        await catalog.finish_job(model.id, old, f"customizations/m/{old}", {})
        await catalog.sync_base_versions([InstalledBase("en-US_BroadbandModel", new, "en-US", 16000,
                                                        dt.date(2026, 11, 1), "/m")])
        await catalog.start_upgrade("acme", model.id)
        await catalog.finish_job(model.id, new, f"customizations/m/{new}", {})
        await db.close()
        return model.id

    custom_id = asyncio.run(make())
    audio(tmp_path, "a.wav", 16000)
    (tmp_path / "m.tsv").write_text("a.wav\tpress one\n")
    common = ["--manifest", str(tmp_path / "m.tsv"), "--data-dir", str(data.root), "--models-dir", str(models)]
    code, out, err = run(capsys, "models", "compare", custom_id, *common, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert (report["kind"], report["customization_weight"]) == ("language", 0.4)
    assert [v["base_model_version"] for v in report["versions"]] == [old, new]
    assert all(0 <= v["base_wer"] and 0 <= v["custom_wer"] and v["files"] == 1 for v in report["versions"])
    code, out, _ = run(capsys, "models", "compare", custom_id, *common)
    assert code == 0 and old in out and new in out and "with custom" in out
    code, _, err = run(capsys, "models", "compare", "no-such-id", *common)
    assert code == 1 and "no custom model no-such-id" in err
