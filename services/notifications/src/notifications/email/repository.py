"""The email log: the only module touching the ``emails`` collection.

A record says who was written to, with which template, and whether the relay
took it. It never holds the link, the token or the rendered body.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pymongo import IndexModel, ReturnDocument
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
    ],
}


def _to_document(record: EmailRecord) -> dict[str, Any]:
    doc = record.model_dump(mode="python", exclude_none=True)
    doc["_id"] = doc.pop("email_id")
    return doc


def _from_document(doc: Mapping[str, Any]) -> EmailRecord:
    fields = {k: v for k, v in doc.items() if k != "_id"}
    return EmailRecord.model_validate({**fields, "email_id": doc["_id"]})


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

    async def mark_failed(self, email_id: str, *, error: str, now: datetime) -> None:
        """The relay did not take the message; ``error`` is a short fixed code."""
        await self._emails.update_one(
            {"_id": email_id},
            {"$set": {"status": "failed", "error": error, "updated_at": now}},
        )
