"""Transactional outbox: events are stored with the state change, then relayed.

A producer calls :func:`add_to_outbox` inside the same transaction as its
state change, so the event exists exactly when the change does. The
:class:`OutboxRelay` publishes pending events in creation order with
publisher confirms and marks each one sent. A broker outage only delays
events: an event is never marked sent before the broker confirmed it, and the
relay never moves past an event it failed to publish.

Several replicas may run a relay on the same collection: each event is
claimed with a lease (``find_one_and_update``), so two relays never publish
the same event at the same time. Delivery is at-least-once (a relay that
dies between the confirm and the "sent" mark leaves the event to be
published again after its lease); consumers dedupe by event id.

Document shape::

    {_id: ObjectId, event_id, type, event: {CloudEvent JSON}, trace: {traceparent, ...},
     created_at, sent_at: None | datetime, lease_until, lease_owner, attempts, last_error}
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId
from opentelemetry.trace import SpanKind, Status, StatusCode
from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure, PyMongoError

from billing_kit.broker import EventPublisher
from billing_kit.events import CloudEvent
from billing_kit.metrics import EVENTS_PUBLISHED, OUTBOX_BACKLOG, OUTBOX_OLDEST_AGE
from billing_kit.telemetry import extract_trace_context, get_tracer, inject_trace_context

log = logging.getLogger(__name__)
_tracer = get_tracer(__name__)

OUTBOX_COLLECTION = "outbox"
# Sent events are kept a week for audits and replays, then expire.
SENT_RETENTION_SECONDS = 7 * 24 * 3600
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ORDER = [("created_at", ASCENDING), ("_id", ASCENDING)]

OUTBOX_INDEXES: dict[str, list[IndexModel]] = {
    OUTBOX_COLLECTION: [
        # Pending events (sent_at null) in creation order: the relay's claim query.
        IndexModel(
            [("sent_at", ASCENDING), ("created_at", ASCENDING), ("_id", ASCENDING)],
            name="pending_in_order",
        ),
        # A TTL index ignores documents whose sent_at is null, so only sent ones expire.
        IndexModel(
            [("sent_at", ASCENDING)], name="sent_ttl", expireAfterSeconds=SENT_RETENTION_SECONDS
        ),
        IndexModel([("event_id", ASCENDING)], name="event_id_unique", unique=True),
    ],
}


async def add_to_outbox(
    db: AsyncDatabase[Any], event: CloudEvent, *, session: AsyncClientSession
) -> None:
    """Store ``event`` in the outbox inside the caller's transaction.

    The current W3C trace context is stored with it, so the relay's publish
    span (and every consumer after it) joins the trace of the request that
    caused the event.
    """
    if not session.in_transaction:
        # Outside a transaction the event could outlive a failed state change
        # (or the reverse): refuse rather than silently break the guarantee.
        raise RuntimeError("add_to_outbox must be called inside a transaction")
    now = datetime.now(UTC)
    await db[OUTBOX_COLLECTION].insert_one(
        {
            "_id": ObjectId(),
            "event_id": event.id,
            "type": event.type,
            "event": event.model_dump(mode="json"),
            "trace": inject_trace_context(),
            "created_at": now,
            "sent_at": None,
            "lease_until": _EPOCH,
            "lease_owner": None,
            "attempts": 0,
            "last_error": None,
        },
        session=session,
    )


class OutboxRelay:
    """Publishes pending outbox events; safe to run in several replicas."""

    def __init__(
        self,
        db: AsyncDatabase[Any],
        publisher: EventPublisher,
        *,
        service: str,
        poll_seconds: float = 1.0,
        batch_size: int = 100,
        lease_seconds: float = 30.0,
        max_backoff_seconds: float = 30.0,
        use_change_stream: bool = True,
    ) -> None:
        if poll_seconds <= 0 or batch_size < 1 or lease_seconds <= 0:
            raise ValueError("poll_seconds, batch_size and lease_seconds must be positive")
        self._collection = db[OUTBOX_COLLECTION]
        self._publisher = publisher
        self._service = service
        self._poll_seconds = poll_seconds
        self._batch_size = batch_size
        self._lease = timedelta(seconds=lease_seconds)
        self._max_backoff = max(max_backoff_seconds, poll_seconds)
        self._use_change_stream = use_change_stream
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.healthy = True  # false while publishing keeps failing (for readiness/logs)

    async def start(self) -> None:
        """Start the relay loop (and the change-stream watcher) in the background."""
        if self._tasks:
            return
        self._stopping.clear()
        self._wake.set()  # publish whatever is already pending right away
        self._tasks.append(asyncio.create_task(self._run(), name=f"{self._service}-outbox-relay"))
        if self._use_change_stream:
            self._tasks.append(
                asyncio.create_task(self._watch(), name=f"{self._service}-outbox-watch")
            )

    async def stop(self) -> None:
        """Stop the relay; an event being published is finished and marked sent first."""
        self._stopping.set()
        self._wake.set()
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            if task.get_name().endswith("-watch"):
                task.cancel()
        # The relay loop checks _stopping between events, so it finishes its
        # current publish instead of being cut between confirm and "sent".
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def wake(self) -> None:
        """Ask for a publishing pass now (for callers that know they just wrote)."""
        self._wake.set()

    async def publish_pending(self) -> int:
        """One pass: publish up to ``batch_size`` pending events in creation order.

        Returns how many were published. Raises the publishing error when the
        broker did not confirm an event; that event is released (not marked
        sent) and nothing after it is published in this pass, so the next pass
        starts again from it.
        """
        published = 0
        try:
            while published < self._batch_size and not self._stopping.is_set():
                doc = await self._claim_next()
                if doc is None:
                    break
                await self._publish_claimed(doc)
                published += 1
        finally:
            await self._update_backlog_metrics()
        return published

    async def _claim_next(self) -> dict[str, Any] | None:
        """Lease the oldest pending event nobody else holds, or None."""
        now = datetime.now(UTC)
        doc: dict[str, Any] | None = await self._collection.find_one_and_update(
            {"sent_at": None, "lease_until": {"$lte": now}},
            {
                "$set": {"lease_until": now + self._lease, "lease_owner": uuid.uuid4().hex},
                "$inc": {"attempts": 1},
            },
            sort=_ORDER,
            return_document=ReturnDocument.AFTER,
        )
        return doc

    async def _publish_claimed(self, doc: dict[str, Any]) -> None:
        event = CloudEvent.model_validate(doc["event"])
        parent = extract_trace_context(doc.get("trace") or {})
        with _tracer.start_as_current_span(
            f"{event.type} publish",
            context=parent,
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "rabbitmq",
                "messaging.operation": "publish",
                "messaging.rabbitmq.destination.routing_key": event.type,
                "messaging.message.id": event.id,
            },
        ) as span:
            try:
                # Headers carry this PRODUCER span, so consumer spans are its children.
                await self._publisher.publish(event, headers=inject_trace_context())
            except Exception as exc:
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                await self._release(doc, exc)
                raise
        # Marked sent by id alone: even if our lease expired meanwhile, the
        # broker has the event, and a second publish would only be a duplicate.
        await self._collection.update_one(
            {"_id": doc["_id"], "sent_at": None},
            {"$set": {"sent_at": datetime.now(UTC), "lease_owner": None, "last_error": None}},
        )
        EVENTS_PUBLISHED.labels(service=self._service, type=event.type).inc()

    async def _release(self, doc: dict[str, Any], exc: Exception) -> None:
        """Give an unconfirmed event back so the next pass (here or elsewhere) retries it."""
        try:
            await self._collection.update_one(
                {"_id": doc["_id"], "lease_owner": doc["lease_owner"], "sent_at": None},
                {
                    "$set": {
                        "lease_until": _EPOCH,
                        "lease_owner": None,
                        "last_error": type(exc).__name__,
                    }
                },
            )
        except PyMongoError:
            # The lease simply expires and the event is retried later.
            log.warning("could not release an outbox lease", extra={"event_id": doc["event_id"]})

    async def _update_backlog_metrics(self) -> None:
        try:
            backlog = await self._collection.count_documents({"sent_at": None})
            oldest = await self._collection.find_one(
                {"sent_at": None}, {"created_at": 1}, sort=_ORDER
            )
        except PyMongoError:
            return  # metrics are best effort; the relay loop reports the outage
        OUTBOX_BACKLOG.labels(service=self._service).set(backlog)
        age = 0.0
        if oldest is not None:
            age = max(0.0, (datetime.now(UTC) - oldest["created_at"]).total_seconds())
        OUTBOX_OLDEST_AGE.labels(service=self._service).set(age)

    async def _run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                published = await self.publish_pending()
            except Exception as exc:
                failures += 1
                self.healthy = False
                delay = min(self._poll_seconds * 2 ** min(failures, 16), self._max_backoff)
                log.warning(
                    "outbox relay could not publish; retrying",
                    extra={"error": type(exc).__name__, "retry_in_seconds": round(delay, 2)},
                )
                # Back off without listening to wake-ups: new writes during an
                # outage must not turn the retry into a busy loop.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=delay)
                continue
            if failures:
                log.info("outbox relay publishing again", extra={"failed_passes": failures})
            failures = 0
            self.healthy = True
            if published >= self._batch_size:
                continue  # more may be waiting: no pause between full batches
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._poll_seconds)

    async def _watch(self) -> None:
        """Wake the relay on every outbox insert; polling remains the fallback."""
        delay = self._poll_seconds
        while not self._stopping.is_set():
            try:
                async with await self._collection.watch(
                    [{"$match": {"operationType": "insert"}}]
                ) as stream:
                    # Anything inserted while the stream was down is picked up now.
                    self._wake.set()
                    delay = self._poll_seconds
                    async for _change in stream:
                        self._wake.set()
            except OperationFailure as exc:
                if exc.code in (40573, 40324, 136):  # no change streams on this deployment
                    log.info("outbox change stream unavailable; polling only")
                    return
                log.debug("outbox change stream failed", extra={"error": type(exc).__name__})
            except PyMongoError as exc:
                log.debug("outbox change stream failed", extra={"error": type(exc).__name__})
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._max_backoff)
