"""The only module that touches the notifications database."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from pymongo import IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from notifications.models import EPOCH, Recipient, RecipientKey, event_time_micros

RECIPIENTS = "recipients"

INDEXES: Mapping[str, Sequence[IndexModel]] = {
    RECIPIENTS: [
        # One recipient per customer; also serves GetRecipient.
        IndexModel(
            [("business_id", 1), ("mode", 1), ("customer_id", 1)],
            name="recipient_key_unique",
            unique=True,
        ),
    ],
}


def _key_filter(key: RecipientKey) -> dict[str, Any]:
    return {"business_id": key.business_id, "mode": key.mode, "customer_id": key.customer_id}


def _from_document(doc: Mapping[str, Any]) -> Recipient:
    fields = {k: doc[k] for k in Recipient.model_fields if k in doc}
    # The exact event time is the stored integer; the datetime is there for people and queries.
    fields["updated_at"] = EPOCH + timedelta(microseconds=doc["event_time_us"])
    return Recipient.model_validate(fields)


class RecipientsRepository:
    """The ``recipients`` directory built from customer events."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._recipients = db[RECIPIENTS]

    async def get_recipient(
        self, key: RecipientKey, *, session: AsyncClientSession | None = None
    ) -> Recipient | None:
        """The recipient, or None; inside a handler pass its session to read its snapshot."""
        doc = await self._recipients.find_one(_key_filter(key), session=session)
        return _from_document(doc) if doc else None

    async def save_recipient(self, recipient: Recipient, *, session: AsyncClientSession) -> None:
        """Create or replace the recipient inside the handler's transaction."""
        doc = recipient.model_dump(mode="python")
        doc["event_time_us"] = event_time_micros(recipient.updated_at)
        await self._recipients.replace_one(
            _key_filter(recipient.key), doc, upsert=True, session=session
        )
