"""New base-model releases served without a restart: installed versions found, loaded and recorded in the catalog."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from server.catalog import Catalog, InstalledBase
from server.runtime.models import LoadedModel, LoadedModels

log = logging.getLogger("voxgate.server")


def installed_bases(loaded: Iterable[LoadedModel]) -> list[InstalledBase]:
    """The catalog's records of loaded base versions."""
    return [InstalledBase(m.name, m.version, m.installed.manifest["locale"], m.sample_rate_hz, m.installed.created,
                          str(m.installed.path)) for m in loaded]


class Releases:
    """Finds base versions registered since start (see :meth:`LoadedModels.discover`) and records them.

    Args:
        models: the loaded base versions.
        catalog: where base versions are recorded.
        interval_s: seconds between two looks in :meth:`watch` (0: never).
    """

    def __init__(self, models: LoadedModels, catalog: Catalog, interval_s: float) -> None:
        self.models = models
        self.catalog = catalog
        self.interval_s = interval_s

    async def refresh(self) -> list[str]:
        """Serve base versions registered since start and record them in the catalog; return their ids."""
        added = await self.models.discover()
        if added:
            await self.catalog.sync_base_versions(installed_bases(self.models.versions[v] for v in added))
        return added

    async def watch(self) -> None:
        """Every ``interval_s`` seconds, :meth:`refresh` (until cancelled)."""
        while self.interval_s > 0:
            await asyncio.sleep(self.interval_s)
            try:
                await self.refresh()
            except Exception:  # noqa: BLE001 - the next look may succeed; serving goes on meanwhile
                log.exception("looking for newly registered base model versions failed")
