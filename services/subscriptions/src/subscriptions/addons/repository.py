"""The only module that reads and writes the ``addons`` collection.

Every read takes the owning business and mode, so another business's (or the
other mode's) add-on is simply not found.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from billing_kit.audit import AUDIT_INDEXES, Actor, Resource, record_audit
from billing_kit.mongo import model_from_document, model_to_document
from billing_kit.scoping import Mode, PageRequest
from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from subscriptions.addons.models import Addon

ADDONS = "addons"

INDEXES: Mapping[str, Sequence[IndexModel]] = {
    # Every add-on change writes an audit entry (record_change below).
    **AUDIT_INDEXES,
    ADDONS: [
        # The merchant's list, live or archived, newest first.
        IndexModel(
            [
                ("business_id", ASCENDING),
                ("mode", ASCENDING),
                ("archived", ASCENDING),
                ("created_at", DESCENDING),
                ("_id", DESCENDING),
            ],
            name="business_addons_newest_first",
        ),
    ],
}

_NEWEST_FIRST = [("created_at", DESCENDING), ("_id", DESCENDING)]


def addon_to_document(addon: Addon) -> dict[str, Any]:
    """The stored shape: the add-on id is the document ``_id``."""
    return model_to_document(addon, "addon_id")


def _from_document(doc: Mapping[str, Any]) -> Addon:
    return model_from_document(Addon, doc, "addon_id")


def _scoped(business_id: str, mode: Mode, addon_id: str) -> dict[str, Any]:
    return {"_id": addon_id, "business_id": business_id, "mode": mode}


class AddonsRepository:
    """Reads and writes of add-ons; the use cases decide, this module only stores."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._db = db
        self._addons = db[ADDONS]

    async def insert(self, addon: Addon, *, session: AsyncClientSession) -> None:
        """Store a new add-on (inside the caller's transaction)."""
        await self._addons.insert_one(addon_to_document(addon), session=session)

    async def record_change(
        self,
        addon: Addon,
        *,
        actor: Actor,
        action: str,
        session: AsyncClientSession,
        details: Mapping[str, str] | None = None,
    ) -> None:
        """The audit entry of a change, in the same transaction."""
        await record_audit(
            self._db,
            actor=actor,
            action=action,
            resource=Resource(
                kind="addon", id=addon.addon_id, business_id=addon.business_id, mode=addon.mode
            ),
            at=addon.updated_at,
            session=session,
            details=details,
        )

    async def get(
        self,
        business_id: str,
        mode: Mode,
        addon_id: str,
        *,
        session: AsyncClientSession | None = None,
    ) -> Addon | None:
        """The add-on if it belongs to this business and mode."""
        doc = await self._addons.find_one(_scoped(business_id, mode, addon_id), session=session)
        return _from_document(doc) if doc else None

    async def get_many(
        self, business_id: str, mode: Mode, addon_ids: Sequence[str]
    ) -> dict[str, Addon]:
        """The business's add-ons among ``addon_ids`` (archived too), by id; unknown ids absent."""
        if not addon_ids:
            return {}
        cursor = self._addons.find(
            {"_id": {"$in": list(addon_ids)}, "business_id": business_id, "mode": mode}
        )
        found = [_from_document(doc) async for doc in cursor]
        return {addon.addon_id: addon for addon in found}

    async def list_page(
        self, business_id: str, mode: Mode, *, archived: bool, page: PageRequest
    ) -> list[Addon]:
        """One page of the business's add-ons, newest first."""
        query = {"business_id": business_id, "mode": mode, "archived": archived}
        cursor = self._addons.find(query).sort(_NEWEST_FIRST).skip(page.skip).limit(page.page_size)
        return [_from_document(doc) async for doc in cursor]

    async def replace(self, addon: Addon, *, session: AsyncClientSession) -> None:
        """Store a changed add-on over its previous version (inside the caller's transaction)."""
        await self._addons.replace_one(
            _scoped(addon.business_id, addon.mode, addon.addon_id),
            addon_to_document(addon),
            session=session,
        )

    async def set_archived(
        self,
        business_id: str,
        mode: Mode,
        addon_id: str,
        *,
        archived: bool,
        at: datetime,
        session: AsyncClientSession,
    ) -> tuple[Addon, bool] | None:
        """Archive or unarchive in one atomic write: (add-on, whether it changed), or None."""
        scoped = _scoped(business_id, mode, addon_id)
        doc = await self._addons.find_one_and_update(
            {**scoped, "archived": {"$ne": archived}},
            {"$set": {"archived": archived, "updated_at": at}},
            return_document=ReturnDocument.AFTER,
            session=session,
        )
        if doc is not None:
            return _from_document(doc), True
        doc = await self._addons.find_one(scoped, session=session)
        return (_from_document(doc), False) if doc else None
