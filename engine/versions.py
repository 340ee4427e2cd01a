"""The one order of base-model versions (no torch here: the catalog's pure rules use it too).

Versions are ordered by their creation date, then by their id; "the newest version" — of a model,
of a locale and rate, of anything — is always the last in this order. Every module that picks a
newest version (:func:`engine.bundle.find_models`, :mod:`server.catalog.resolution`,
:mod:`server.catalog.lifecycle`, :class:`server.runtime.models.LoadedModels`) sorts with
:func:`release_order`.
"""

from __future__ import annotations

import datetime as dt


def release_order(created: dt.date, version: str) -> tuple[dt.date, str]:
    """The sort key of a version: oldest first, the newest last."""
    return created, version
