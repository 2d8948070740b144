"""The outbox relay: publishes what :func:`~billing_kit.outbox.add_to_outbox` stored.

Several replicas may run a relay on the same collection: one of them at a
time holds the outbox's lease (a document in ``outbox_relay_lease`` with an
owner and an expiry, taken and renewed by a conditional update at every
pass), and only the holder publishes, so two relays never publish the same
event at the same time. A holder that dies simply stops renewing: another
replica takes over when the lease expires. One lease per pass rather than one
per event halves the writes per event (the "sent" mark is the only one),
which on SecantusDB is most of the cost of relaying. Delivery is
at-least-once (a relay that dies between the confirm and the "sent" mark, or
stalls past its lease, leaves events to be published again); consumers
dedupe by event id. Events go out in creation order; an event whose publish
failed is retried in the next pass (with those after it in its batch that
also failed), so order is not guaranteed across a failure.

Per-event ``lease_until`` / ``lease_owner`` are still honoured when
claiming, so events leased by an earlier version's relay (a rolling
upgrade) are left alone until their lease ends.

The hot path sees only unsent events. An unsent event carries
``pending: true``; marking it sent removes the field, which takes it out of
the partial index ``unsent_in_order`` (``created_at, _id`` where ``pending``
is true). The batch query and the backlog metrics read that index only, so
they do not slow down as sent history (kept a week for audits, then expired
by TTL) grows. Query plans, checked with ``explain``:

* SecantusDB (the dev/CI server) picks a collection scan plus sort unless
  told otherwise (COLLSCAN, SORT: every document examined, ~10 ms per 2,000
  documents and growing), so the claim names the index with ``hint``:
  IXSCAN on ``unsent_in_order`` (then FETCH, SORT). SecantusDB walks the
  whole unsent range before applying the limit (keys examined = unsent
  events, never sent ones), so a query costs about the same for 100 events
  as for 1,000: the relay reads up to ``batch_size`` (1,000) per query and
  publishes and marks them in chunks of ``publish_chunk`` (200).
* MongoDB chooses the partial index by itself (the filter ``pending: true``
  implies the index's filter), giving the same IXSCAN with no SORT stage,
  stopped at the limit; the hint only pins that plan. The "sent" mark selects by ``_id $in`` (the
  ``_id`` index on both servers).

Marking events sent is the relay's largest cost on SecantusDB (about 1 ms of
server time per event, against ~0.2 ms for its share of the claim): a
chunk's mark therefore runs while the next chunk is published and
confirmed, and the pass waits for the last mark before it ends, so the next
claim never sees an event that is already on the broker.

The relay wakes at once after a local commit (:func:`~billing_kit.outbox.add_to_outbox` hooks the
transaction of :func:`~billing_kit.mongo.run_in_transaction`), on a change
stream for writes by other processes, when the publisher reconnects after an
outage, and otherwise polls. Retry pauses come from tenacity (capped
exponential with jitter); the pause ends early when the broker comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from bson import ObjectId
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from pymongo import UpdateMany
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, OperationFailure, PyMongoError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential_jitter

from billing_kit.broker import EventPublisher
from billing_kit.clock import Clock, SystemClock
from billing_kit.events import CloudEvent
from billing_kit.metrics import EVENTS_PUBLISHED, OUTBOX_BACKLOG, OUTBOX_OLDEST_AGE
from billing_kit.outbox import (
    NEVER,
    OUTBOX_COLLECTION,
    UNSENT,
    UNSENT_INDEX,
    UNSENT_ORDER,
    register_local_relay,
    unregister_local_relay,
)
from billing_kit.telemetry import extract_trace_context, get_tracer, inject_trace_context

log = logging.getLogger(__name__)
_tracer = get_tracer(__name__)

# One document: which relay may publish now, and until when.
LEASE_COLLECTION = "outbox_relay_lease"
_LEASE_ID = "relay"
# Ids per ``$in`` when marking events sent (see OutboxRelay._mark_sent).
_MARK_GROUP = 25


class OutboxRelay:
    """Publishes pending outbox events in batches; safe to run in several replicas."""

    def __init__(
        self,
        db: AsyncDatabase[Any],
        publisher: EventPublisher,
        *,
        service: str,
        poll_seconds: float = 1.0,
        batch_size: int = 1000,
        publish_chunk: int = 200,
        lease_seconds: float = 30.0,
        max_backoff_seconds: float = 1.0,
        use_change_stream: bool = True,
        metrics_interval_seconds: float = 10.0,
        clock: Clock | None = None,
    ) -> None:
        """``clock`` times the leases (a test moves it instead of waiting one out)."""
        if poll_seconds <= 0 or batch_size < 1 or lease_seconds <= 0:
            raise ValueError("poll_seconds, batch_size and lease_seconds must be positive")
        self._db_name = db.name
        self._collection = db[OUTBOX_COLLECTION]
        self._leases = db[LEASE_COLLECTION]
        self._owner = f"{service}-{uuid.uuid4().hex}"
        self._publisher = publisher
        self._service = service
        self._clock: Clock = clock or SystemClock()
        self._poll_seconds = poll_seconds
        self._batch_size = batch_size
        self._publish_chunk = max(1, min(publish_chunk, batch_size))
        self._lease = timedelta(seconds=lease_seconds)
        self._max_backoff = max_backoff_seconds
        self._use_change_stream = use_change_stream
        self._metrics_interval = metrics_interval_seconds
        self._metrics_at = float("-inf")
        self._wake = asyncio.Event()
        self._resume = asyncio.Event()  # the broker is back: end a retry pause early
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.healthy = True  # false while publishing keeps failing (for readiness/logs)
        publisher.on_connected(self._on_broker_connected)

    async def start(self) -> None:
        """Start the relay loop (and the change-stream watcher) in the background."""
        if self._tasks:
            return
        self._stopping.clear()
        register_local_relay(self._db_name, self)
        self._wake.set()  # publish whatever is already pending right away
        self._tasks.append(asyncio.create_task(self._run(), name=f"{self._service}-outbox-relay"))
        if self._use_change_stream:
            self._tasks.append(
                asyncio.create_task(self._watch(), name=f"{self._service}-outbox-watch")
            )

    async def stop(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Stop the relay: a batch being published is finished and marked first.

        A batch still running after ``timeout`` seconds (a broker that does not
        confirm) is cancelled; its events keep their lease and are published
        again once it expires, so nothing is lost, only delayed.
        """
        self._stopping.set()
        self._wake.set()
        self._resume.set()
        unregister_local_relay(self._db_name, self)
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            if task.get_name().endswith("-watch"):
                task.cancel()
        # The relay loop checks _stopping between batches, so it finishes its
        # current batch instead of being cut between confirm and "sent".
        _, pending = await asyncio.wait(tasks, timeout=timeout) if tasks else (set(), set())
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=1.0)
        if tasks:
            await self._give_up_lease()

    def wake(self) -> None:
        """Ask for a publishing pass now (for callers that know they just wrote)."""
        self._wake.set()

    def _on_broker_connected(self) -> None:
        self._resume.set()
        self._wake.set()

    async def publish_pending(self) -> int:
        """One pass: take the lease, publish up to ``batch_size`` pending events, mark them sent.

        The events are read in one query and published and marked in chunks
        of ``publish_chunk`` (the lease renewed before each): on SecantusDB a
        query over the unsent index costs about the same for 100 events as
        for 1,000, while marking grows with the chunk. Returns how many were
        published (0 when another relay holds the lease). When the broker did
        not confirm some of them, the confirmed ones are still marked sent,
        the others keep waiting (their attempt is counted) and the
        publishing error is raised, so the caller backs off.
        """
        marking: asyncio.Task[None] | None = None
        try:
            if not await self._hold_lease():
                return 0
            batch = await self._pending_batch()
            published = 0
            for start in range(0, len(batch), self._publish_chunk):
                if start and (self._stopping.is_set() or not await self._hold_lease()):
                    break
                sent, failed, error = await self._publish_batch(
                    batch[start : start + self._publish_chunk]
                )
                # The previous chunk's "sent" mark ran while this one was being
                # published and confirmed; one mark at a time, in order.
                if marking is not None:
                    await marking
                    marking = None
                if sent:
                    marking = asyncio.create_task(self._mark_sent(sent))
                    published += len(sent)
                if error is not None:
                    await self._record_failure(failed, error)
                    raise error
            return published
        finally:
            if marking is not None:
                # Before the next claim: an event still pending there would go out twice.
                await marking
            await self._update_backlog_metrics()

    async def _hold_lease(self) -> bool:
        """Take or renew the outbox's lease; False while another live relay holds it."""
        now = self._clock.now()
        try:
            await self._leases.update_one(
                {"_id": _LEASE_ID, "$or": [{"owner": self._owner}, {"until": {"$lte": now}}]},
                {"$set": {"owner": self._owner, "until": now + self._lease}},
                upsert=True,
            )
        except DuplicateKeyError:
            return False  # the filter did not match: someone else's lease is running
        return True

    async def _give_up_lease(self) -> None:
        """Let another replica take over at once instead of after the lease expires."""
        with contextlib.suppress(PyMongoError):
            await self._leases.update_one(
                {"_id": _LEASE_ID, "owner": self._owner}, {"$set": {"until": NEVER}}
            )

    def _claim_query(self, now: datetime) -> dict[str, Any]:
        """The ``find`` that picks the next batch (also what :meth:`explain_claim` shows)."""
        return {
            "find": OUTBOX_COLLECTION,
            "filter": {**UNSENT, "lease_until": {"$lte": now}},
            "sort": dict(UNSENT_ORDER),
            "hint": UNSENT_INDEX,
            "limit": self._batch_size,
        }

    async def explain_claim(self) -> dict[str, Any]:
        """The server's ``explain`` (executionStats) of the claim query (tests, benchmarks)."""
        database = self._collection.database
        result: dict[str, Any] = await database.command(
            {"explain": self._claim_query(self._clock.now()), "verbosity": "executionStats"}
        )
        return result

    async def _pending_batch(self) -> list[dict[str, Any]]:
        """The oldest pending events, at most ``batch_size`` (the caller holds the lease)."""
        query = self._claim_query(self._clock.now())
        batch: list[dict[str, Any]] = (
            await self._collection.find(query["filter"], sort=UNSENT_ORDER)
            .hint(query["hint"])
            .limit(query["limit"])
            .to_list()
        )
        return batch

    async def _publish_batch(
        self, batch: Sequence[dict[str, Any]]
    ) -> tuple[list[ObjectId], list[dict[str, Any]], Exception | None]:
        """Publish ``batch`` with confirms: confirmed ids, unconfirmed docs, the first error.

        Raises (after counting the attempt) only when nothing could be sent
        at all (no broker connection).
        """
        events = [CloudEvent.model_validate(doc["event"]) for doc in batch]
        spans: list[Span] = []
        messages: list[tuple[CloudEvent, dict[str, str]]] = []
        for doc, event in zip(batch, events, strict=True):
            span = _tracer.start_span(
                f"{event.type} publish",
                context=extract_trace_context(doc.get("trace") or {}),
                kind=SpanKind.PRODUCER,
                attributes={
                    "messaging.system": "rabbitmq",
                    "messaging.operation": "publish",
                    "messaging.rabbitmq.destination.routing_key": event.type,
                    "messaging.message.id": event.id,
                },
            )
            spans.append(span)
            # Headers carry this PRODUCER span, so consumer spans are its children.
            with trace.use_span(span, end_on_exit=False):
                messages.append((event, inject_trace_context()))
        try:
            outcomes = await self._publisher.publish_many(messages)
        except BaseException as exc:
            for span in spans:
                _end_failed(span, exc)
            if isinstance(exc, Exception):
                await self._record_failure(batch, exc)
            raise
        sent: list[ObjectId] = []
        failed: list[dict[str, Any]] = []
        first_error: Exception | None = None
        for doc, event, span, outcome in zip(batch, events, spans, outcomes, strict=True):
            if outcome is None:
                sent.append(doc["_id"])
                EVENTS_PUBLISHED.labels(service=self._service, type=event.type).inc()
                span.end()
            else:
                failed.append(doc)
                first_error = first_error or outcome
                _end_failed(span, outcome)
        return sent, failed, first_error

    async def _mark_sent(self, sent: Sequence[ObjectId]) -> None:
        """Mark confirmed events sent, which takes them out of the unsent index.

        By id alone: even if our lease expired meanwhile, the broker has the
        event, and a second publish would only be a duplicate. Several small
        ``$in`` lists in one bulk write rather than one long list: SecantusDB
        compares each document with every id of the list (twice), which made
        a 200-id ``update_many`` cost about twice as much per event.
        """
        update = {
            "$set": {"sent_at": self._clock.now(), "last_error": None},
            "$unset": {"pending": ""},
            "$inc": {"attempts": 1},
        }
        group = _MARK_GROUP
        await self._collection.bulk_write(
            [
                UpdateMany({"_id": {"$in": list(sent[start : start + group])}}, update)
                for start in range(0, len(sent), group)
            ]
        )

    async def _record_failure(self, docs: Sequence[dict[str, Any]], exc: BaseException) -> None:
        """Count the failed attempt on unconfirmed events (they stay pending for the next pass)."""
        if not docs:
            return
        try:
            await self._collection.update_many(
                {"_id": {"$in": [doc["_id"] for doc in docs]}, **UNSENT},
                {"$set": {"last_error": type(exc).__name__}, "$inc": {"attempts": 1}},
            )
        except PyMongoError:
            log.warning("could not record an outbox failure", extra={"events": len(docs)})

    async def _update_backlog_metrics(self) -> None:
        # Counting walks the unsent index: cheap, but not per batch while draining.
        if time.monotonic() - self._metrics_at < self._metrics_interval:
            return
        try:
            backlog = await self._collection.count_documents(UNSENT, hint=UNSENT_INDEX)
            oldest = await self._collection.find_one(
                UNSENT, {"created_at": 1}, sort=UNSENT_ORDER, hint=UNSENT_INDEX
            )
        except PyMongoError:
            return  # metrics are best effort; the relay loop reports the outage
        self._metrics_at = time.monotonic()
        OUTBOX_BACKLOG.labels(service=self._service).set(backlog)
        age = 0.0
        if oldest is not None:
            age = max(0.0, (self._clock.now() - oldest["created_at"]).total_seconds())
        OUTBOX_OLDEST_AGE.labels(service=self._service).set(age)

    async def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            published = await self._pass_until_it_works()
            if published is None:
                return  # stopping
            if published >= self._batch_size:
                continue  # more may be waiting: no pause between full batches
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._poll_seconds)

    async def _pass_until_it_works(self) -> int | None:
        """One publishing pass, retried with capped backoff until it succeeds or we stop.

        The pause between attempts ignores new writes (an outage must not turn
        into a busy loop) but ends as soon as the publisher reconnects.
        """
        failures = 0
        self._resume.clear()
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(Exception),
            wait=wait_exponential_jitter(
                multiplier=min(0.1, self._max_backoff), max=self._max_backoff, jitter=0.1
            ),
            sleep=self._pause,
            before_sleep=self._log_failure,
        ):
            if self._stopping.is_set():
                return None
            with attempt:
                published = await self.publish_pending()
            if attempt.retry_state.outcome is not None and attempt.retry_state.outcome.failed:
                failures += 1
                self.healthy = False
                continue
            if failures:
                log.info("outbox relay publishing again", extra={"failed_passes": failures})
            self.healthy = True
            return published
        return None  # not reached: the retry never stops by itself

    async def _pause(self, seconds: float) -> None:
        self._resume.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._resume.wait(), timeout=seconds)

    def _log_failure(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        log.warning(
            "outbox relay could not publish; retrying",
            extra={
                "error": type(error).__name__,
                "retry_in_seconds": round(state.upcoming_sleep, 2),
            },
        )

    async def _watch(self) -> None:
        """Wake the relay on every outbox insert (other processes); polling remains the fallback."""
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(PyMongoError),
            wait=wait_exponential_jitter(multiplier=self._poll_seconds, max=30.0),
        ):
            with attempt:
                try:
                    await self._follow_change_stream()
                except OperationFailure as exc:
                    if exc.code in (40573, 40324, 136):  # no change streams on this deployment
                        log.info("outbox change stream unavailable; polling only")
                        return
                    raise

    async def _follow_change_stream(self) -> None:
        async with await self._collection.watch(
            [{"$match": {"operationType": "insert"}}]
        ) as stream:
            # Anything inserted while the stream was down is picked up now.
            self._wake.set()
            async for _change in stream:
                self._wake.set()


def _end_failed(span: Span, exc: BaseException) -> None:
    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
    span.end()
