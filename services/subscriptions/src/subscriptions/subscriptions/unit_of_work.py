"""One transaction of a subscriptions use case, with its outbox events."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from billing_kit.events import new_event
from billing_kit.mongo import run_in_transaction
from billing_kit.outbox import add_to_outbox
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.asynchronous.mongo_client import AsyncMongoClient

from subscriptions.subscriptions.models import Subscription, SubscriptionEventData

Txn = AsyncClientSession
T = TypeVar("T")
SOURCE = "subscriptions"


class UnitOfWork:
    """Opens transactions and queues ``subscription.*`` events in them."""

    def __init__(self, client: AsyncMongoClient[Any], db: AsyncDatabase[Any]) -> None:
        self.client = client
        self.db = db

    async def run(self, work: Callable[[Txn], Awaitable[T]]) -> T:
        """Run ``work(txn)`` in one transaction (it may run again on a transient conflict)."""
        return await run_in_transaction(self.client, work)

    async def emit(
        self,
        event_type: str,
        sub: Subscription,
        txn: Txn,
        *,
        payment_id: str | None = None,
        previous: Subscription | None = None,
    ) -> None:
        """Queue a ``subscription.*`` event carrying the subscription's new state (and,
        given ``previous``, what its status and scheduled cancel were before)."""
        data = SubscriptionEventData.of(sub, payment_id=payment_id, previous=previous)
        event = new_event(event_type, SOURCE, data, subject=sub.subscription_id)
        await add_to_outbox(self.db, event, session=txn)
