"""Use cases of add-ons: create, read, list, change, archive and unarchive.

Every write validates the whole resulting add-on (:class:`AddonDraft`), so an
update can never leave an add-on that create would have refused. A refusal
names the field and writes nothing. Every change commits with its audit entry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from billing_kit.audit import Actor
from billing_kit.clock import Clock, SystemClock
from billing_kit.errors import InvalidArgument, NotFound, Reason
from billing_kit.scoping import Mode, PageRequest
from pydantic import ValidationError
from pymongo.asynchronous.client_session import AsyncClientSession

from subscriptions.addons.models import Addon, AddonDraft, new_addon_id
from subscriptions.products.service import SYSTEM, RunInTransaction

UPDATABLE_FIELDS = frozenset(AddonDraft.model_fields)
CLEARABLE_FIELDS = frozenset({"description"})

CREATED = "addon.created"
UPDATED = "addon.updated"
ARCHIVED = "addon.archived"
UNARCHIVED = "addon.unarchived"


class AddonStore(Protocol):
    """What the use cases need from storage."""

    async def insert(self, addon: Addon, *, session: AsyncClientSession) -> None: ...

    async def record_change(
        self,
        addon: Addon,
        *,
        actor: Actor,
        action: str,
        session: AsyncClientSession,
        details: Mapping[str, str] | None = None,
    ) -> None: ...

    async def get(
        self,
        business_id: str,
        mode: Mode,
        addon_id: str,
        *,
        session: AsyncClientSession | None = None,
    ) -> Addon | None: ...

    async def get_many(
        self, business_id: str, mode: Mode, addon_ids: Sequence[str]
    ) -> dict[str, Addon]: ...

    async def list_page(
        self, business_id: str, mode: Mode, *, archived: bool, page: PageRequest
    ) -> list[Addon]: ...

    async def replace(self, addon: Addon, *, session: AsyncClientSession) -> None: ...

    async def set_archived(
        self,
        business_id: str,
        mode: Mode,
        addon_id: str,
        *,
        archived: bool,
        at: datetime,
        session: AsyncClientSession,
    ) -> tuple[Addon, bool] | None: ...


def invalid_addon(exc: ValidationError) -> InvalidArgument:
    """The first broken rule as an InvalidArgument naming its field (never echoing the value)."""
    first = exc.errors(include_url=False, include_input=False)[0]
    field = ".".join(str(p) for p in first["loc"]) or "addon"
    message = first["msg"].removeprefix("Value error, ")
    return InvalidArgument(f"{field}: {message}", reason=Reason.INVALID_ADDON, field=field)


def _not_found() -> NotFound:
    return NotFound("addon not found", reason=Reason.ADDON_NOT_FOUND)


class AddonsService:
    """The add-ons of every business; also the in-process API of products and plan changes."""

    def __init__(
        self,
        store: AddonStore,
        run_in_transaction: RunInTransaction,
        clock: Clock | None = None,
    ) -> None:
        self._store = store
        self._transaction = run_in_transaction
        self._clock = clock or SystemClock()

    async def create_addon(
        self, business_id: str, mode: Mode, fields: Mapping[str, Any], *, actor: Actor = SYSTEM
    ) -> Addon:
        """A new (live) add-on from the merchant's fields, audited."""
        try:
            draft = AddonDraft.model_validate(dict(fields))
        except ValidationError as exc:
            raise invalid_addon(exc) from None
        now = self._clock.now()
        addon = Addon(
            addon_id=new_addon_id(),
            business_id=business_id,
            mode=mode,
            archived=False,
            created_at=now,
            updated_at=now,
            **dict(draft),
        )

        async def work(session: AsyncClientSession) -> Addon:
            await self._store.insert(addon, session=session)
            await self._store.record_change(addon, actor=actor, action=CREATED, session=session)
            return addon

        return await self._transaction(work)

    async def get_addon(self, business_id: str, mode: Mode, addon_id: str) -> Addon:
        """The business's add-on (archived ones too); otherwise NotFound (ADDON_NOT_FOUND)."""
        found = await self._store.get(business_id, mode, addon_id) if addon_id else None
        if found is None:
            raise _not_found()
        return found

    async def get_addons(
        self, business_id: str, mode: Mode, addon_ids: Sequence[str]
    ) -> dict[str, Addon]:
        """The business's add-ons among ``addon_ids`` by id (unknown or foreign ids absent)."""
        return await self._store.get_many(business_id, mode, addon_ids)

    async def list_addons(
        self, business_id: str, mode: Mode, *, archived: bool, page: PageRequest
    ) -> list[Addon]:
        """One page of live (or, with ``archived``, archived) add-ons, newest first."""
        return await self._store.list_page(business_id, mode, archived=archived, page=page)

    async def update_addon(
        self,
        business_id: str,
        mode: Mode,
        addon_id: str,
        changes: Mapping[str, Any],
        *,
        actor: Actor = SYSTEM,
    ) -> Addon:
        """Apply ``changes`` (field -> new value; None clears ``description``).

        Subscriptions that already carry the add-on keep the price they took
        (their snapshot); only later choices see the new one.
        """
        for field, value in changes.items():
            if field not in UPDATABLE_FIELDS:
                raise InvalidArgument(
                    f"{field}: cannot be changed", reason=Reason.INVALID_ADDON, field=field
                )
            if value is None and field not in CLEARABLE_FIELDS:
                raise InvalidArgument(
                    f"{field}: cannot be null", reason=Reason.INVALID_ADDON, field=field
                )
        if not addon_id:
            raise _not_found()

        async def work(session: AsyncClientSession) -> Addon:
            current = await self._store.get(business_id, mode, addon_id, session=session)
            if current is None:
                raise _not_found()
            merged = {**current.draft().model_dump(mode="python"), **changes}
            try:
                draft = AddonDraft.model_validate(merged)
            except ValidationError as exc:
                raise invalid_addon(exc) from None
            updated = current.model_copy(update={**dict(draft), "updated_at": self._clock.now()})
            await self._store.replace(updated, session=session)
            await self._store.record_change(
                updated,
                actor=actor,
                action=UPDATED,
                session=session,
                details={"fields": ",".join(sorted(changes))},
            )
            return updated

        return await self._transaction(work)

    async def set_archived(
        self,
        business_id: str,
        mode: Mode,
        addon_id: str,
        *,
        archived: bool,
        actor: Actor = SYSTEM,
    ) -> Addon:
        """Archive (no longer offered) or unarchive; idempotent, only a real change is audited."""
        if not addon_id:
            raise _not_found()
        at = self._clock.now()

        async def work(session: AsyncClientSession) -> Addon:
            found = await self._store.set_archived(
                business_id, mode, addon_id, archived=archived, at=at, session=session
            )
            if found is None:
                raise _not_found()
            addon, changed = found
            if changed:
                await self._store.record_change(
                    addon,
                    actor=actor,
                    action=ARCHIVED if archived else UNARCHIVED,
                    session=session,
                )
            return addon

        return await self._transaction(work)
