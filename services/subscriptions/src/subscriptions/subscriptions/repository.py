"""The only module that writes the ``subscriptions`` collection.

Use cases hand in the session of their transaction; the scheduler's claim is
the one write outside a transaction (a single atomic find_one_and_update).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from billing_kit.mongo import model_from_document, model_to_document
from billing_kit.scoping import Mode, PageRequest, customers_across_businesses_index
from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from subscriptions.subscriptions.models import Subscription, SubscriptionStatus

SUBSCRIPTIONS = "subscriptions"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

INDEXES: Mapping[str, Sequence[IndexModel]] = {
    SUBSCRIPTIONS: [
        IndexModel(
            [
                ("business_id", ASCENDING),
                ("mode", ASCENDING),
                ("customer_id", ASCENDING),
                ("created_at", DESCENDING),
                ("_id", DESCENDING),
            ],
            name="customer_newest_first",
        ),
        IndexModel(
            [
                ("business_id", ASCENDING),
                ("mode", ASCENDING),
                ("created_at", DESCENDING),
                ("_id", DESCENDING),
            ],
            name="business_newest_first",
        ),
        # The scheduler's claim: due active subscriptions, per business or overall.
        IndexModel([("status", ASCENDING), ("next_billing_date", ASCENDING)], name="due"),
        customers_across_businesses_index(),
        IndexModel(
            [
                ("business_id", ASCENDING),
                ("mode", ASCENDING),
                ("status", ASCENDING),
                ("next_billing_date", ASCENDING),
            ],
            name="business_due",
        ),
        IndexModel(
            [("business_id", ASCENDING), ("mode", ASCENDING), ("idempotency_key", ASCENDING)],
            name="create_idempotency",
            unique=True,
            partialFilterExpression={"idempotency_key": {"$type": "string"}},
        ),
        IndexModel([("pending_payment_id", ASCENDING)], name="pending_payment", sparse=True),
    ],
}


def subscription_to_document(subscription: Subscription) -> dict[str, Any]:
    """The stored shape: the subscription id is the document ``_id``."""
    doc = model_to_document(subscription, "subscription_id")
    for key, value in list(doc.items()):
        if hasattr(value, "value") and isinstance(value.value, str):
            doc[key] = value.value
    return doc


def _from_document(doc: Mapping[str, Any]) -> Subscription:
    return model_from_document(Subscription, doc, "subscription_id")


@dataclass(frozen=True)
class SubscriptionFilter:
    """What a list asks for; ``customer_ids`` empty = the whole business."""

    business_id: str
    mode: Mode
    customer_ids: tuple[str, ...] = ()
    status: SubscriptionStatus | None = None
    product_id: str | None = None
    created_at_gte: datetime | None = None
    created_at_lte: datetime | None = None
    cancel_at_next_billing_date: bool | None = None

    def as_query(self) -> dict[str, Any]:
        """The MongoDB filter."""
        query: dict[str, Any] = {"mode": self.mode}
        if self.business_id:  # none: the unified portal's customers across businesses
            query["business_id"] = self.business_id
        if self.customer_ids:
            query["customer_id"] = {"$in": list(self.customer_ids)}
        if self.status is not None:
            query["status"] = self.status.value
        if self.product_id:
            query["product_id"] = self.product_id
        created: dict[str, datetime] = {}
        if self.created_at_gte is not None:
            created["$gte"] = self.created_at_gte
        if self.created_at_lte is not None:
            created["$lte"] = self.created_at_lte
        if created:
            query["created_at"] = created
        if self.cancel_at_next_billing_date is not None:
            query["cancel_at_next_billing_date"] = self.cancel_at_next_billing_date
        return query


class SubscriptionsRepository:
    """Reads and writes of the ``subscriptions`` collection."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._subscriptions = db[SUBSCRIPTIONS]

    async def insert(
        self,
        subscription: Subscription,
        *,
        idempotency_key: str | None = None,
        txn: AsyncClientSession | None = None,
    ) -> None:
        """Store a new subscription (``idempotency_key`` is unique per business and mode)."""
        doc = subscription_to_document(subscription)
        if idempotency_key:
            doc["idempotency_key"] = idempotency_key
        # Always present, so the due filter needs no $or (see _due_filter).
        doc["lease_until"] = _EPOCH
        await self._subscriptions.insert_one(doc, session=txn)

    async def backfill_leases(self) -> int:
        """Give every subscription stored before leases were always written an expired one."""
        result = await self._subscriptions.update_many(
            {"lease_until": {"$exists": False}}, {"$set": {"lease_until": _EPOCH}}
        )
        return result.modified_count

    async def save(self, subscription: Subscription, txn: AsyncClientSession) -> None:
        """Write the subscription's fields (not the scheduler's lease) in ``txn``."""
        doc = subscription_to_document(subscription)
        doc.pop("_id")
        await self._subscriptions.update_one(
            {"_id": subscription.subscription_id}, {"$set": doc}, session=txn
        )

    async def get(
        self,
        business_id: str,
        mode: Mode,
        subscription_id: str,
        *,
        customer_id: str | None = None,
        txn: AsyncClientSession | None = None,
    ) -> Subscription | None:
        """The subscription if it belongs to the business (and customer, when given)."""
        query: dict[str, Any] = {"_id": subscription_id, "business_id": business_id, "mode": mode}
        if customer_id:
            query["customer_id"] = customer_id
        doc = await self._subscriptions.find_one(query, session=txn)
        return _from_document(doc) if doc else None

    async def get_by_idempotency_key(
        self, business_id: str, mode: Mode, key: str
    ) -> Subscription | None:
        """The subscription an earlier create with ``key`` made, if any."""
        doc = await self._subscriptions.find_one(
            {"business_id": business_id, "mode": mode, "idempotency_key": key}
        )
        return _from_document(doc) if doc else None

    async def get_by_pending_payment(
        self, payment_id: str, txn: AsyncClientSession
    ) -> Subscription | None:
        """The subscription waiting for ``payment_id`` (a 3-D Secure challenge)."""
        doc = await self._subscriptions.find_one({"pending_payment_id": payment_id}, session=txn)
        return _from_document(doc) if doc else None

    async def list(self, query: SubscriptionFilter, page: PageRequest) -> list[Subscription]:
        """One page, newest first."""
        cursor = (
            self._subscriptions.find(query.as_query())
            .sort([("created_at", DESCENDING), ("_id", DESCENDING)])
            .skip(page.skip)
            .limit(page.page_size)
        )
        return [_from_document(doc) async for doc in cursor]

    async def claim_due(
        self,
        *,
        due_by: datetime,
        real_now: datetime,
        lease_until: datetime,
        owner: str,
        business: tuple[str, Mode] | None = None,
    ) -> Subscription | None:
        """Atomically lease the earliest due active subscription whose lease has expired.

        ``business`` narrows the claim to one business's test mode (its own clock).
        """
        doc = await self._subscriptions.find_one_and_update(
            _due_filter(due_by, real_now, business),
            {"$set": {"lease_until": lease_until, "lease_owner": owner}},
            sort=[("next_billing_date", ASCENDING)],
            return_document=ReturnDocument.AFTER,
        )
        return _from_document(doc) if doc else None

    async def due_ids(
        self,
        *,
        due_by: datetime,
        real_now: datetime,
        business: tuple[str, Mode] | None = None,
        limit: int = 100,
    ) -> Sequence[str]:
        """Up to ``limit`` ids of claimable due subscriptions, earliest due first.

        The scheduler reads a batch of candidates once and claims each by id
        (:meth:`claim`): a claim query that sorts the whole backlog for every
        single subscription made a large backlog cost quadratic time.
        """
        cursor = (
            self._subscriptions.find(_due_filter(due_by, real_now, business), {"_id": 1})
            .sort("next_billing_date", ASCENDING)
            .limit(limit)
        )
        return [doc["_id"] async for doc in cursor]

    async def claim(
        self,
        subscription_id: str,
        *,
        due_by: datetime,
        real_now: datetime,
        lease_until: datetime,
        owner: str,
    ) -> Subscription | None:
        """Lease one candidate if it is still due and unleased (another replica may have won)."""
        doc = await self._subscriptions.find_one_and_update(
            {"_id": subscription_id, **_due_filter(due_by, real_now, None)},
            {"$set": {"lease_until": lease_until, "lease_owner": owner}},
            return_document=ReturnDocument.AFTER,
        )
        return _from_document(doc) if doc else None

    async def reminder_candidates(
        self,
        *,
        after_now: datetime,
        until: datetime,
        business: tuple[str, Mode] | None,
        skip: int,
        limit: int,
    ) -> Sequence[tuple[Subscription, datetime | None]]:
        """Active subscriptions renewing in ``(after_now, until]``, earliest first (a page of
        ``limit`` after ``skip``), each with the renewal date it was last reminded for."""
        query: dict[str, Any] = {
            "status": SubscriptionStatus.ACTIVE.value,
            "next_billing_date": {"$gt": after_now, "$lte": until},
        }
        if business is not None:
            query["business_id"], query["mode"] = business
        cursor = (
            self._subscriptions.find(query)
            .sort([("next_billing_date", ASCENDING), ("_id", ASCENDING)])
            .skip(skip)
            .limit(limit)
        )
        return [(_from_document(doc), doc.get("reminded_billing_date")) async for doc in cursor]

    async def mark_reminded(
        self, subscription_id: str, renewal: datetime, txn: AsyncClientSession
    ) -> bool:
        """Record that the renewal of ``renewal`` was reminded; False if it already was (or
        the subscription no longer renews then). Called in the transaction of the event."""
        result = await self._subscriptions.update_one(
            {
                "_id": subscription_id,
                "status": SubscriptionStatus.ACTIVE.value,
                "next_billing_date": renewal,
                "cancel_at_next_billing_date": False,
                "reminded_billing_date": {"$ne": renewal},
            },
            {"$set": {"reminded_billing_date": renewal}},
            session=txn,
        )
        return result.modified_count == 1

    async def holds_lease(self, subscription_id: str, owner: str, txn: AsyncClientSession) -> bool:
        """True while ``owner`` still holds the lease (read in ``txn``)."""
        doc = await self._subscriptions.find_one(
            {"_id": subscription_id, "lease_owner": owner}, {"_id": 1}, session=txn
        )
        return doc is not None

    async def renewal_in_flight(
        self, subscription_id: str, real_now: datetime, txn: AsyncClientSession
    ) -> bool:
        """True while a scheduler holds an unexpired lease (a renewal charge may be running)."""
        doc = await self._subscriptions.find_one(
            {"_id": subscription_id, "lease_until": {"$gt": real_now}}, {"_id": 1}, session=txn
        )
        return doc is not None

    async def release(
        self, subscription_id: str, owner: str, txn: AsyncClientSession | None = None
    ) -> None:
        """Give the lease back so the subscription can be claimed again at once."""
        await self._subscriptions.update_one(
            {"_id": subscription_id, "lease_owner": owner},
            {"$set": {"lease_until": _EPOCH, "lease_owner": None}},
            session=txn,
        )


def _due_filter(
    due_by: datetime, real_now: datetime, business: tuple[str, Mode] | None
) -> dict[str, Any]:
    """Active, due by ``due_by``, and not leased by a live replica.

    ``lease_until`` is written on every insert (the epoch when free), so the
    filter needs no ``$or`` on a missing field: SecantusDB answers a top-level
    ``$or`` beside ``_id`` with a collection scan, which made every claim cost
    time proportional to the whole collection (about 60 ms at 1,000 documents).
    """
    query: dict[str, Any] = {
        "status": SubscriptionStatus.ACTIVE.value,
        "next_billing_date": {"$lte": due_by},
        "lease_until": {"$lte": real_now},
    }
    if business is not None:
        query["business_id"], query["mode"] = business
    return query
