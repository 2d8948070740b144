"""The only module that writes ``portal_tokens``, ``portal_sessions`` and ``rate_limits``.

Every lookup of a token or session is by the SHA-256 of the raw value. The
methods only read and write: which token to spend and which sessions to end is
decided by the use cases, which hand in their transaction (``txn``) when the
write belongs to one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from billing_kit.mongo import model_from_document, model_to_document
from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from auth.portal_access.models import PortalSession, PortalToken, Purpose, SessionKind
from auth.rules import Mode
from auth.unit_of_work import Txn

Document = dict[str, Any]

PORTAL_TOKENS = "portal_tokens"
PORTAL_SESSIONS = "portal_sessions"
RATE_LIMITS = "rate_limits"

# Spent and expired links are kept a week (so an old link still says "expired",
# not "unknown", and can ask for a fresh one), then MongoDB's TTL monitor drops them.
TOKEN_RETENTION_SECONDS = 7 * 24 * 3600
# Ended/expired sessions are kept a day for support, then dropped.
SESSION_RETENTION_SECONDS = 24 * 3600

PORTAL_INDEXES: dict[str, list[IndexModel]] = {
    PORTAL_TOKENS: [
        IndexModel([("token_hash", ASCENDING)], unique=True, name="token_hash_unique"),
        IndexModel(
            [("expires_at", ASCENDING)],
            name="expires_ttl",
            expireAfterSeconds=TOKEN_RETENTION_SECONDS,
        ),
        # CreateCustomerLink's idempotency: one link per (business, mode, key).
        IndexModel(
            [("business_id", ASCENDING), ("mode", ASCENDING), ("link_key", ASCENDING)],
            name="link_key_unique",
            unique=True,
            partialFilterExpression={"link_key": {"$type": "string"}},
        ),
        # Superseding a customer's pending email-change links.
        IndexModel(
            [("customer_id", ASCENDING), ("purpose", ASCENDING), ("used_at", ASCENDING)],
            name="by_customer_purpose",
        ),
    ],
    PORTAL_SESSIONS: [
        IndexModel([("secret_hash", ASCENDING)], unique=True, name="secret_hash_unique"),
        # Ending every session of a customer (email change).
        IndexModel(
            [("business_id", ASCENDING), ("mode", ASCENDING), ("customer_id", ASCENDING)],
            name="by_customer",
        ),
        # Ending the business sessions opened from a unified session (unified logout).
        IndexModel([("unified_session_id", ASCENDING)], name="by_unified_session"),
        IndexModel(
            [("absolute_expires_at", ASCENDING)],
            name="absolute_ttl",
            expireAfterSeconds=SESSION_RETENTION_SECONDS,
        ),
    ],
    # Counters live until their window ends.
    RATE_LIMITS: [
        IndexModel([("expires_at", ASCENDING)], name="expires_ttl", expireAfterSeconds=0)
    ],
}


def _token(doc: Document) -> PortalToken:
    return model_from_document(PortalToken, doc, "token_id")


def _session(doc: Document) -> PortalSession:
    return model_from_document(PortalSession, doc, "session_id")


class PortalRepository:
    """Reads and writes tokens, sessions and rate-limit counters."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.tokens = db[PORTAL_TOKENS]
        self.sessions = db[PORTAL_SESSIONS]
        self.rate_limits = db[RATE_LIMITS]

    # --- tokens ---

    async def insert_token(self, token: PortalToken, token_hash: str, *, txn: Txn) -> None:
        """Store a new one-time token under its hash."""
        doc = model_to_document(token, "token_id")
        doc["token_hash"] = token_hash
        await self.tokens.insert_one(doc, session=txn)

    async def spend_pending_email_changes(
        self, customer_id: str, now: datetime, *, txn: Txn
    ) -> None:
        """Mark a customer's unused email-change links used."""
        await self.tokens.update_many(
            {"customer_id": customer_id, "purpose": Purpose.EMAIL_CHANGE.value, "used_at": None},
            {"$set": {"used_at": now}},
            session=txn,
        )

    async def find_token_by_link_key(
        self, business_id: str, mode: Mode, link_key: str
    ) -> PortalToken | None:
        """The link minted earlier under an idempotency key (CreateCustomerLink), if any."""
        doc = await self.tokens.find_one(
            {"business_id": business_id, "mode": mode, "link_key": link_key}, {"token_hash": 0}
        )
        return _token(doc) if doc else None

    async def delete_token(self, token_id: str) -> None:
        """Remove a token whose email the relay refused for good (never delivered)."""
        await self.tokens.delete_one({"_id": token_id})

    async def find_token(self, token_hash: str) -> PortalToken | None:
        """A token by hash, whatever its state."""
        doc = await self.tokens.find_one({"token_hash": token_hash}, {"token_hash": 0})
        return _token(doc) if doc else None

    async def use_token(
        self, token_hash: str, *, mode: Mode, purposes: list[Purpose], now: datetime, txn: Txn
    ) -> PortalToken | None:
        """Mark a valid token used, atomically; None when it is not (any longer) usable.

        The filter and the update are one document operation, so of any number
        of concurrent callers exactly one gets the token back.
        """
        doc = await self.tokens.find_one_and_update(
            {
                "token_hash": token_hash,
                "mode": mode,
                "purpose": {"$in": [p.value for p in purposes]},
                "used_at": None,
                "expires_at": {"$gt": now},
            },
            {"$set": {"used_at": now}},
            projection={"token_hash": 0},
            return_document=ReturnDocument.AFTER,
            session=txn,
        )
        return _token(doc) if doc else None

    # --- sessions ---

    async def insert_session(self, record: PortalSession, secret_hash: str, *, txn: Txn) -> None:
        """Store a new session under the hash of its secret."""
        doc = model_to_document(record, "session_id")
        doc["secret_hash"] = secret_hash
        await self.sessions.insert_one(doc, session=txn)

    async def active_session(self, secret_hash: str, *, now: datetime) -> PortalSession | None:
        """An active session by hash (a read); None when unknown, ended or expired."""
        doc = await self.sessions.find_one(
            {
                "secret_hash": secret_hash,
                "ended_at": None,
                "idle_expires_at": {"$gt": now},
                "absolute_expires_at": {"$gt": now},
            },
            {"secret_hash": 0},
        )
        return _session(doc) if doc else None

    async def touch_session(
        self, secret_hash: str, *, now: datetime, idle_expires_at: datetime
    ) -> PortalSession | None:
        """An active session by hash, its idle deadline pushed to ``idle_expires_at``.

        None when unknown, ended, idle too long or past its absolute limit.
        """
        doc = await self.sessions.find_one_and_update(
            {
                "secret_hash": secret_hash,
                "ended_at": None,
                "idle_expires_at": {"$gt": now},
                "absolute_expires_at": {"$gt": now},
            },
            {"$set": {"last_seen_at": now, "idle_expires_at": idle_expires_at}},
            projection={"secret_hash": 0},
            return_document=ReturnDocument.AFTER,
        )
        return _session(doc) if doc else None

    async def get_session(self, session_id: str, *, txn: Txn | None = None) -> PortalSession | None:
        """A session by id, whatever its state (a hand-off checks its unified session)."""
        doc = await self.sessions.find_one({"_id": session_id}, {"secret_hash": 0}, session=txn)
        return _session(doc) if doc else None

    async def end_session(
        self, secret_hash: str, now: datetime, *, txn: Txn
    ) -> PortalSession | None:
        """End a session (keeping the first end time); returns it, None if unknown."""
        await self.sessions.update_one(
            {"secret_hash": secret_hash, "ended_at": None},
            {"$set": {"ended_at": now}},
            session=txn,
        )
        doc = await self.sessions.find_one(
            {"secret_hash": secret_hash}, {"secret_hash": 0}, session=txn
        )
        return _session(doc) if doc else None

    async def end_sessions_opened_from(
        self, unified_session_id: str, now: datetime, *, txn: Txn
    ) -> int:
        """End the business sessions a unified session opened."""
        result = await self.sessions.update_many(
            {"unified_session_id": unified_session_id, "ended_at": None},
            {"$set": {"ended_at": now}},
            session=txn,
        )
        return result.modified_count

    async def end_customer_sessions(
        self,
        business_id: str,
        mode: Mode,
        customer_id: str,
        now: datetime,
        *,
        keep_secret_hash: str | None = None,
        txn: Txn,
    ) -> int:
        """End every active business session of a customer (but ``keep_secret_hash``'s)."""
        ending: Document = {
            "kind": SessionKind.BUSINESS.value,
            "business_id": business_id,
            "mode": mode,
            "customer_id": customer_id,
            "ended_at": None,
        }
        if keep_secret_hash:
            ending["secret_hash"] = {"$ne": keep_secret_hash}
        result = await self.sessions.update_many(ending, {"$set": {"ended_at": now}}, session=txn)
        return result.modified_count

    # --- rate limits ---

    async def record_hit(
        self, counter_id: str, *, now: datetime, keep: int, expires_at: datetime
    ) -> list[datetime]:
        """Record one hit on a counter and return its most recent ``keep`` hits.

        One atomic update, so concurrent requests cannot both see room for one
        more. Not part of a use case's transaction on purpose: a refused request
        still counts.
        """
        for _ in range(3):
            try:
                doc = await self.rate_limits.find_one_and_update(
                    {"_id": counter_id},
                    {
                        "$push": {"hits": {"$each": [now], "$slice": -keep}},
                        "$set": {"expires_at": expires_at},
                    },
                    upsert=True,
                    return_document=ReturnDocument.AFTER,
                )
            except DuplicateKeyError:
                # Two first hits raced to insert the counter; the loser updates the winner's.
                continue
            return list(doc["hits"]) if doc else [now]
        raise RuntimeError("rate-limit counter could not be updated")
