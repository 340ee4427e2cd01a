"""Catalog operations on custom acoustic models: audio resources, training and upgrade (PROTOCOLS.md §1.8, §1.9)."""

from __future__ import annotations

import dataclasses
from collections.abc import Container

from protocol.errors import ConflictError, InvalidParameter, NotFoundError
from server.catalog import status as st
from server.catalog.operations import ACOUSTIC, LANGUAGE, Operations, check_name, invalid_warning
from server.catalog.records import AudioResource, CustomModel
from server.catalog.status import AudioStatus
from server.catalog.unit_of_work import UnitOfWork

#: the smallest audio resource accepted, in bytes
MIN_AUDIO_BYTES = 100


class AcousticOperations(Operations):
    """Audio resources, training and upgrade of custom acoustic models."""

    async def add_audio(self, owner: str, custom_id: str, name: str, data: bytes, *, content_type: str,
                        contained_content_type: str | None, transcript: str | None,
                        allow_overwrite: bool = False) -> None:
        """Store an audio resource (processed afterwards by :meth:`record_audio`; ``being_processed``).

        Raises:
            InvalidParameter: a bad name or an empty body.
            ConflictError: a resource of that name exists (without ``allow_overwrite``), or a job runs.
        """
        check_name("audio resource", name)
        if len(data) < MIN_AUDIO_BYTES:
            raise InvalidParameter(f"the audio resource is empty (at least {MIN_AUDIO_BYTES} bytes)")
        async with self._work() as uow:
            model = await self._modifiable(uow, owner, ACOUSTIC, custom_id)
            if model.resource(name) is not None:
                if not allow_overwrite:
                    raise ConflictError(f"Audio resource {name} already exists for custom model {custom_id}; pass "
                                        "allow_overwrite=true to replace it")
                uow.remove_after_commit(self.data.audio_items(custom_id, name))
            path = self.data.audio(custom_id, name)
            await uow.write_file(path, data)
            await uow.audio.add(AudioResource(custom_id, name, path, content_type, AudioStatus.BEING_PROCESSED,
                                              contained_content_type=contained_content_type, transcript=transcript))
            await self._data_changed(uow, model)

    async def record_audio(self, custom_id: str, name: str, *, duration_s: float = 0.0, details: dict | None = None,
                           items: list | None = None, error: str | None = None) -> bool:
        """Record the outcome of processing a resource (``ok``, or ``invalid`` with ``error``);
        False when the resource (or its model) was deleted meanwhile."""
        async with self._work() as uow:
            model = await uow.models.get(custom_id, lock=True)
            if model is None or model.resource(name) is None:
                return False
            status = AudioStatus.INVALID if error else AudioStatus.OK
            await uow.audio.update(custom_id, name, duration_s=duration_s, details=details, items=items,
                                   status=status, error=error or None)
            status = st.after_analysis(model.status, await self._settled(uow, model))
            await uow.models.update(custom_id, status=status, updated=self.clock())
        return True

    async def pending_audio(self) -> list[tuple[str, str]]:
        """``(custom_id, name)`` of audio resources not processed yet (after a restart)."""
        async with self._work() as uow:
            return await uow.audio.pending()

    async def audio_resource(self, custom_id: str, name: str) -> AudioResource | None:
        """A resource by id and name, whoever owns it (for background processing)."""
        async with self._work() as uow:
            return await uow.audio.get(custom_id, name)

    async def delete_audio(self, owner: str, custom_id: str, name: str) -> None:
        """Remove an audio resource.

        Raises:
            NotFoundError: no such model or resource.
            ConflictError: a job runs.
        """
        async with self._work() as uow:
            model = await self._modifiable(uow, owner, ACOUSTIC, custom_id)
            resource = model.resource(name)
            if resource is None:
                raise NotFoundError(f"Audio resource {name} not found for custom model {custom_id}")
            await uow.audio.delete(custom_id, name)
            await self._data_changed(uow, model)
            uow.remove_after_commit(resource.path)
            uow.remove_after_commit(self.data.audio_items(custom_id, name))

    async def start_acoustic_training(self, owner: str, custom_id: str, *, language_id: str | None, strict: bool,
                                      force: bool = False, min_minutes: float = 0.0) -> list[dict]:
        """Queue training of a custom acoustic model; return the warnings.

        Raises:
            ConflictError: a job runs, or audio is still being processed.
            NotFoundError: an unknown helper language model.
            InvalidParameter: too little valid audio, invalid audio with ``strict``, a helper language model that
                is not trained on the same base version, or nothing changed since the last training.
        """
        async with self._work() as uow:
            model = await self._modifiable(uow, owner, ACOUSTIC, custom_id)
            warnings = await self._acoustic_checks(uow, owner, model, language_id=language_id, strict=strict,
                                                   min_minutes=min_minutes)
            same_helper = (model.job_options or {}).get("language_customization_id") == language_id
            st.check_trainable(dirty=model.dirty, trained_here=model.version_on(model.base_version) is not None,
                               same_helper=same_helper, force=force)
            await uow.models.save(custom_id, st.start_training(model.standing, language_customization_id=language_id),
                                  warnings="; ".join(w["message"] for w in warnings) or None, updated=self.clock())
            return warnings

    async def _acoustic_checks(self, uow: UnitOfWork, owner: str, model: CustomModel, *, language_id: str | None,
                               strict: bool, min_minutes: float) -> list[dict]:
        if any(a.status is AudioStatus.BEING_PROCESSED for a in model.audio):
            raise ConflictError(f"Audio resources of custom model {model.id} are still being processed; train once "
                                "their status is ok")
        warnings = invalid_warning("audio", [a.name for a in model.audio if a.status is AudioStatus.INVALID],
                                    strict=strict)
        minutes = sum(a.duration_s for a in model.audio if a.status is AudioStatus.OK) / 60
        if minutes < min_minutes or minutes == 0:
            raise InvalidParameter(f"Training needs at least {max(min_minutes, 0.01):g} minutes of valid audio; "
                                   f"custom model {model.id} has {minutes:.2f}")
        await self._check_training_open(uow, model.base_version)
        if language_id is not None:
            helper = await self._owned(uow, owner, LANGUAGE, language_id, children=False)
            if helper.base_model_name != model.base_model_name:
                raise InvalidParameter(f"custom language model {language_id} is based on {helper.base_model_name}, "
                                       f"not {model.base_model_name}")
            if helper.version_on(model.base_version) is None:
                raise InvalidParameter(f"custom language model {language_id} must be available on base model version "
                                       f"{model.base_version} (train or upgrade it first)")
        return warnings

    async def start_acoustic_upgrade(self, owner: str, custom_id: str, *, language_id: str | None,
                                     force: bool, installed: Container[str] | None = None) -> str:
        """Queue an upgrade of a custom acoustic model to the newest base version; return that version.

        Upgrade order (PROTOCOLS.md §1.9): upgrade the helper language model first, then the acoustic
        model; once on the newest version, upgrading again with ``custom_language_model_id`` retrains with
        it (400 ``No input data modified since last training`` unless ``force``).

        An acoustic model trained with a custom language model does not start an upgrade without
        ``custom_language_model_id`` while that language model has no version on the new base (Watson's
        list of reasons an upgrade fails to start).

        Args:
            installed: the base versions this server can load (None: every recorded one).

        Raises:
            ConflictError: a job runs.
            InvalidParameter: not ready/available, the helper on another base version, the helper it was trained
                with not upgraded, the newest version not installed here, or nothing to upgrade.
        """
        async with self._work() as uow:
            model = await self._modifiable(uow, owner, ACOUSTIC, custom_id)
            st.check_upgradable(custom_id, model.status)
            target = await self._upgrade_target(uow, model, installed)
            trained_with = (model.job_options or {}).get("language_customization_id")
            if model.base_version == target:
                if language_id is None:
                    raise InvalidParameter(f"Custom model {custom_id} is already on the newest base model version "
                                           f"{target}")
                st.check_trainable(dirty=model.dirty, trained_here=True, same_helper=trained_with == language_id,
                                   force=force)
            elif trained_with and language_id is None:
                helper = await uow.models.get(trained_with, children=False)
                if helper is not None and helper.version_on(target) is None:
                    raise InvalidParameter(
                        f"Custom acoustic model {custom_id} was trained with custom language model {trained_with}, "
                        f"which has not been upgraded to {target}: upgrade the language model first, then upgrade "
                        f"this model with custom_language_model_id={trained_with}")
            await self._acoustic_checks(uow, owner, dataclasses.replace(model, base_version=target),
                                        language_id=language_id, strict=False, min_minutes=0.0)
            if model.base_version == target:  # a retraining with the helper language model, not an upgrade
                standing = st.start_retraining(model.standing, language_id=language_id, trained_with=trained_with)
                await uow.models.save(custom_id, standing, updated=self.clock())
            elif not model.versions:  # never trained: nothing to retrain
                await uow.models.update(custom_id, base_version=target, updated=self.clock())
            else:
                standing = st.start_upgrade(model.standing, target, language_customization_id=language_id,
                                            trained_with=trained_with)
                await uow.models.save(custom_id, standing, updated=self.clock())
            return target
