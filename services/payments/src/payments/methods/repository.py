"""The only module that writes the ``payment_methods`` collection."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from billing_kit.mongo import model_from_document, model_to_document
from billing_kit.scoping import (
    CustomerScope,
    Mode,
    PageRequest,
    customer_newest_first_index,
    customers_across_businesses_index,
    newest_first,
)
from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from payments.methods.models import StoredPaymentMethod

PAYMENT_METHODS = "payment_methods"

METHOD_INDEXES: Mapping[str, Sequence[IndexModel]] = {
    PAYMENT_METHODS: [
        customer_newest_first_index(),
        customers_across_businesses_index(),
        # The unified portal: several customers of one business in one query.
        IndexModel(
            [
                ("business_id", ASCENDING),
                ("mode", ASCENDING),
                ("customer_id", ASCENDING),
                ("created_at", DESCENDING),
            ],
            name="customers_in",
        ),
    ],
}


def payment_method_to_document(method: StoredPaymentMethod) -> dict[str, Any]:
    """The stored shape: the payment method id is the document ``_id``."""
    return model_to_document(method, "payment_method_id")


def _from_document(doc: Mapping[str, Any]) -> StoredPaymentMethod:
    return model_from_document(StoredPaymentMethod, doc, "payment_method_id")


class PaymentMethodsRepository:
    """Reads and writes of saved methods; every read is scoped to its customer."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._methods = db[PAYMENT_METHODS]

    async def insert(
        self, method: StoredPaymentMethod, txn: AsyncClientSession | None = None
    ) -> None:
        """Store a newly saved method."""
        await self._methods.insert_one(payment_method_to_document(method), session=txn)

    async def get(
        self, scope: CustomerScope, payment_method_id: str, txn: AsyncClientSession | None = None
    ) -> StoredPaymentMethod | None:
        """The customer's method, None for another customer's or a missing one."""
        doc = await self._methods.find_one(
            {**scope.as_filter(), "_id": payment_method_id}, session=txn
        )
        return None if doc is None else _from_document(doc)

    async def list(
        self,
        business_id: str,
        mode: Mode,
        customer_ids: Sequence[str],
        page: PageRequest,
    ) -> list[StoredPaymentMethod]:
        """One page of the customers' methods, newest first."""
        # No business: the unified portal's customers across businesses.
        query: dict[str, Any] = {"mode": mode}
        if business_id:
            query["business_id"] = business_id
        query["customer_id"] = (
            customer_ids[0] if len(customer_ids) == 1 else {"$in": list(customer_ids)}
        )
        cursor = (
            self._methods.find(query).sort(newest_first()).skip(page.skip).limit(page.page_size)
        )
        return [_from_document(doc) async for doc in cursor]

    async def count(self, scope: CustomerScope, txn: AsyncClientSession) -> int:
        """How many methods the customer has saved."""
        return await self._methods.count_documents(scope.as_filter(), session=txn)

    async def delete(
        self, scope: CustomerScope, payment_method_id: str, txn: AsyncClientSession
    ) -> bool:
        """Forget the method (and its token); False when it was not the customer's."""
        result = await self._methods.delete_one(
            {**scope.as_filter(), "_id": payment_method_id}, session=txn
        )
        return result.deleted_count == 1

    async def set_default(
        self, scope: CustomerScope, payment_method_id: str, txn: AsyncClientSession
    ) -> None:
        """Make this the customer's only default method."""
        await self._methods.update_many(
            {**scope.as_filter(), "is_default": True, "_id": {"$ne": payment_method_id}},
            {"$set": {"is_default": False}},
            session=txn,
        )
        await self._methods.update_one(
            {**scope.as_filter(), "_id": payment_method_id},
            {"$set": {"is_default": True}},
            session=txn,
        )

    async def mark_used(
        self, scope: CustomerScope, payment_method_id: str, at: datetime, txn: AsyncClientSession
    ) -> None:
        """Record the time of the method's latest charge."""
        await self._methods.update_one(
            {**scope.as_filter(), "_id": payment_method_id},
            {"$set": {"last_used_at": at}},
            session=txn,
        )
