"""The only module that writes the ``checkout_sessions`` collection."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from billing_kit.mongo import model_from_document, model_to_document
from billing_kit.scoping import Mode
from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from subscriptions.checkouts.models import Checkout

CHECKOUT_SESSIONS = "checkout_sessions"

CHECKOUT_INDEXES: Mapping[str, Sequence[IndexModel]] = {
    CHECKOUT_SESSIONS: [
        IndexModel(
            [("business_id", ASCENDING), ("mode", ASCENDING), ("customer_id", ASCENDING)],
            name="by_customer",
        ),
    ],
}


def _to_document(checkout: Checkout) -> dict[str, Any]:
    return model_to_document(checkout, "session_id")


def _from_document(doc: Mapping[str, Any]) -> Checkout:
    return model_from_document(Checkout, doc, "session_id")


class CheckoutsRepository:
    """Checkout sessions by id, always within one business and mode."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._checkouts = db[CHECKOUT_SESSIONS]

    async def insert(self, checkout: Checkout, txn: AsyncClientSession | None = None) -> None:
        """Store a new session."""
        await self._checkouts.insert_one(_to_document(checkout), session=txn)

    async def get(
        self, business_id: str, mode: Mode, session_id: str, txn: AsyncClientSession | None = None
    ) -> Checkout | None:
        """The business's session; None when unknown or another business's."""
        doc = await self._checkouts.find_one(
            {"_id": session_id, "business_id": business_id, "mode": mode}, session=txn
        )
        return None if doc is None else _from_document(doc)

    async def record_payment(
        self,
        session_id: str,
        changes: Mapping[str, Any],
        txn: AsyncClientSession,
    ) -> bool:
        """Record the payment's outcome once; False when one was already recorded."""
        result = await self._checkouts.update_one(
            {"_id": session_id, "payment_status": {"$ne": "succeeded"}},
            {"$set": dict(changes)},
            session=txn,
        )
        return result.modified_count == 1
