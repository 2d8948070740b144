"""The only module that touches the subscriptions database."""

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

from subscriptions.models import Subscription

SUBSCRIPTIONS = "subscriptions"

INDEXES: Mapping[str, Sequence[IndexModel]] = {
    SUBSCRIPTIONS: [
        customer_newest_first_index(),
    ],
}


def subscription_to_document(subscription: Subscription) -> dict[str, Any]:
    """The stored shape: the subscription id is the document ``_id``."""
    doc: dict[str, Any] = subscription.model_dump(mode="python")
    doc["_id"] = doc.pop("subscription_id")
    doc["status"] = subscription.status.value
    return doc


def _from_document(doc: Mapping[str, Any]) -> Subscription:
    # Later issues store more (e.g. renewal bookkeeping); the read model takes only its fields.
    fields = {k: doc[k] for k in Subscription.model_fields if k in doc}
    return Subscription.model_validate({**fields, "subscription_id": doc["_id"]})


class SubscriptionsRepository:
    """Reads (and, for now, test seeding) of the ``subscriptions`` collection."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._subscriptions = db[SUBSCRIPTIONS]

    async def insert(self, subscription: Subscription) -> None:
        """Store a new subscription (used by tests until the create flow exists)."""
        await self._subscriptions.insert_one(subscription_to_document(subscription))

    async def get_subscription(
        self, scope: CustomerScope, subscription_id: str
    ) -> Subscription | None:
        """The subscription if it belongs to ``scope``; another customer's is simply absent."""
        doc = await self._subscriptions.find_one({"_id": subscription_id, **scope.as_filter()})
        return _from_document(doc) if doc else None

    async def list_subscriptions(
        self, scope: CustomerScope, page: PageRequest
    ) -> list[Subscription]:
        """One page of the customer's subscriptions, newest first."""
        cursor = (
            self._subscriptions.find(scope.as_filter())
            .sort(newest_first())
            .skip(page.skip)
            .limit(page.page_size)
        )
        return [_from_document(doc) async for doc in cursor]
