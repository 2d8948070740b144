"""The storage every catalogue collection (``products``, ``addons``) shares.

A catalogue record is one document per item, ``_id`` = the item's id, scoped
by business and mode, with an ``archived`` flag and an audit entry per change.
Each collection's own queries (product kinds, plan groups, add-ons by ids)
stay in its subclass.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar, cast

from billing_kit.audit import Actor, Resource, record_audit
from billing_kit.mongo import model_from_document, model_to_document
from billing_kit.scoping import Mode, PageRequest
from pydantic import BaseModel
from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

T = TypeVar("T", bound=BaseModel)

# The merchant's lists: newest first, the id breaking ties so pages never overlap.
NEWEST_FIRST = [("created_at", DESCENDING), ("_id", DESCENDING)]


def newest_first_index(name: str, *filters: str) -> IndexModel:
    """The index a merchant's list sorts from: business, mode, archived, then ``filters``
    (equality fields), then :data:`NEWEST_FIRST`."""
    keys = [(field, ASCENDING) for field in ("business_id", "mode", "archived", *filters)]
    return IndexModel([*keys, *NEWEST_FIRST], name=name)


class _Owned(Protocol):
    """The fields every catalogue model has besides its own id (Product, Addon)."""

    @property
    def business_id(self) -> str: ...

    @property
    def mode(self) -> Mode: ...

    @property
    def updated_at(self) -> datetime: ...


def _scoped(business_id: str, mode: Mode, item_id: str) -> dict[str, Any]:
    return {"_id": item_id, "business_id": business_id, "mode": mode}


class CatalogueRepository(Generic[T]):
    """Reads and writes of one catalogue collection; the use cases decide, this only stores.

    Every read takes the owning business and mode, so another business's (or
    the other mode's) item is simply not found.
    """

    def __init__(
        self,
        db: AsyncDatabase[dict[str, Any]],
        *,
        collection: str,
        model: type[T],
        id_field: str,
        audit_kind: str,
    ) -> None:
        self._db = db
        self._collection = db[collection]
        self._model = model
        self._id_field = id_field
        self._audit_kind = audit_kind

    def to_document(self, item: T) -> dict[str, Any]:
        """The stored shape: the item's id is the document ``_id``."""
        return model_to_document(item, self._id_field)

    def _from_document(self, doc: Mapping[str, Any]) -> T:
        return model_from_document(self._model, doc, self._id_field)

    def _owner(self, item: T) -> tuple[str, _Owned]:
        # Both models carry these fields; pydantic has no typed way to say "a model with
        # business_id, mode, updated_at", so the one cast lives here.
        return str(getattr(item, self._id_field)), cast(_Owned, item)

    async def insert(self, item: T, *, session: AsyncClientSession) -> None:
        """Store a new item (inside the caller's transaction)."""
        await self._collection.insert_one(self.to_document(item), session=session)

    async def record_change(
        self,
        item: T,
        *,
        actor: Actor,
        action: str,
        session: AsyncClientSession,
        details: Mapping[str, str] | None = None,
    ) -> None:
        """The audit entry of a change, in the same transaction (the kit writes audit_log)."""
        item_id, owned = self._owner(item)
        await record_audit(
            self._db,
            actor=actor,
            action=action,
            resource=Resource(
                kind=self._audit_kind,
                id=item_id,
                business_id=owned.business_id,
                mode=owned.mode,
            ),
            at=owned.updated_at,
            session=session,
            details=details,
        )

    async def get(
        self,
        business_id: str,
        mode: Mode,
        item_id: str,
        *,
        session: AsyncClientSession | None = None,
    ) -> T | None:
        """The item if it belongs to this business and mode."""
        doc = await self._collection.find_one(_scoped(business_id, mode, item_id), session=session)
        return self._from_document(doc) if doc else None

    async def _find(self, query: Mapping[str, Any], *, limit: int = 0) -> list[T]:
        """The items matching ``query`` in no particular order (``limit`` 0: all of them)."""
        cursor = self._collection.find(dict(query)).limit(limit)
        return [self._from_document(doc) async for doc in cursor]

    async def _newest_first(self, query: Mapping[str, Any], page: PageRequest) -> list[T]:
        """One page of the items matching ``query``, newest first."""
        cursor = (
            self._collection.find(dict(query))
            .sort(NEWEST_FIRST)
            .skip(page.skip)
            .limit(page.page_size)
        )
        return [self._from_document(doc) async for doc in cursor]

    async def replace(self, item: T, *, session: AsyncClientSession) -> None:
        """Store a changed item over its previous version (inside the caller's transaction)."""
        item_id, owned = self._owner(item)
        await self._collection.replace_one(
            _scoped(owned.business_id, owned.mode, item_id),
            self.to_document(item),
            session=session,
        )

    async def set_archived(
        self,
        business_id: str,
        mode: Mode,
        item_id: str,
        *,
        archived: bool,
        at: datetime,
        session: AsyncClientSession,
    ) -> tuple[T, bool] | None:
        """Archive or unarchive in one atomic write: (item, whether it changed), or None
        when there is no such item.

        ``updated_at`` only moves when the flag really changes, so repeating the
        call is a no-op.
        """
        scoped = _scoped(business_id, mode, item_id)
        doc = await self._collection.find_one_and_update(
            {**scoped, "archived": {"$ne": archived}},
            {"$set": {"archived": archived, "updated_at": at}},
            return_document=ReturnDocument.AFTER,
            session=session,
        )
        if doc is not None:
            return self._from_document(doc), True
        doc = await self._collection.find_one(scoped, session=session)
        return (self._from_document(doc), False) if doc else None
