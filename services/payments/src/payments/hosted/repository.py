"""The only module that writes the ``payment_sessions`` collection."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from billing_kit.mongo import model_from_document, model_to_document
from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from payments.hosted.models import PaymentSession, SessionStatus

PAYMENT_SESSIONS = "payment_sessions"
# Finished and expired sessions are kept a week for support, then expire.
SESSION_RETENTION_SECONDS = 7 * 24 * 3600

SESSION_INDEXES: Mapping[str, Sequence[IndexModel]] = {
    PAYMENT_SESSIONS: [
        IndexModel(
            [("expires_at", ASCENDING)],
            name="expired_ttl",
            expireAfterSeconds=SESSION_RETENTION_SECONDS,
        ),
    ],
}


def _to_document(session: PaymentSession) -> dict[str, Any]:
    doc = model_to_document(session, "session_id")
    for key in ("purpose", "status", "charge_type"):
        doc[key] = str(doc[key])
    return doc


def _from_document(doc: Mapping[str, Any]) -> PaymentSession:
    return model_from_document(PaymentSession, doc, "session_id")


class PaymentSessionsRepository:
    """Sessions by their (unguessable) id."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._sessions = db[PAYMENT_SESSIONS]

    async def insert(self, session: PaymentSession) -> None:
        """Store a new session."""
        await self._sessions.insert_one(_to_document(session))

    async def get(self, session_id: str) -> PaymentSession | None:
        """The session, None when unknown."""
        doc = await self._sessions.find_one({"_id": session_id})
        return None if doc is None else _from_document(doc)

    async def finish(
        self, session_id: str, changes: Mapping[str, Any], txn: AsyncClientSession
    ) -> bool:
        """Close an open session with ``changes``; False when it was already used."""
        stored = {k: (str(v) if isinstance(v, SessionStatus) else v) for k, v in changes.items()}
        result = await self._sessions.update_one(
            {"_id": session_id, "status": SessionStatus.OPEN.value}, {"$set": stored}, session=txn
        )
        return result.modified_count == 1

    async def link_payment(self, session_id: str, payment_id: str, txn: AsyncClientSession) -> None:
        """Remember the payment a PAY session made (its outcome is that payment's)."""
        await self._sessions.update_one(
            {"_id": session_id}, {"$set": {"payment_id": payment_id}}, session=txn
        )
