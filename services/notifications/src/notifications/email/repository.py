"""The email log: the only module touching the ``emails`` collection.

A record says who was written to, with which template, and whether the relay
took it. It never holds the link, the token or the rendered body.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from billing_kit.mongo import model_from_document, model_to_document
from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from notifications.email.models import EmailRecord

EMAILS = "emails"

EMAIL_INDEXES: Mapping[str, Sequence[IndexModel]] = {
    EMAILS: [
        # One email per idempotency key and business+mode; records without a key
        # are left out of the index (partial), so they never collide.
        IndexModel(
            [("business_id", 1), ("mode", 1), ("idempotency_key", 1)],
            name="idempotency_key_unique",
            unique=True,
            partialFilterExpression={"idempotency_key": {"$type": "string"}},
        ),
        # Support questions: "what did we send for this business lately?"
        IndexModel(
            [("business_id", 1), ("mode", 1), ("created_at", -1)], name="emails_by_business"
        ),
        # The delivery worker's claims: queued emails that are due, and attempts
        # whose lease ran out (a killed process); also the operators' dead list.
        IndexModel([("status", 1), ("next_attempt_at", 1)], name="due_by_status"),
        IndexModel([("status", 1), ("lease_until", 1)], name="lease_by_status"),
    ],
}

# Fields only a queued email has; removed once it is final, so the sealed link
# does not outlive its use.
_JOB_FIELDS = {"queued": "", "next_attempt_at": "", "lease_until": ""}


def _to_document(record: EmailRecord) -> dict[str, Any]:
    return model_to_document(record, "email_id", exclude_none=True)


def _from_document(doc: Mapping[str, Any]) -> EmailRecord:
    return model_from_document(EmailRecord, doc, "email_id")


class EmailLogRepository:
    """Reads and writes email records."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._emails = db[EMAILS]

    async def get(self, email_id: str) -> EmailRecord | None:
        """The record of ``email_id``, or None."""
        doc = await self._emails.find_one({"_id": email_id})
        return _from_document(doc) if doc else None

    async def find_by_idempotency_key(
        self, business_id: str, mode: str, idempotency_key: str
    ) -> EmailRecord | None:
        """The email already sent (or being sent) under this key, if any."""
        doc = await self._emails.find_one(
            {"business_id": business_id, "mode": mode, "idempotency_key": idempotency_key}
        )
        return _from_document(doc) if doc else None

    async def insert(self, record: EmailRecord) -> EmailRecord | None:
        """Store a new record; returns the one holding the same key if another won the race."""
        try:
            await self._emails.insert_one(_to_document(record))
        except DuplicateKeyError:
            if record.idempotency_key is None:
                raise
            return await self.find_by_idempotency_key(
                record.business_id, record.mode, record.idempotency_key
            )
        return None

    async def claim_for_retry(
        self, email_id: str, *, now: datetime, stale_before: datetime
    ) -> EmailRecord | None:
        """Take a failed (or abandoned) send over, atomically; None if someone else has it."""
        doc = await self._emails.find_one_and_update(
            {
                "_id": email_id,
                "$or": [
                    {"status": "failed"},
                    {"status": "sending", "updated_at": {"$lt": stale_before}},
                ],
            },
            {"$set": {"status": "sending", "updated_at": now}, "$inc": {"attempts": 1}},
            return_document=ReturnDocument.AFTER,
        )
        return _from_document(doc) if doc else None

    async def mark_sent(self, email_id: str, *, sent_at: datetime, message_id: str) -> None:
        """The relay accepted the message."""
        await self._emails.update_one(
            {"_id": email_id},
            {
                "$set": {
                    "status": "sent",
                    "sent_at": sent_at,
                    "updated_at": sent_at,
                    "message_id": message_id,
                },
                "$unset": {"error": ""},
            },
        )

    # --- queued emails (email.requested) ---

    async def enqueue(self, record: EmailRecord, *, session: AsyncClientSession) -> bool:
        """Queue ``record`` inside the consumer's transaction; False when its key is known.

        The stable key makes a redelivered or repeated request a no-op.
        """
        assert record.idempotency_key is not None
        existing = await self._emails.find_one(
            {
                "business_id": record.business_id,
                "mode": record.mode,
                "idempotency_key": record.idempotency_key,
            },
            {"_id": 1},
            session=session,
        )
        if existing is not None:
            return False
        await self._emails.insert_one(_to_document(record), session=session)
        return True

    async def claim_due(self, *, now: datetime, lease_until: datetime) -> EmailRecord | None:
        """Lease the oldest due queued email, else one whose attempt's lease ran out."""
        update = {
            "$set": {"status": "sending", "lease_until": lease_until, "updated_at": now},
            "$inc": {"attempts": 1},
        }
        for query, order in (
            ({"status": "queued", "next_attempt_at": {"$lte": now}}, "next_attempt_at"),
            ({"status": "sending", "lease_until": {"$lte": now}}, "lease_until"),
        ):
            doc = await self._emails.find_one_and_update(
                query, update, sort=[(order, ASCENDING)], return_document=ReturnDocument.AFTER
            )
            if doc is not None:
                return _from_document(doc)
        return None

    async def next_due_at(self) -> datetime | None:
        """When the earliest queued email is due (the worker sleeps until then)."""
        doc = await self._emails.find_one(
            {"status": "queued"}, {"next_attempt_at": 1}, sort=[("next_attempt_at", ASCENDING)]
        )
        return doc.get("next_attempt_at") if doc else None

    async def mark_delivered(self, email_id: str, *, sent_at: datetime, message_id: str) -> None:
        """A queued email was accepted by the relay: final, sealed link dropped."""
        await self._emails.update_one(
            {"_id": email_id},
            {
                "$set": {
                    "status": "sent",
                    "sent_at": sent_at,
                    "updated_at": sent_at,
                    "message_id": message_id,
                },
                "$unset": {"error": "", **_JOB_FIELDS},
            },
        )

    async def reschedule(
        self, email_id: str, *, error: str, now: datetime, next_attempt_at: datetime
    ) -> None:
        """The attempt failed for now: queue it again for ``next_attempt_at``."""
        await self._emails.update_one(
            {"_id": email_id, "status": "sending"},
            {
                "$set": {
                    "status": "queued",
                    "error": error,
                    "updated_at": now,
                    "next_attempt_at": next_attempt_at,
                },
                "$unset": {"lease_until": ""},
            },
        )

    async def mark_final_failure(
        self, email_id: str, *, status: str, error: str, now: datetime, keep_request: bool
    ) -> None:
        """``rejected`` (refused for good; request dropped) or ``dead`` (kept for replay)."""
        unset = {"lease_until": "", "next_attempt_at": ""}
        if not keep_request:
            unset["queued"] = ""
        await self._emails.update_one(
            {"_id": email_id},
            {"$set": {"status": status, "error": error, "updated_at": now}, "$unset": unset},
        )

    async def find_status(self, business_id: str, mode: str, idempotency_key: str) -> str | None:
        """The status of the email under a key (None when unknown)."""
        found = await self.find_progress(business_id, mode, idempotency_key)
        return found[0] if found else None

    async def find_progress(
        self, business_id: str, mode: str, idempotency_key: str
    ) -> tuple[str, int] | None:
        """``(status, attempts)`` of the email under a key (None when unknown)."""
        doc = await self._emails.find_one(
            {"business_id": business_id, "mode": mode, "idempotency_key": idempotency_key},
            {"status": 1, "attempts": 1},
        )
        return (str(doc["status"]), int(doc.get("attempts", 0))) if doc else None

    async def list_dead(self, limit: int = 100) -> list[EmailRecord]:
        """Emails whose retries ran out, oldest first (the operators' dead letters)."""
        cursor = self._emails.find({"status": "dead"}).sort("updated_at", ASCENDING).limit(limit)
        return [_from_document(doc) async for doc in cursor]

    async def replay_dead(self, email_ids: list[str] | None, *, now: datetime) -> int:
        """Queue dead emails again (all, or these ids) with a fresh attempt count."""
        query: dict[str, Any] = {"status": "dead", "queued": {"$exists": True}}
        if email_ids is not None:
            query["_id"] = {"$in": email_ids}
        result = await self._emails.update_many(
            query,
            {
                "$set": {
                    "status": "queued",
                    "next_attempt_at": now,
                    "updated_at": now,
                    "attempts": 0,
                }
            },
        )
        return int(result.modified_count)

    async def mark_failed(self, email_id: str, *, error: str, now: datetime) -> None:
        """The relay did not take the message; ``error`` is a short fixed code."""
        await self._emails.update_one(
            {"_id": email_id},
            {"$set": {"status": "failed", "error": error, "updated_at": now}},
        )
