"""Use cases of add-ons: create, read, list, change, archive and unarchive.

Every write validates the whole resulting add-on (:class:`AddonDraft`), so an
update can never leave an add-on that create would have refused. A refusal
names the field and writes nothing. Every change commits with its audit entry.
The steps products share (update checks, archive, audit) are
:class:`CatalogueService`'s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from billing_kit.audit import Actor
from billing_kit.clock import Clock
from billing_kit.errors import InvalidArgument, Reason
from billing_kit.scoping import Mode, PageRequest
from pydantic import ValidationError

from subscriptions.addons.models import Addon, AddonDraft, new_addon_id
from subscriptions.catalogue.service import (
    SYSTEM,
    CatalogueKind,
    CatalogueService,
    CatalogueStore,
    RunInTransaction,
    first_error,
)

UPDATABLE_FIELDS = frozenset(AddonDraft.model_fields)
CLEARABLE_FIELDS = frozenset({"description"})

ADDON = CatalogueKind(
    name="addon",
    not_found_message="addon not found",
    not_found_reason=Reason.ADDON_NOT_FOUND,
    invalid_reason=Reason.INVALID_ADDON,
    updatable=UPDATABLE_FIELDS,
    clearable=CLEARABLE_FIELDS,
)


class AddonStore(CatalogueStore[Addon], Protocol):
    """What the use cases need from storage: the catalogue's, plus the add-on lookups."""

    async def get_many(
        self, business_id: str, mode: Mode, addon_ids: Sequence[str]
    ) -> dict[str, Addon]: ...

    async def list_page(
        self, business_id: str, mode: Mode, *, archived: bool, page: PageRequest
    ) -> list[Addon]: ...


def invalid_addon(exc: ValidationError) -> InvalidArgument:
    """The first broken rule as an InvalidArgument naming its field (never echoing the value)."""
    path, message = first_error(exc)
    return ADDON.invalid(".".join(path) or "addon", message)


class AddonsService(CatalogueService[Addon]):
    """The add-ons of every business; also the in-process API of products and plan changes."""

    def __init__(
        self,
        store: AddonStore,
        run_in_transaction: RunInTransaction,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(store, run_in_transaction, clock, ADDON)
        self._addons = store

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
        return await self._insert(addon, actor=actor)

    async def get_addon(self, business_id: str, mode: Mode, addon_id: str) -> Addon:
        """The business's add-on (archived ones too); otherwise NotFound (ADDON_NOT_FOUND)."""
        return await self._get(business_id, mode, addon_id)

    async def get_addons(
        self, business_id: str, mode: Mode, addon_ids: Sequence[str]
    ) -> dict[str, Addon]:
        """The business's add-ons among ``addon_ids`` by id (unknown or foreign ids absent)."""
        return await self._addons.get_many(business_id, mode, addon_ids)

    async def list_addons(
        self, business_id: str, mode: Mode, *, archived: bool, page: PageRequest
    ) -> list[Addon]:
        """One page of live (or, with ``archived``, archived) add-ons, newest first."""
        return await self._addons.list_page(business_id, mode, archived=archived, page=page)

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

        async def rebuild(current: Addon) -> Addon:
            merged = {**current.draft().model_dump(mode="python"), **changes}
            try:
                draft = AddonDraft.model_validate(merged)
            except ValidationError as exc:
                raise invalid_addon(exc) from None
            return current.model_copy(update={**dict(draft), "updated_at": self._clock.now()})

        return await self._update(
            business_id, mode, addon_id, changes, actor=actor, rebuild=rebuild
        )
