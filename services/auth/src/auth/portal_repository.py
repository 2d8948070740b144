"""The portal-access part of auth's database: one-time tokens, sessions, rate-limit
counters, and the customer writes of the profile (with their outbox events).

Like :mod:`auth.repository`, the only place these collections are touched.
Every lookup of a token or session is by the SHA-256 of the raw value.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from billing_kit.audit import Actor, Resource, record_audit
from billing_kit.errors import AlreadyExists, Reason
from billing_kit.events import CloudEvent
from billing_kit.mongo import run_in_transaction
from billing_kit.outbox import add_to_outbox
from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.asynchronous.mongo_client import AsyncMongoClient
from pymongo.errors import DuplicateKeyError

from auth.models import Business, Customer, Mode, normalize_email
from auth.portal_models import PortalSession, PortalToken, Purpose, SessionKind
from auth.repository import (
    BUSINESSES,
    CUSTOMERS,
    Document,
    _business,
    _customer,
    metadata_doc,
    write_customer,
)

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
    # The unified portal: every live customer with one email, across businesses.
    CUSTOMERS: [
        IndexModel(
            [("email_normalized", ASCENDING), ("mode", ASCENDING)], name="by_email_across_business"
        )
    ],
}


def _token(doc: Document) -> PortalToken:
    return PortalToken(token_id=doc["_id"], **{k: v for k, v in doc.items() if k != "_id"})


def _session(doc: Document) -> PortalSession:
    return PortalSession(session_id=doc["_id"], **{k: v for k, v in doc.items() if k != "_id"})


def _email_taken() -> AlreadyExists:
    return AlreadyExists(
        "another customer of this business already uses this email", reason=Reason.EMAIL_TAKEN
    )


class PortalRepository:
    """Reads and writes tokens, sessions, rate-limit counters and profile changes."""

    def __init__(self, client: AsyncMongoClient[Document], db: AsyncDatabase[Document]) -> None:
        self.client = client
        self.db = db
        self.tokens = db[PORTAL_TOKENS]
        self.sessions = db[PORTAL_SESSIONS]
        self.rate_limits = db[RATE_LIMITS]
        self.customers = db[CUSTOMERS]
        self.businesses = db[BUSINESSES]

    # --- lookups shared with the customer side ---

    async def get_business(self, business_id: str) -> Business | None:
        """One business by id."""
        doc = await self.businesses.find_one({"_id": business_id})
        return _business(doc) if doc else None

    async def get_businesses(self, business_ids: list[str]) -> list[Business]:
        """Several businesses in one indexed read."""
        if not business_ids:
            return []
        return [_business(d) async for d in self.businesses.find({"_id": {"$in": business_ids}})]

    async def get_customer(self, business_id: str, mode: Mode, customer_id: str) -> Customer | None:
        """One customer, only if it belongs to this business and mode."""
        doc = await self.customers.find_one(
            {"_id": customer_id, "business_id": business_id, "mode": mode}
        )
        return _customer(doc) if doc else None

    async def find_customer_by_email(
        self, business_id: str, mode: Mode, email_normalized: str
    ) -> Customer | None:
        """The customer with this (normalized) email in a business+mode."""
        doc = await self.customers.find_one(
            {"business_id": business_id, "mode": mode, "email_normalized": email_normalized}
        )
        return _customer(doc) if doc else None

    async def customers_with_email(self, email_normalized: str, mode: Mode) -> list[Customer]:
        """Every customer (any business) with this email in a mode: the unified portal."""
        cursor = self.customers.find({"email_normalized": email_normalized, "mode": mode}).limit(
            500
        )
        return [_customer(doc) async for doc in cursor]

    # --- tokens ---

    async def insert_token(self, token: PortalToken, token_hash: str) -> None:
        """Store a new one-time token under its hash."""
        doc = token.model_dump(mode="python")
        doc["_id"] = doc.pop("token_id")
        doc["token_hash"] = token_hash
        await self.tokens.insert_one(doc)

    async def store_token_with_emails(
        self,
        token: tuple[PortalToken, str] | None,
        events: list[CloudEvent],
        *,
        supersede_email_changes_of: str | None = None,
        now: datetime,
    ) -> None:
        """In one transaction: spend a customer's pending email-change links (when
        asked), store ``token`` (record, hash) and add the email requests to the outbox.
        """

        async def write(session: AsyncClientSession) -> None:
            if supersede_email_changes_of is not None:
                await self.tokens.update_many(
                    {
                        "customer_id": supersede_email_changes_of,
                        "purpose": Purpose.EMAIL_CHANGE.value,
                        "used_at": None,
                    },
                    {"$set": {"used_at": now}},
                    session=session,
                )
            if token is not None:
                record, token_hash = token
                doc = record.model_dump(mode="python")
                doc["_id"] = doc.pop("token_id")
                doc["token_hash"] = token_hash
                await self.tokens.insert_one(doc, session=session)
            for event in events:
                await add_to_outbox(self.db, event, session=session)

        await run_in_transaction(self.client, write)

    async def delete_token(self, token_id: str) -> None:
        """Remove a token whose email the relay refused for good (never delivered)."""
        await self.tokens.delete_one({"_id": token_id})

    async def find_token(self, token_hash: str) -> PortalToken | None:
        """A token by hash, whatever its state."""
        doc = await self.tokens.find_one({"token_hash": token_hash}, {"token_hash": 0})
        return _token(doc) if doc else None

    async def use_token(
        self,
        token_hash: str,
        *,
        mode: Mode,
        purposes: list[Purpose],
        now: datetime,
        session: AsyncClientSession | None = None,
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
            session=session,
        )
        return _token(doc) if doc else None

    async def insert_session(self, session: PortalSession, secret_hash: str) -> None:
        """Store a new session under the hash of its secret."""
        doc = session.model_dump(mode="python")
        doc["_id"] = doc.pop("session_id")
        doc["secret_hash"] = secret_hash
        await self.sessions.insert_one(doc)

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

    async def get_session(self, session_id: str) -> PortalSession | None:
        """A session by id, whatever its state (a hand-off checks its unified session)."""
        doc = await self.sessions.find_one({"_id": session_id}, {"secret_hash": 0})
        return _session(doc) if doc else None

    async def end_session(self, secret_hash: str, now: datetime) -> PortalSession | None:
        """End a session (keeping the first end time); returns it, None if unknown."""
        await self.sessions.update_one(
            {"secret_hash": secret_hash, "ended_at": None}, {"$set": {"ended_at": now}}
        )
        doc = await self.sessions.find_one({"secret_hash": secret_hash}, {"secret_hash": 0})
        return _session(doc) if doc else None

    async def end_sessions_opened_from(self, unified_session_id: str, now: datetime) -> int:
        """End the business sessions a unified session opened."""
        result = await self.sessions.update_many(
            {"unified_session_id": unified_session_id, "ended_at": None},
            {"$set": {"ended_at": now}},
        )
        return result.modified_count

    # --- rate limits ---

    async def count_hit(self, counter_id: str, expires_at: datetime) -> int:
        """Add one hit to a window's counter and return the new count."""
        for _ in range(3):
            try:
                doc = await self.rate_limits.find_one_and_update(
                    {"_id": counter_id},
                    {"$inc": {"count": 1}, "$setOnInsert": {"expires_at": expires_at}},
                    upsert=True,
                    return_document=ReturnDocument.AFTER,
                )
            except DuplicateKeyError:
                # Two first hits raced to insert the counter; the loser increments the winner's.
                continue
            return int(doc["count"]) if doc else 1
        raise RuntimeError("rate-limit counter could not be updated")

    # --- profile ---

    async def update_customer_with_event(
        self,
        business_id: str,
        mode: Mode,
        customer_id: str,
        changes: Document,
        make_event: Callable[[Customer], CloudEvent],
        *,
        end_sessions_at: datetime | None = None,
    ) -> Customer | None:
        """Apply ``changes`` to a customer and add ``make_event(customer)`` to the outbox,
        in one transaction. None when the customer is not this business's.

        ``changes`` uses the model's field names (``metadata`` as a dict); a new
        ``email`` also moves ``email_normalized``. With ``end_sessions_at`` (a
        merchant's email change) every portal session of the customer ends and
        pending email-change links are spent, in the same transaction. Raises
        :class:`AlreadyExists` when another customer of the business has the new
        email; nothing is written then.
        """
        update = dict(changes)
        if "metadata" in update:
            update["metadata"] = metadata_doc(update["metadata"])
        if "email" in update:
            update["email_normalized"] = normalize_email(update["email"])

        async def write(session: AsyncClientSession) -> Customer | None:
            doc = await self.customers.find_one_and_update(
                {"_id": customer_id, "business_id": business_id, "mode": mode},
                {"$set": update},
                return_document=ReturnDocument.AFTER,
                session=session,
            )
            if doc is None:
                return None
            customer = _customer(doc)
            if end_sessions_at is not None:
                await self.sessions.update_many(
                    {
                        "kind": SessionKind.BUSINESS.value,
                        "business_id": business_id,
                        "mode": mode,
                        "customer_id": customer_id,
                        "ended_at": None,
                    },
                    {"$set": {"ended_at": end_sessions_at}},
                    session=session,
                )
                # A link the customer asked for earlier must not undo the merchant's change.
                await self.tokens.update_many(
                    {
                        "customer_id": customer_id,
                        "purpose": Purpose.EMAIL_CHANGE.value,
                        "used_at": None,
                    },
                    {"$set": {"used_at": end_sessions_at}},
                    session=session,
                )
            event = make_event(customer)
            await add_to_outbox(self.db, event, session=session)
            return customer

        return await write_customer(self.client, write, clash=_email_taken())

    async def customer_preferred_locale(
        self, business_id: str, mode: Mode, customer_id: str
    ) -> str | None:
        """A customer's preferred_locale (one projected read by id); None when none."""
        doc = await self.customers.find_one(
            {"_id": customer_id, "business_id": business_id, "mode": mode},
            {"preferred_locale": 1},
        )
        return doc.get("preferred_locale") if doc else None

    async def confirm_email_change(
        self,
        token_hash: str,
        *,
        mode: Mode,
        now: datetime,
        keep_session_hash: str | None,
        make_event: Callable[[Customer], CloudEvent],
    ) -> Customer | None:
        """Spend an email-change token, move the customer to the new address, end the
        customer's other sessions and add ``customer.updated`` to the outbox: all or nothing.

        None when the token is not (any longer) usable. Raises :class:`AlreadyExists`
        when another customer of the business took the address meanwhile (then the
        token stays unused).
        """

        async def write(session: AsyncClientSession) -> Customer | None:
            token = await self.use_token(
                token_hash, mode=mode, purposes=[Purpose.EMAIL_CHANGE], now=now, session=session
            )
            if token is None or token.business_id is None or token.email is None:
                return None
            doc = await self.customers.find_one_and_update(
                {"_id": token.customer_id, "business_id": token.business_id, "mode": mode},
                {
                    "$set": {
                        "email": token.email,
                        "email_normalized": normalize_email(token.email),
                    }
                },
                return_document=ReturnDocument.AFTER,
                session=session,
            )
            if doc is None:
                return None
            customer = _customer(doc)
            ending: Document = {
                "kind": SessionKind.BUSINESS.value,
                "business_id": customer.business_id,
                "mode": mode,
                "customer_id": customer.customer_id,
                "ended_at": None,
            }
            if keep_session_hash:
                ending["secret_hash"] = {"$ne": keep_session_hash}
            await self.sessions.update_many(ending, {"$set": {"ended_at": now}}, session=session)
            await add_to_outbox(self.db, make_event(customer), session=session)
            # Who changed which customer's email, when: ids only, never the addresses.
            await record_audit(
                self.db,
                actor=Actor(kind="customer", id=customer.customer_id),
                action="customer.email_changed",
                resource=Resource(
                    kind="customer",
                    id=customer.customer_id,
                    business_id=customer.business_id,
                    mode=mode,
                ),
                at=now,
                session=session,
            )
            return customer

        return await write_customer(self.client, write, clash=_email_taken())
