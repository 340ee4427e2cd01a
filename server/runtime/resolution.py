"""Which models a recognition request uses: its ``model``, ``base_model_version`` and custom model ids
resolved (by the pure rules of :mod:`server.catalog.resolution`) against the catalog, the loaded
base versions and the loaded custom models."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from engine.customlm import CustomLM
from protocol.watson import model_param
from server.catalog import ACOUSTIC, LANGUAGE, Catalog, resolve
from server.runtime.models import CustomModels, LoadedModel, LoadedModels

#: Watson's default weight of a custom language model against the base model
DEFAULT_CUSTOMIZATION_WEIGHT = 0.3
#: the base model of a request that names none
DEFAULT_MODEL = "en-US_BroadbandModel"


@dataclass(frozen=True)
class Resolved:
    """The models one recognition request uses.

    Attributes:
        model: the base version (or the custom acoustic model's version of it), loaded.
        custom_lm: the custom language model's trained version, or None.
        language_id: its id, or None.
        acoustic_id: the custom acoustic model's id, or None.
        default_weight: the custom model's saved ``customization_weight`` (None: the engine's default).
        warnings: for the results.
    """

    model: LoadedModel
    custom_lm: CustomLM | None = None
    language_id: str | None = None
    default_weight: float | None = None
    warnings: tuple[str, ...] = ()
    acoustic_id: str | None = None

    def weight(self, requested: float | None) -> float:
        """The weight to use: the request's, else the model's saved one, else Watson's default 0.3."""
        if requested is not None:
            return requested
        return self.default_weight if self.default_weight is not None else DEFAULT_CUSTOMIZATION_WEIGHT

    def recognized_with(self) -> dict:
        """What the results report as used."""
        out = {"model": self.model.bundle.name, "base_model_version": self.model.bundle.version}
        if self.language_id:
            out["language_customization_id"] = self.language_id
        if self.acoustic_id:
            out["acoustic_customization_id"] = self.acoustic_id
        return out


@dataclass(frozen=True)
class Resolver:
    """Resolves recognition requests against the catalog, the loaded base versions and the loaded custom models."""

    catalog: Catalog
    models: LoadedModels
    custom: CustomModels
    default_model: str = DEFAULT_MODEL

    async def __call__(self, owner: str, params: Mapping[str, str], *, batch: bool = False) -> Resolved:
        """Resolve a request's ``model``, ``base_model_version`` and custom model ids (see
        :mod:`server.catalog.resolution`) against the catalog and the loaded versions.

        Raises:
            NotFoundError, InvalidParameter, ModelExpired: as :func:`server.catalog.resolution.resolve`.
        """
        catalog, models, custom = self.catalog, self.models, self.custom
        language_id = model_param(params, "language_customization_id", "customization_id")
        acoustic_id = params.get("acoustic_customization_id") or None
        language = acoustic = row = am_row = None
        if language_id:
            language, row = await catalog.custom_for_recognition(owner, LANGUAGE, language_id)
        if acoustic_id:
            acoustic, am_row = await catalog.custom_for_recognition(owner, ACOUSTIC, acoustic_id)
        bases = [b for b in await catalog.base_infos() if b.version in models.versions]
        resolution = resolve(bases, model=params.get("model") or None, default_model=self.default_model,
                             base_model_version=model_param(params, "base_model_version", "version"), language=language,
                             acoustic=acoustic, today=catalog.today(), batch=batch)
        loaded = await models.ready(models.versions[resolution.base_version])
        if resolution.acoustic is not None and am_row is not None:
            version = next(v for v in am_row.versions if v.base_version == resolution.base_version)
            loaded = await custom.acoustic_model(version.artifact, loaded, am_row.id)
        if resolution.language is None or row is None:
            return Resolved(loaded, warnings=resolution.warnings, acoustic_id=resolution.acoustic)
        version = next(v for v in row.versions if v.base_version == resolution.base_version)
        custom_lm = await custom.language_model(version.artifact)
        return Resolved(loaded, custom_lm, row.id, row.customization_weight, resolution.warnings, resolution.acoustic)
