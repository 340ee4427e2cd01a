"""Whisper checkpoints users bring themselves: ``voxgate models import PATH``.

A CTranslate2 folder (``model.bin``, ``config.json``, ``tokenizer.json``; float16 or float32, as
``ct2-transformers-converter`` writes it) or an openai-whisper ``.pt`` (``{"dims", "model_state_dict"}``)
becomes a *weights artifact*: a folder with

- ``whisper.pt``: the state dict of :class:`engine.whisper.network.Whisper` in float16 and its dims;
- ``tokenizer.json``: the CTranslate2 folder's own, or for a ``.pt`` (which carries none) the pinned
  source's with the same vocabulary size (``--tokenizer`` names another);
- ``manifest.json``: ``kind`` ``whisper-weights``, ``name``, the ``sha256`` of ``whisper.pt``, the
  dims, the origin (path, format and sha256 of what was imported) and the licence the user states.

An artifact is a pretrained source like the pinned packages (:func:`resolve_source`): the
recipe fine-tunes a streaming model on it (``python -m engine.recipe.whisper_train --pretrained
DIR``), and a base-model version exported from that run names it by path and sha256, refused at
load if the file changed. Nothing is downloaded; the checkpoint is checked by loading it into
the network (every tensor, its shape) before anything is written.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from engine.whisper.network import Whisper, WhisperDims
from engine.whisper.weights import (SOURCES, PretrainedSource, WeightsError, openai_state_dict, read_ct2,
                                    source_folder, whisper_state_dict)

KIND = "whisper-weights"
WEIGHTS = "whisper.pt"
TOKENIZER = "tokenizer.json"
MANIFEST = "manifest.json"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class ImportedSource:
    """A weights artifact written by :func:`import_checkpoint`.

    Attributes:
        folder: the artifact's folder (absolute).
        name: its name (``imported-`` and the first 12 hex digits of the sha256 unless given).
        sha256: the digest of ``whisper.pt`` recorded at import.
        licence: the licence the user stated.
        origin: what was imported (path, format, sha256).
    """

    folder: Path
    name: str
    sha256: str
    licence: str
    origin: dict

    @classmethod
    def open(cls, folder: Path) -> ImportedSource:
        """Read an artifact's manifest.

        Raises:
            WeightsError: not a weights artifact.
        """
        try:
            manifest = json.loads((folder / MANIFEST).read_text())
        except (OSError, ValueError) as exc:
            raise WeightsError(f"{folder}: not a Whisper weights artifact (no readable {MANIFEST}): {exc}") from exc
        if not isinstance(manifest, dict) or manifest.get("kind") != KIND:
            raise WeightsError(f"{folder}: {MANIFEST} is not a Whisper weights artifact's (kind {KIND!r})")
        try:
            return cls(folder.resolve(), manifest["name"], manifest["sha256"], manifest.get("licence", ""),
                       manifest.get("origin", {}))
        except KeyError as exc:
            raise WeightsError(f"{folder}: {MANIFEST} lacks {exc}") from None

    @property
    def tokenizer_file(self) -> Path:
        """Whisper's tokenizer for these weights."""
        return self.folder / TOKENIZER

    def to_dict(self) -> dict:
        """The ``pretrained`` entry of a version built on these weights."""
        return {"name": self.name, "path": str(self.folder), "sha256": self.sha256, "licence": self.licence,
                "origin": self.origin}

    def load_state(self) -> dict[str, torch.Tensor]:
        """The float32 state dict, after checking ``whisper.pt`` against the recorded sha256.

        Raises:
            WeightsError: a missing or changed file.
        """
        path = self.folder / WEIGHTS
        try:
            actual = _sha256(path)
        except OSError as exc:
            raise WeightsError(f"cannot read {path}: {exc}") from exc
        if actual != self.sha256:
            raise WeightsError(f"{path} has sha256 {actual}, expected {self.sha256} (recorded at import): "
                               f"refusing to load it (import the checkpoint again)")
        saved = torch.load(path, map_location="cpu", weights_only=True)
        return {k: v.float() for k, v in saved["model_state_dict"].items()}


def resolve_source(name: str) -> PretrainedSource | ImportedSource:
    """A pinned source by name (:data:`engine.whisper.weights.SOURCES`) or an imported artifact by folder.

    Raises:
        WeightsError: neither a pinned name nor a weights artifact.
    """
    if name in SOURCES:
        return SOURCES[name]
    folder = Path(name)
    if not folder.is_dir():
        raise WeightsError(f"unknown pretrained weights {name!r}: neither a pinned source "
                           f"({', '.join(SOURCES)}) nor a folder written by 'voxgate models import'")
    return ImportedSource.open(folder)


