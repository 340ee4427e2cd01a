"""Pick and load installed base models for offline use (CLI, benchmarks).

The rule when no model is named: audio sampled below 16 kHz goes to the
newest ``en-US_NarrowbandModel``, everything else to the newest
``en-US_BroadbandModel``. Loaded bundles are cached, so a model loads once
however many files use it, and so are their recognizers.
"""

from __future__ import annotations

import os
from pathlib import Path

from engine.bundle import ModelBundle, ModelNotFoundError, load_bundle, parse_version, resolve_model
from engine.recognizer import Recognizer

DEFAULT_BROADBAND = "en-US_BroadbandModel"
DEFAULT_NARROWBAND = "en-US_NarrowbandModel"


def default_models_dir() -> Path:
    """``$VOXGATE_MODELS`` or the ``models/`` folder of the checkout."""
    return Path(os.environ.get("VOXGATE_MODELS", Path(__file__).resolve().parents[1] / "models"))


def model_for_rate(rate_hz: int) -> str:
    """Default model name for audio at ``rate_hz``."""
    return DEFAULT_NARROWBAND if rate_hz < 16000 else DEFAULT_BROADBAND


class LocalModels:
    """Installed models under one folder, loaded on first use."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or default_models_dir()
        self._loaded: dict[str, ModelBundle] = {}
        self._recognizers: dict[str, Recognizer] = {}

    def get(self, *, name: str | None, version: str | None, rate_hz: int) -> ModelBundle:
        """The bundle for a request.

        Args:
            name: model name, or None to choose by the audio rate (or by ``version``).
            version: version id, or None for the newest.
            rate_hz: the audio's native rate.

        Raises:
            ModelNotFoundError: unknown model or version, or a version of another model.
        """
        if version is not None:
            version_name, _ = parse_version(version)
            if name is not None and name != version_name:
                raise ModelNotFoundError(f"version {version!r} is not a version of model {name!r}")
            name = version_name
        installed = resolve_model(self.root, name or model_for_rate(rate_hz), version)
        if installed.version not in self._loaded:
            self._loaded[installed.version] = load_bundle(installed.path)
        return self._loaded[installed.version]

    def recognizer(self, bundle: ModelBundle) -> Recognizer:
        """One :class:`~engine.recognizer.Recognizer` per loaded version, made on first use."""
        if bundle.version not in self._recognizers:
            self._recognizers[bundle.version] = Recognizer(bundle)
        return self._recognizers[bundle.version]
