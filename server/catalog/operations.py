"""What every group of catalog operations shares: the clock, one unit of work per operation, ownership and
locking of custom models, and the settled status of a model whose data changed.

:class:`~server.catalog.facade.Catalog` is made of :class:`Operations` subclasses, one per group
(:mod:`server.catalog.acoustic`, :mod:`server.catalog.recognition_jobs`, and the language-model operations of
:mod:`server.catalog.facade`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Container

from protocol.errors import InvalidParameter, NotFoundError
from server.catalog import status as st
from server.catalog.artifacts import DataDir
from server.catalog.db import Database
from server.catalog.records import Clock, CustomModel, utcnow
from server.catalog.status import ModelKind, ModelStatus
from server.catalog.unit_of_work import UnitOfWork

LANGUAGE = ModelKind.LANGUAGE
ACOUSTIC = ModelKind.ACOUSTIC


def check_name(what: str, name: str) -> None:
    """A resource name: 1-128 characters, printable, no ``/``, no leading ``.``
    (:meth:`server.catalog.artifacts.DataDir.file_name` makes any such name a valid file name).

    Raises:
        InvalidParameter: a name outside those rules, with the rule it breaks.
    """
    if not name or len(name) > 128 or "/" in name or name.startswith("."):
        raise InvalidParameter(f"bad {what} name {name!r}: 1-128 characters, no '/' and no leading '.'")
    if any(not ch.isprintable() for ch in name):
        raise InvalidParameter(f"bad {what} name {name!r}: control characters (NUL included) are not allowed")


def invalid_warning(kind: str, names: list[str], *, strict: bool) -> list[dict]:
    """The warning for resources whose analysis failed (none: no warning).

    Raises:
        InvalidParameter: there are such resources and ``strict``.
    """
    if not names:
        return []
    what = "corpora" if kind == "corpora" else "audio resources"
    model = "language" if kind == "corpora" else "acoustic"
    message = (f"Analysis of the following {what} has not completed successfully: [{', '.join(names)}]. "
               f"They will be excluded from custom {model} model training.")
    if strict:
        raise InvalidParameter(message + " (strict=true: fix or delete them, or train with strict=false)")
    return [{"code": "invalid_corpora" if kind == "corpora" else "invalid_audio_files", "message": message}]


class Operations:
    """The catalog over one database and data directory (the part every group of operations shares).

    Args:
        db: the database (migrated).
        data: the data directory.
        clock: naive UTC now; injected so the lifecycle rules can be tested on any date.
    """

    def __init__(self, db: Database, data: DataDir, *, clock: Clock = utcnow) -> None:
        self.db = db
        self.data = data
        self.clock = clock

    def today(self) -> dt.date:
        """The clock's date."""
        return self.clock().date()

    def _work(self) -> UnitOfWork:
        return UnitOfWork(self.db, self.data)

    @staticmethod
    async def _owned(uow: UnitOfWork, owner: str, kind: str, custom_id: str, *, lock: bool = False,
                     children: bool = True) -> CustomModel:
        model = await uow.models.get(custom_id, lock=lock, children=children)
        if model is None or model.owner != owner or model.kind != kind:
            raise NotFoundError(f"Invalid customization_id ({custom_id}): no custom {kind} model with that id "
                                "for these credentials")
        return model

    async def _modifiable(self, uow: UnitOfWork, owner: str, kind: str, custom_id: str) -> CustomModel:
        model = await self._owned(uow, owner, kind, custom_id, lock=True)
        st.check_not_busy(custom_id, model.status)
        return model

    async def _has_valid_data(self, uow: UnitOfWork, model: CustomModel) -> bool:
        if model.kind is ACOUSTIC:
            return await uow.audio.any_ok(model.id)
        return await uow.corpora.any_analyzed(model.id) or await uow.words.any_user_words(model.id)

    async def _settled(self, uow: UnitOfWork, model: CustomModel) -> ModelStatus:
        analysing = await (uow.audio.processing if model.kind is ACOUSTIC else uow.corpora.analysing)(model.id)
        return st.settle(analysing=analysing, has_valid_data=await self._has_valid_data(uow, model))

    async def _data_changed(self, uow: UnitOfWork, model: CustomModel) -> None:
        """The model's data changed (in this transaction): dirty, and a status that follows the data moves."""
        status = st.on_change(model.status, await self._settled(uow, model))
        await uow.models.update(model.id, dirty=True, updated=self.clock(), status=status, error=None)

    async def _check_training_open(self, uow: UnitOfWork, base_version: str) -> None:
        base = await uow.base_versions.get(base_version)
        st.check_training_open(base_version, None if base is None else base.adaptation_deadline, self.today())

    async def _upgrade_target(self, uow: UnitOfWork, model: CustomModel, installed: Container[str] | None) -> str:
        bases = await uow.base_versions.all(model.base_model_name)
        return st.upgrade_target(bases, current=model.base_version, installed=installed)
