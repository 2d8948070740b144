"""The only module that writes the ``payments`` collection."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from billing_kit.mongo import model_from_document, model_to_document
from billing_kit.scoping import (
    Mode,
    PageRequest,
    customer_newest_first_index,
    customers_across_businesses_index,
    newest_first,
)
from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from payments.charges.models import PaymentStatus, StoredPayment

PAYMENTS = "payments"

# A customer's newest payments are read through these windows of recent time
# first (see PaymentsRepository.list): the first that fills the page holds
# exactly the newest payments, so the answer is the unbounded query's.
RECENT_WINDOWS = (timedelta(days=2), timedelta(days=31), timedelta(days=366))

PAYMENT_INDEXES: Mapping[str, Sequence[IndexModel]] = {
    PAYMENTS: [
        # The idempotency guarantee: a second insert with the same key fails.
        IndexModel(
            [("business_id", ASCENDING), ("mode", ASCENDING), ("idempotency_key", ASCENDING)],
            name="idempotency_key_unique",
            unique=True,
        ),
        customer_newest_first_index(),
        IndexModel(
            [("business_id", ASCENDING), ("mode", ASCENDING), ("created_at", DESCENDING)],
            name="business_newest_first",
        ),
        customers_across_businesses_index(),
        IndexModel(
            [("challenge_id", ASCENDING)],
            name="challenge_id_unique",
            unique=True,
            partialFilterExpression={"challenge_id": {"$type": "string"}},
        ),
    ],
}


@dataclass(frozen=True)
class PaymentFilter:
    """Which payments a list shows."""

    business_id: str
    mode: Mode
    customer_ids: Sequence[str] = ()
    subscription_id: str = ""
    status: PaymentStatus | None = None
    created_at_gte: datetime | None = None
    created_at_lte: datetime | None = None

    def one_customers_history(self) -> bool:
        """True for the portal's history: one customer of one business, no other filter."""
        return bool(
            self.business_id
            and len(self.customer_ids) == 1
            and not self.subscription_id
            and self.status is None
            and self.created_at_gte is None
            and self.created_at_lte is None
        )

    def as_query(self) -> dict[str, Any]:
        """The MongoDB filter."""
        # No business: the unified portal's customers across businesses.
        query: dict[str, Any] = {"mode": self.mode}
        if self.business_id:
            query["business_id"] = self.business_id
        if len(self.customer_ids) == 1:
            query["customer_id"] = self.customer_ids[0]
        elif self.customer_ids:
            query["customer_id"] = {"$in": list(self.customer_ids)}
        if self.subscription_id:
            query["subscription_id"] = self.subscription_id
        if self.status is not None:
            query["status"] = self.status.value
        bounds: dict[str, datetime] = {}
        if self.created_at_gte is not None:
            bounds["$gte"] = self.created_at_gte
        if self.created_at_lte is not None:
            bounds["$lte"] = self.created_at_lte
        if bounds:
            query["created_at"] = bounds
        return query


def _to_document(payment: StoredPayment) -> dict[str, Any]:
    doc = model_to_document(payment, "payment_id")
    doc["status"] = payment.status.value
    doc["charge_type"] = payment.charge_type.value
    return doc


def _from_document(doc: Mapping[str, Any]) -> StoredPayment:
    return model_from_document(StoredPayment, doc, "payment_id")


class PaymentsRepository:
    """Reads and writes of payments; reads are scoped to business and mode."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._payments = db[PAYMENTS]

    async def insert(self, payment: StoredPayment, txn: AsyncClientSession) -> None:
        """Store a new payment; DuplicateKeyError when its idempotency key is taken."""
        await self._payments.insert_one(_to_document(payment), session=txn)

    async def get(
        self, business_id: str, mode: Mode, payment_id: str, txn: AsyncClientSession | None = None
    ) -> StoredPayment | None:
        """The business's payment, None for another business's or a missing one."""
        doc = await self._payments.find_one(
            {"_id": payment_id, "business_id": business_id, "mode": mode}, session=txn
        )
        return None if doc is None else _from_document(doc)

    async def get_by_key(self, business_id: str, mode: Mode, key: str) -> StoredPayment | None:
        """The payment made with this idempotency key."""
        doc = await self._payments.find_one(
            {"business_id": business_id, "mode": mode, "idempotency_key": key}
        )
        return None if doc is None else _from_document(doc)

    async def get_by_challenge(
        self, challenge_id: str, txn: AsyncClientSession | None = None
    ) -> StoredPayment | None:
        """The payment a 3-D Secure page is for."""
        doc = await self._payments.find_one({"challenge_id": challenge_id}, session=txn)
        return None if doc is None else _from_document(doc)

    async def _page(self, where: PaymentFilter, page: PageRequest) -> list[StoredPayment]:
        cursor = (
            self._payments.find(where.as_query())
            .sort(newest_first())
            .skip(page.skip)
            .limit(page.page_size)
        )
        return [_from_document(doc) async for doc in cursor]

    async def list(
        self, where: PaymentFilter, page: PageRequest, *, now: datetime | None = None
    ) -> list[StoredPayment]:
        """One page, newest first.

        SecantusDB answers a find by reading every index key its equality prefix
        matches, fetching those documents and sorting them in memory (it does not
        stop at the limit), so a customer with 10,000 payments cost 10,000 fetched
        documents per history page. A ``created_at`` range after that prefix IS
        bounded there, so one customer's pages are first read through growing
        windows of recent time (``created_at >= now - width``, ``RECENT_WINDOWS``):
        one that fills the page holds every payment newer than its start, hence
        exactly the unbounded query's page. A sparse history falls through to the unbounded query,
        which is cheap for it. (On MongoDB that query stops at the limit anyway.)
        """
        if now is not None and where.one_customers_history():
            for width in RECENT_WINDOWS:
                found = await self._page(replace(where, created_at_gte=now - width), page)
                if len(found) == page.page_size:
                    return found
        return await self._page(where, page)

    async def transition(
        self,
        payment_id: str,
        from_status: PaymentStatus,
        changes: Mapping[str, Any],
        txn: AsyncClientSession,
    ) -> StoredPayment | None:
        """Apply ``changes`` only if the payment is still ``from_status``; the updated payment.

        None when another request moved it first: the conditional update is what
        makes a status change happen once.
        """
        stored = {k: (v.value if isinstance(v, PaymentStatus) else v) for k, v in changes.items()}
        result = await self._payments.update_one(
            {"_id": payment_id, "status": from_status.value}, {"$set": stored}, session=txn
        )
        if result.modified_count != 1:
            return None
        doc = await self._payments.find_one({"_id": payment_id}, session=txn)
        return None if doc is None else _from_document(doc)
