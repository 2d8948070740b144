"""Transactional outbox: events are stored with the state change, then relayed.

A producer calls :func:`add_to_outbox` inside the same transaction as its
state change, so the event exists exactly when the change does. The
:class:`~billing_kit.outbox_relay.OutboxRelay` claims pending events in batches (creation order),
publishes each batch with publisher confirms and marks the confirmed events
sent. A broker outage only delays events: an event is never marked sent
before the broker confirmed it.

This module is the writing side (the collection, its indexes, :func:`add_to_outbox`,
:func:`upgrade_outbox`); :mod:`billing_kit.outbox_relay` publishes what is written.
An unsent event carries ``pending: true``, which puts it in the partial index
``unsent_in_order`` the relay reads.

Document shape::

    {_id: ObjectId, event_id, type, event: {CloudEvent JSON}, trace: {traceparent, ...},
     created_at, pending: true (unsent only), sent_at: None | datetime,
     lease_until, lease_owner (only earlier versions lease per event), attempts, last_error}
"""

from __future__ import annotations

import contextlib
import weakref
from datetime import UTC, datetime
from typing import Any, Protocol

from bson import ObjectId
from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure

from billing_kit.clock import utc_now
from billing_kit.events import CloudEvent
from billing_kit.mongo import call_after_commit
from billing_kit.telemetry import inject_trace_context

OUTBOX_COLLECTION = "outbox"
# Sent events are kept a week for audits and replays, then expire.
SENT_RETENTION_SECONDS = 7 * 24 * 3600
UNSENT_INDEX = "unsent_in_order"
# The index of earlier versions (sent_at, created_at, _id): replaced by UNSENT_INDEX.
_LEGACY_PENDING_INDEX = "pending_in_order"
# A lease time long past: not leased.
NEVER = datetime(1970, 1, 1, tzinfo=UTC)
UNSENT_ORDER = [("created_at", ASCENDING), ("_id", ASCENDING)]
UNSENT = {"pending": True}

OUTBOX_INDEXES: dict[str, list[IndexModel]] = {
    OUTBOX_COLLECTION: [
        # Unsent events only, in creation order: the relay's claim and backlog metrics.
        IndexModel(UNSENT_ORDER, name=UNSENT_INDEX, partialFilterExpression=UNSENT),
        # A TTL index ignores documents whose sent_at is null, so only sent ones expire.
        IndexModel(
            [("sent_at", ASCENDING)], name="sent_ttl", expireAfterSeconds=SENT_RETENTION_SECONDS
        ),
        IndexModel([("event_id", ASCENDING)], name="event_id_unique", unique=True),
    ],
}


class Wakeable(Protocol):
    """A relay, as far as a commit is concerned: something to wake."""

    def wake(self) -> None:
        """Ask for a publishing pass now."""


# Relays of this process by database name, so a local commit wakes them directly.
_local_relays: dict[str, weakref.WeakSet[Wakeable]] = {}


def register_local_relay(database: str, relay: Wakeable) -> None:
    """Wake ``relay`` after every local commit that adds an event to ``database``'s outbox."""
    _local_relays.setdefault(database, weakref.WeakSet()).add(relay)


def unregister_local_relay(database: str, relay: Wakeable) -> None:
    """Stop waking ``relay`` (it is stopping)."""
    relays = _local_relays.get(database)
    if relays is not None:
        relays.discard(relay)


def _wake_local_relays(database: str) -> None:
    for relay in list(_local_relays.get(database, ())):
        relay.wake()


async def add_to_outbox(
    db: AsyncDatabase[Any], event: CloudEvent, *, session: AsyncClientSession
) -> None:
    """Store ``event`` in the outbox inside the caller's transaction.

    The current W3C trace context is stored with it, so the relay's publish
    span (and every consumer after it) joins the trace of the request that
    caused the event. A relay in this process is woken once the transaction
    commits.
    """
    if not session.in_transaction:
        # Outside a transaction the event could outlive a failed state change
        # (or the reverse): refuse rather than silently break the guarantee.
        raise RuntimeError("add_to_outbox must be called inside a transaction")
    now = utc_now()
    await db[OUTBOX_COLLECTION].insert_one(
        {
            "_id": ObjectId(),
            "event_id": event.id,
            "type": event.type,
            "event": event.model_dump(mode="json"),
            "trace": inject_trace_context(),
            "created_at": now,
            "pending": True,
            "sent_at": None,
            "lease_until": NEVER,
            "lease_owner": None,
            "attempts": 0,
            "last_error": None,
        },
        session=session,
    )
    name = db.name
    call_after_commit(session, ("outbox", name), lambda: _wake_local_relays(name))


async def upgrade_outbox(db: AsyncDatabase[Any]) -> None:
    """Bring an outbox written by an earlier version onto the unsent index.

    Unsent events stored before ``pending`` existed get it, and the old index
    is dropped. Idempotent; run at every start, before the relay (a replica of
    the earlier version may still be writing during a rolling upgrade). It
    scans the collection once, which is fine at start and never in the hot path.
    """
    collection = db[OUTBOX_COLLECTION]
    await collection.update_many(
        {"sent_at": None, "pending": {"$exists": False}}, {"$set": {"pending": True}}
    )
    if _LEGACY_PENDING_INDEX in await collection.index_information():
        with contextlib.suppress(OperationFailure):
            await collection.drop_index(_LEGACY_PENDING_INDEX)
