"""The only module that touches the payments database."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from billing_kit.scoping import (
    CustomerScope,
    PageRequest,
    customer_newest_first_index,
    newest_first,
)
from pymongo import IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from payments.models import PaymentMethod

PAYMENT_METHODS = "payment_methods"

INDEXES: Mapping[str, Sequence[IndexModel]] = {
    PAYMENT_METHODS: [
        customer_newest_first_index(),
    ],
}


def payment_method_to_document(method: PaymentMethod) -> dict[str, Any]:
    """The stored shape: the payment method id is the document ``_id``."""
    doc: dict[str, Any] = method.model_dump(mode="python")
    doc["_id"] = doc.pop("payment_method_id")
    return doc


def _from_document(doc: Mapping[str, Any]) -> PaymentMethod:
    # Later issues store more (e.g. the processor token); the read model takes only its fields.
    fields = {k: doc[k] for k in PaymentMethod.model_fields if k in doc}
    return PaymentMethod.model_validate({**fields, "payment_method_id": doc["_id"]})


class PaymentsRepository:
    """Reads (and, for now, test seeding) of the ``payment_methods`` collection."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._methods = db[PAYMENT_METHODS]

    async def insert_payment_method(self, method: PaymentMethod) -> None:
        """Store a saved method (used by tests until the add-card flow exists)."""
        await self._methods.insert_one(payment_method_to_document(method))

    async def list_payment_methods(
        self, scope: CustomerScope, page: PageRequest
    ) -> list[PaymentMethod]:
        """One page of the customer's saved methods, newest first."""
        cursor = (
            self._methods.find(scope.as_filter())
            .sort(newest_first())
            .skip(page.skip)
            .limit(page.page_size)
        )
        return [_from_document(doc) async for doc in cursor]