def tokenizer_file(source: PretrainedSource | ImportedSource) -> Path:
    """The ``tokenizer.json`` of either kind of source."""
    return source.tokenizer_file if isinstance(source, ImportedSource) else source_folder(source) / TOKENIZER


def _read(path: Path) -> tuple[dict[str, torch.Tensor], str, Path | None, list[Path]]:
    """State dict, format, the checkpoint's own tokenizer (if any) and the files read."""
    if path.is_dir():
        model_bin = path / "model.bin"
        if not model_bin.is_file():
            raise WeightsError(f"{path}: a CTranslate2 model folder holds model.bin; this one does not")
        spec, variables = read_ct2(model_bin.read_bytes())
        if spec and spec != "WhisperSpec":
            raise WeightsError(f"{model_bin}: a CTranslate2 {spec}, not a Whisper model")
        if any(name.endswith("_scale") for name in variables):
            raise WeightsError(f"{model_bin}: quantised (int8) weights; convert with --quantization float16 "
                               f"or float32 and import that")
        try:
            state = whisper_state_dict(variables)
        except KeyError as exc:
            raise WeightsError(f"{model_bin}: not a Whisper model (no variable {exc})") from None
        own = path / TOKENIZER
        return state, "ctranslate2", own if own.is_file() else None, [model_bin]
    if path.is_file():
        try:
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises pickle, zip and runtime errors alike for a foreign file
            raise WeightsError(f"{path}: not a PyTorch checkpoint torch can read safely: {exc}") from exc
        if not isinstance(checkpoint, dict):
            raise WeightsError(f"{path}: not an openai-whisper checkpoint (a {type(checkpoint).__name__})")
        dims, state = openai_state_dict(checkpoint)
        WhisperDims.from_dict(dims)
        return state, "openai-whisper", None, [path]
    raise WeightsError(f"{path}: no such file or folder")


def _fallback_tokenizer(n_vocab: int) -> Path:
    for source in SOURCES.values():
        if n_vocab == (51864 if source.name.endswith(".en") else 51865):
            return source_folder(source) / TOKENIZER
    raise WeightsError(f"no installed Whisper tokenizer has {n_vocab} tokens; pass --tokenizer")


def import_checkpoint(path: Path, out: Path, *, licence: str, name: str | None = None,
                      tokenizer: Path | None = None) -> ImportedSource:
    """Check a Whisper checkpoint and write it as a weights artifact into ``out`` (a new folder).

    Args:
        path: a CTranslate2 folder or an openai-whisper ``.pt``.
        out: the artifact's folder; must not exist yet (written whole, then renamed into place).
        licence: the weights' licence, as the user states it (recorded, not checked).
        name: the artifact's name (default ``imported-`` + 12 hex digits of its sha256).
        tokenizer: a ``tokenizer.json`` to use instead of the checkpoint's or the fallback.

    Raises:
        WeightsError: unreadable, quantised, not Whisper, tensors of the wrong shape, or ``out`` exists.
    """
    if out.exists():
        raise WeightsError(f"{out} exists; choose a new folder for the artifact")
    state, fmt, own_tokenizer, read = _read(path)
    try:
        dims = WhisperDims.from_state_dict(state)
        network = Whisper(dims)
        network.load_state_dict(state)
    except (KeyError, RuntimeError, ValueError) as exc:
        raise WeightsError(f"{path}: the weights do not fit a Whisper network: {str(exc)[:500]}") from None
    chosen = tokenizer or own_tokenizer or _fallback_tokenizer(dims.n_vocab)
    if not chosen.is_file():
        raise WeightsError(f"tokenizer {chosen} does not exist")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        torch.save({"dims": dims.to_dict(), "model_state_dict": {k: v.half() for k, v in network.state_dict().items()}},
                   tmp / WEIGHTS)
        shutil.copyfile(chosen, tmp / TOKENIZER)
        digest = _sha256(tmp / WEIGHTS)
        manifest = {"kind": KIND, "name": name or f"imported-{digest[:12]}", "sha256": digest, "dims": dims.to_dict(),
                    "licence": licence, "tokenizer": str(chosen),
                    "origin": {"path": str(path.resolve()), "format": fmt,
                               "sha256": {str(p.name): _sha256(p) for p in read}}}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ImportedSource.open(out)
