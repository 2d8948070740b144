"""The only module touching ``webhooks`` (endpoints) and ``webhook_deliveries``.

Every endpoint read takes the business and mode, so another business's
endpoint is simply not found.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from billing_kit.mongo import model_from_document, model_to_document
from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from notifications.webhooks.models import Delivery, DeliveryAttempt, Endpoint, SigningSecret

WEBHOOKS = "webhooks"
DELIVERIES = "webhook_deliveries"
# The delivery log keeps this many attempts per delivery (the newest).
MAX_LOGGED_ATTEMPTS = 50

WEBHOOK_INDEXES: Mapping[str, Sequence[IndexModel]] = {
    WEBHOOKS: [
        # Cursor pages and the consumer's "endpoints of this business" both walk this.
        IndexModel([("business_id", 1), ("mode", 1), ("_id", -1)], name="webhooks_by_business"),
        IndexModel(
            [("business_id", 1), ("mode", 1), ("idempotency_key", 1)],
            name="webhook_idempotency_key_unique",
            unique=True,
            partialFilterExpression={"idempotency_key": {"$type": "string"}},
        ),
    ],
    DELIVERIES: [
        # One delivery per (endpoint, event): a redelivered event adds nothing.
        IndexModel([("webhook_id", 1), ("event_id", 1)], name="delivery_once", unique=True),
        # The endpoint's delivery log, newest first.
        IndexModel([("webhook_id", 1), ("_id", -1)], name="deliveries_by_webhook"),
        # The workers' claims: due pending deliveries, and attempts whose lease ran out.
        IndexModel([("status", 1), ("next_attempt_at", 1)], name="delivery_due"),
        IndexModel([("status", 1), ("lease_until", 1)], name="delivery_lease"),
    ],
}


def _endpoint_doc(endpoint: Endpoint) -> dict[str, Any]:
    return model_to_document(endpoint, "webhook_id", exclude_none=True)


def _endpoint(doc: Mapping[str, Any]) -> Endpoint:
    return model_from_document(Endpoint, doc, "webhook_id")


def _delivery_doc(delivery: Delivery) -> dict[str, Any]:
    return model_to_document(delivery, "delivery_id", exclude_none=True)


def _delivery(doc: Mapping[str, Any]) -> Delivery:
    return model_from_document(Delivery, doc, "delivery_id")


class WebhooksRepository:
    """Endpoints and their deliveries."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._webhooks = db[WEBHOOKS]
        self._deliveries = db[DELIVERIES]

    # --- endpoints ---

    async def insert_endpoint(self, endpoint: Endpoint) -> Endpoint:
        """Store a new endpoint; with an idempotency key already used, the first one."""
        try:
            await self._webhooks.insert_one(_endpoint_doc(endpoint))
        except DuplicateKeyError:
            if endpoint.idempotency_key is None:
                raise
            doc = await self._webhooks.find_one(
                {
                    "business_id": endpoint.business_id,
                    "mode": endpoint.mode,
                    "idempotency_key": endpoint.idempotency_key,
                }
            )
            if doc is None:  # deleted in between: a fresh create is the honest answer
                raise
            return _endpoint(doc)
        return endpoint

    async def get_endpoint(self, business_id: str, mode: str, webhook_id: str) -> Endpoint | None:
        """The endpoint, if it is this business's in this mode."""
        doc = await self._webhooks.find_one(
            {"_id": webhook_id, "business_id": business_id, "mode": mode}
        )
        return _endpoint(doc) if doc else None

    async def get_endpoint_by_id(self, webhook_id: str) -> Endpoint | None:
        """The endpoint a delivery belongs to (the worker's read; no caller scope)."""
        doc = await self._webhooks.find_one({"_id": webhook_id})
        return _endpoint(doc) if doc else None

    async def list_endpoints(
        self, business_id: str, mode: str, *, limit: int, before_id: str | None
    ) -> list[Endpoint]:
        """Newest first, ``limit`` of them, after the cursor ``before_id``."""
        query: dict[str, Any] = {"business_id": business_id, "mode": mode}
        if before_id:
            query["_id"] = {"$lt": before_id}
        cursor = self._webhooks.find(query).sort("_id", DESCENDING).limit(limit)
        return [_endpoint(doc) async for doc in cursor]

    async def enabled_endpoints(
        self, business_id: str, mode: str, *, session: AsyncClientSession
    ) -> list[Endpoint]:
        """Every enabled endpoint of a business (a handful), in the consumer's transaction."""
        cursor = self._webhooks.find(
            {"business_id": business_id, "mode": mode, "disabled": False}, session=session
        )
        return [_endpoint(doc) async for doc in cursor]

    async def update_endpoint(
        self, business_id: str, mode: str, webhook_id: str, changes: Mapping[str, Any]
    ) -> Endpoint | None:
        """Apply ``$set`` changes; the endpoint after them, or None when not found."""
        doc = await self._webhooks.find_one_and_update(
            {"_id": webhook_id, "business_id": business_id, "mode": mode},
            {"$set": dict(changes)},
            return_document=ReturnDocument.AFTER,
        )
        return _endpoint(doc) if doc else None

    async def set_secrets(
        self,
        business_id: str,
        mode: str,
        webhook_id: str,
        secrets: Sequence[SigningSecret],
        *,
        expected: Sequence[SigningSecret],
        now: datetime,
    ) -> bool:
        """Replace the secrets if they are still ``expected`` (two rotations never interleave)."""
        result = await self._webhooks.update_one(
            {
                "_id": webhook_id,
                "business_id": business_id,
                "mode": mode,
                "secrets": [s.model_dump(mode="python", exclude_none=True) for s in expected],
            },
            {
                "$set": {
                    "secrets": [s.model_dump(mode="python", exclude_none=True) for s in secrets],
                    "updated_at": now,
                }
            },
        )
        return bool(result.modified_count)

    async def delete_endpoint(self, business_id: str, mode: str, webhook_id: str) -> bool:
        """Remove the endpoint and the deliveries not yet made; False when not found."""
        result = await self._webhooks.delete_one(
            {"_id": webhook_id, "business_id": business_id, "mode": mode}
        )
        if not result.deleted_count:
            return False
        await self._deliveries.delete_many(
            {"webhook_id": webhook_id, "status": {"$in": ["pending", "sending"]}}
        )
        return True

    async def record_success(self, webhook_id: str, *, now: datetime) -> None:
        """A 2xx: the endpoint is healthy again."""
        await self._webhooks.update_one(
            {"_id": webhook_id, "consecutive_failures": {"$gt": 0}},
            {"$set": {"consecutive_failures": 0}, "$unset": {"failing_since": ""}},
        )

    async def record_failure(self, webhook_id: str, *, now: datetime) -> Endpoint | None:
        """One more failed attempt in a row; the endpoint after it."""
        await self._webhooks.update_one(
            {"_id": webhook_id, "failing_since": {"$exists": False}},
            {"$set": {"failing_since": now}},
        )
        doc = await self._webhooks.find_one_and_update(
            {"_id": webhook_id},
            {"$inc": {"consecutive_failures": 1}},
            return_document=ReturnDocument.AFTER,
        )
        return _endpoint(doc) if doc else None

    async def disable_failing(self, webhook_id: str, *, now: datetime) -> bool:
        """Disable an endpoint that keeps failing; False if already disabled."""
        result = await self._webhooks.update_one(
            {"_id": webhook_id, "disabled": False},
            {"$set": {"disabled": True, "disabled_reason": "failing", "updated_at": now}},
        )
        return bool(result.modified_count)

    async def every_endpoint(self) -> AsyncIterator[Endpoint]:
        """Every endpoint of every business (the operators' re-seal walks them all)."""
        async for doc in self._webhooks.find({}).sort("_id", ASCENDING):
            yield _endpoint(doc)

    async def replace_sealed(
        self,
        endpoint: Endpoint,
        secrets: Sequence[SigningSecret],
        sealed_headers: Mapping[str, str],
    ) -> bool:
        """Store re-sealed values if the endpoint's sealed values did not change meanwhile."""
        result = await self._webhooks.update_one(
            {
                "_id": endpoint.webhook_id,
                "secrets": [
                    s.model_dump(mode="python", exclude_none=True) for s in endpoint.secrets
                ],
                "sealed_headers": dict(endpoint.sealed_headers),
            },
            {
                "$set": {
                    "secrets": [s.model_dump(mode="python", exclude_none=True) for s in secrets],
                    "sealed_headers": dict(sealed_headers),
                }
            },
        )
        return bool(result.modified_count)

    # --- deliveries ---

    async def add_delivery(self, delivery: Delivery, *, session: AsyncClientSession) -> bool:
        """Queue a delivery in the consumer's transaction; False when (endpoint, event) exists."""
        existing = await self._deliveries.find_one(
            {"webhook_id": delivery.webhook_id, "event_id": delivery.event_id},
            {"_id": 1},
            session=session,
        )
        if existing is not None:
            return False
        await self._deliveries.insert_one(_delivery_doc(delivery), session=session)
        return True

    async def claim_due(self, *, now: datetime, lease_until: datetime) -> Delivery | None:
        """Lease the oldest due delivery, else one whose attempt's lease ran out."""
        update = {
            "$set": {"status": "sending", "lease_until": lease_until, "updated_at": now},
            "$inc": {"attempts": 1},
        }
        for query, order in (
            ({"status": "pending", "next_attempt_at": {"$lte": now}}, "next_attempt_at"),
            ({"status": "sending", "lease_until": {"$lte": now}}, "lease_until"),
        ):
            doc = await self._deliveries.find_one_and_update(
                query, update, sort=[(order, ASCENDING)], return_document=ReturnDocument.AFTER
            )
            if doc is not None:
                return _delivery(doc)
        return None

    async def next_due_at(self) -> datetime | None:
        """When the earliest pending delivery is due."""
        doc = await self._deliveries.find_one(
            {"status": "pending"}, {"next_attempt_at": 1}, sort=[("next_attempt_at", ASCENDING)]
        )
        return doc.get("next_attempt_at") if doc else None

    async def finish_attempt(
        self,
        delivery_id: str,
        attempt: DeliveryAttempt,
        *,
        status: str,
        next_attempt_at: datetime | None,
        claimed_attempts: int,
    ) -> None:
        """Log the attempt and set the outcome, only if no later claim took the delivery over
        (the attempt count is the fencing token: a takeover increments it)."""
        fields: dict[str, Any] = {"status": status, "updated_at": attempt.at}
        unset: dict[str, str] = {"lease_until": ""}
        if next_attempt_at is not None:
            fields["next_attempt_at"] = next_attempt_at
        else:
            unset["next_attempt_at"] = ""
        await self._deliveries.update_one(
            {"_id": delivery_id, "status": "sending", "attempts": claimed_attempts},
            {
                "$set": fields,
                "$unset": unset,
                "$push": {
                    "attempt_log": {
                        "$each": [attempt.model_dump(mode="python")],
                        "$slice": -MAX_LOGGED_ATTEMPTS,
                    }
                },
            },
        )

    async def fail_pending_of(self, webhook_id: str, *, now: datetime) -> int:
        """A disabled endpoint's waiting deliveries end as failed (nothing will send them)."""
        result = await self._deliveries.update_many(
            {"webhook_id": webhook_id, "status": "pending"},
            {"$set": {"status": "failed", "updated_at": now}, "$unset": {"next_attempt_at": ""}},
        )
        return int(result.modified_count)

    async def list_deliveries(
        self, webhook_id: str, *, limit: int, before_id: str | None
    ) -> list[Delivery]:
        """An endpoint's deliveries, newest first (the caller checked the endpoint's owner)."""
        query: dict[str, Any] = {"webhook_id": webhook_id}
        if before_id:
            query["_id"] = {"$lt": before_id}
        cursor = self._deliveries.find(query).sort("_id", DESCENDING).limit(limit)
        return [_delivery(doc) async for doc in cursor]
