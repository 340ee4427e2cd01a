"""Loading a custom acoustic model: a base bundle with the tensors an adaptation changed.

The serving half of :mod:`engine.acoustic` (which trains them, with the base recipe's loss):
this module imports no training code, so a server that only recognises with adapted models
never loads the recipe. An adapted folder holds::

    adapted.pt        the changed tensors: ``replace`` (name -> tensor) and ``low_rank``
                      (weight name -> ``a``, ``b`` with ``delta = b @ a``); for a Whisper-based
                      version, the adapter of its final pass (:class:`engine.whisper.lora.Adapter`)
    adaptation.json   base version, method, config, counts, minutes of audio, losses
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from engine.bundle import BundleError, ModelBundle, load_bundle
from engine.whisper.lora import Adapter, AdapterError

#: ``adaptation.json``'s method of a Whisper adapter (written by :mod:`engine.acoustic`)
WHISPER_METHOD = "whisper-lora"

WEIGHTS_FILE = "adapted.pt"
META_FILE = "adaptation.json"


def read_adaptation(adapted_dir: Path) -> dict:
    """The ``adaptation.json`` of an adapted folder.

    Raises:
        BundleError: no such file, or not JSON.
    """
    try:
        return json.loads((Path(adapted_dir) / META_FILE).read_text())
    except FileNotFoundError as exc:
        raise BundleError(f"{adapted_dir} is not an adapted acoustic model (no {META_FILE})") from exc
    except json.JSONDecodeError as exc:
        raise BundleError(f"{adapted_dir}/{META_FILE} is not valid JSON: {exc}") from exc


def is_whisper_adaptation(meta: dict) -> bool:
    """True for the ``adaptation.json`` of a Whisper adapter (:mod:`engine.whisper.lora`)."""
    return meta.get("method") == WHISPER_METHOD


def load_adapter(bundle: ModelBundle, adapted_dir: Path) -> Adapter:
    """The adapter of a Whisper-based version's custom acoustic model, checked against ``bundle``'s final pass.

    Raises:
        BundleError: the folder is missing or broken, is not an adapter, was made from another base
            version, or its factors do not fit the network.
    """
    meta = read_adaptation(adapted_dir)
    if meta.get("base_version") != bundle.version:
        raise BundleError(f"{adapted_dir} was adapted from {meta.get('base_version')!r}, not from {bundle.version!r}")
    return _adapter(bundle, adapted_dir, meta)


def _adapter(bundle: ModelBundle, adapted_dir: Path, meta: dict) -> Adapter:
    """The adapter file of a folder whose ``adaptation.json`` (``meta``) names ``bundle``'s version."""
    if bundle.whisper is None or not is_whisper_adaptation(meta):
        raise BundleError(f"{adapted_dir} ({meta.get('method')!r}) is not an adapter of a Whisper-based version's "
                          f"final pass, or {bundle.version} has none")
    try:
        adapter = Adapter.load(Path(adapted_dir) / WEIGHTS_FILE)
        adapter.check(bundle.whisper.whisper)
    except (AdapterError, KeyError, RuntimeError, OSError) as exc:
        raise BundleError(f"{adapted_dir}: {exc}") from exc
    return adapter


def load_adapted_bundle(base_bundle_path: Path, adapted_dir: Path) -> ModelBundle:
    """The base bundle with the adapted weights (same tokenizer, lexicon, LM and decoder); for a
    Whisper-based version, the base bundle with the adapter its final pass applies (``bundle.adapter``).

    The manifest keeps the base's version id and gains an ``adaptation`` entry (the
    folder's ``adaptation.json``).

    Raises:
        BundleError: the adapted folder is missing or broken, or was made from another base
            version than the one at ``base_bundle_path``.
    """
    meta = read_adaptation(adapted_dir)
    bundle = load_bundle(base_bundle_path)
    if meta.get("base_version") != bundle.version:
        raise BundleError(f"{adapted_dir} was adapted from {meta.get('base_version')!r}, "
                          f"not from {bundle.version!r} at {base_bundle_path}")
    if is_whisper_adaptation(meta) or bundle.whisper is not None:
        bundle.adapter = _adapter(bundle, adapted_dir, meta)
        bundle.manifest = {**bundle.manifest, "adaptation": meta}
        return bundle
    changed = torch.load(Path(adapted_dir) / WEIGHTS_FILE, map_location="cpu", weights_only=True)
    state = bundle.model.state_dict()
    unknown = [n for n in (*changed["replace"], *changed["low_rank"]) if n not in state]
    if unknown:
        raise BundleError(f"{adapted_dir}: tensors {unknown[:5]} do not exist in {bundle.version}")
    for name, tensor in changed["replace"].items():
        state[name] = tensor
    for name, factors in changed["low_rank"].items():
        state[name] = state[name] + factors["b"] @ factors["a"]
    device = next(bundle.model.parameters()).device
    bundle.model.load_state_dict(state)
    bundle.model.to(device).eval()
    bundle.manifest = {**bundle.manifest, "adaptation": meta}
    return bundle
