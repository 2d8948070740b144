"""The only module that reads and writes the ``products`` collection.

Every read takes the owning business and mode, so another business's (or the
other mode's) product is simply not found.
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

from subscriptions.products.models import Product

PRODUCTS = "products"

# The merchant's list, newest first: live or archived, optionally one kind (recurring or
# one-time). Two indexes so both the filtered and the unfiltered list sort from an index.
INDEXES: Mapping[str, Sequence[IndexModel]] = {
    # Every product change writes an audit entry (record_change below).
    **AUDIT_INDEXES,
    PRODUCTS: [
        IndexModel(
            [
                ("business_id", ASCENDING),
                ("mode", ASCENDING),
                ("archived", ASCENDING),
                ("created_at", DESCENDING),
                ("_id", DESCENDING),
            ],
            name="business_products_newest_first",
        ),
        IndexModel(
            [
                ("business_id", ASCENDING),
                ("mode", ASCENDING),
                ("archived", ASCENDING),
                ("is_recurring", ASCENDING),
                ("created_at", DESCENDING),
                ("_id", DESCENDING),
            ],
            name="business_products_by_kind_newest_first",
        ),
        # The plans of one plan group (ListPlanOptions).
        IndexModel(
            [("business_id", ASCENDING), ("mode", ASCENDING), ("plan_group", ASCENDING)],
            name="business_plan_group",
        ),
    ],
}

_NEWEST_FIRST = [("created_at", DESCENDING), ("_id", DESCENDING)]


def product_to_document(product: Product) -> dict[str, Any]:
    """The stored shape: the product id is the document ``_id``."""
    return model_to_document(product, "product_id")


def _from_document(doc: Mapping[str, Any]) -> Product:
    return model_from_document(Product, doc, "product_id")


def _scoped(business_id: str, mode: Mode, product_id: str) -> dict[str, Any]:
    return {"_id": product_id, "business_id": business_id, "mode": mode}


class ProductsRepository:
    """Reads and writes of products; the use cases decide, this module only stores."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._db = db
        self._products = db[PRODUCTS]

    async def insert(self, product: Product, *, session: AsyncClientSession) -> None:
        """Store a new product (inside the caller's transaction)."""
        await self._products.insert_one(product_to_document(product), session=session)

    async def record_change(
        self,
        product: Product,
        *,
        actor: Actor,
        action: str,
        session: AsyncClientSession,
        details: Mapping[str, str] | None = None,
    ) -> None:
        """The audit entry of a change, in the same transaction (the kit writes audit_log)."""
        await record_audit(
            self._db,
            actor=actor,
            action=action,
            resource=Resource(
                kind="product",
                id=product.product_id,
                business_id=product.business_id,
                mode=product.mode,
            ),
            at=product.updated_at,
            session=session,
            details=details,
        )

    async def get(
        self,
        business_id: str,
        mode: Mode,
        product_id: str,
        *,
        session: AsyncClientSession | None = None,
    ) -> Product | None:
        """The product if it belongs to this business and mode."""
        doc = await self._products.find_one(_scoped(business_id, mode, product_id), session=session)
        return _from_document(doc) if doc else None

    async def list_page(
        self,
        business_id: str,
        mode: Mode,
        *,
        archived: bool,
        recurring: bool | None,
        page: PageRequest,
    ) -> list[Product]:
        """One page of the business's products, newest first."""
        query: dict[str, Any] = {"business_id": business_id, "mode": mode, "archived": archived}
        if recurring is not None:
            query["is_recurring"] = recurring
        cursor = (
            self._products.find(query).sort(_NEWEST_FIRST).skip(page.skip).limit(page.page_size)
        )
        return [_from_document(doc) async for doc in cursor]

    async def list_plan_group(
        self, business_id: str, mode: Mode, plan_group: str, *, limit: int = 100
    ) -> list[Product]:
        """The business's products in ``plan_group`` (archived too; the caller filters)."""
        if not plan_group:
            return []
        cursor = self._products.find(
            {"business_id": business_id, "mode": mode, "plan_group": plan_group}
        ).limit(limit)
        return [_from_document(doc) async for doc in cursor]

    async def replace(self, product: Product, *, session: AsyncClientSession) -> None:
        """Store a changed product over its previous version (inside the caller's transaction)."""
        await self._products.replace_one(
            _scoped(product.business_id, product.mode, product.product_id),
            product_to_document(product),
            session=session,
        )

    async def set_archived(
        self,
        business_id: str,
        mode: Mode,
        product_id: str,
        *,
        archived: bool,
        at: datetime,
        session: AsyncClientSession,
    ) -> tuple[Product, bool] | None:
        """Archive or unarchive in one atomic write: (product, whether it changed), or None
        when there is no such product.

        ``updated_at`` only moves when the flag really changes, so repeating the
        call is a no-op.
        """
        scoped = _scoped(business_id, mode, product_id)
        doc = await self._products.find_one_and_update(
            {**scoped, "archived": {"$ne": archived}},
            {"$set": {"archived": archived, "updated_at": at}},
            return_document=ReturnDocument.AFTER,
            session=session,
        )
        if doc is not None:
            return _from_document(doc), True
        doc = await self._products.find_one(scoped, session=session)
        return (_from_document(doc), False) if doc else None
