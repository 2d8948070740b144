"""Exactly-once handling of consumed events: ``processed_events`` records in batch transactions.

Each event is handled inside one MongoDB transaction together with a
``processed_events`` record keyed by (purpose, event id), and acknowledged
only after that commit: delivery is at-least-once, effects are exactly-once.
Events that arrive together share one transaction: their records are written
with one ``insert_many`` and their handlers run one after another in delivery
order. A per-event transaction is the consumer's largest database cost (on
SecantusDB ~3 ms against ~0.3 ms in a batch); when anything in a batch
fails, its events are handled again one by one, so a poison event is retried
or dead-lettered alone.

:class:`~billing_kit.consumer.EventConsumer` owns the queue and the batching
of deliveries; this module owns what happens to a batch once it is taken.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from aio_pika.abc import AbstractIncomingMessage
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from pymongo import AsyncMongoClient, IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import ConnectionFailure, DuplicateKeyError, PyMongoError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential

from billing_kit.clock import utc_now
from billing_kit.events import CloudEvent
from billing_kit.mongo import run_in_transaction
from billing_kit.telemetry import extract_trace_context, get_tracer

log = logging.getLogger(__name__)
_tracer = get_tracer(__name__)

PROCESSED_EVENTS_COLLECTION = "processed_events"
# _id is already unique (it is the dedupe key); the time index serves
# operators and an eventual clean-up job, not correctness.
PROCESSED_EVENTS_INDEXES: dict[str, list[IndexModel]] = {
    PROCESSED_EVENTS_COLLECTION: [IndexModel([("handled_at", 1)], name="handled_at")],
}

T = TypeVar("T")
Handler = Callable[[CloudEvent, AsyncClientSession], Awaitable[None]]
Settle = Callable[[Awaitable[None]], Awaitable[None]]


def _header_text(headers: Mapping[str, Any]) -> dict[str, str]:
    """AMQP header values as text (aiormq may hand back bytes for long strings)."""
    out: dict[str, str] = {}
    for key, value in headers.items():
        if isinstance(value, bytes | bytearray):
            out[key] = bytes(value).decode("utf-8", "replace")
        elif isinstance(value, str):
            out[key] = value
    return out


class _AlreadyProcessed(Exception):
    """Raised inside the transaction when the event's dedupe record exists."""


class _HandlerFailed(Exception):
    """The handler of the event at ``index`` of a batch raised ``error``."""

    def __init__(self, index: int, error: Exception) -> None:
        super().__init__(index, error)
        self.index, self.error = index, error


@dataclass
class Delivery:
    """A decoded message waiting for (or taken into) a batch."""

    message: AbstractIncomingMessage
    event: CloudEvent
    taken: bool = False


class ExactlyOnceHandling:
    """Runs ``handler`` once per event id of a batch, in one transaction, and acks what it handled.

    ``settle`` awaits an ack (tolerating a lost channel) and ``count`` records
    an outcome in the metrics; both belong to the consumer, which also gives
    back (requeues or dead-letters) the events :meth:`handle` returns.
    """

    def __init__(
        self,
        *,
        handler: Handler,
        client: AsyncMongoClient[Any],
        db: AsyncDatabase[Any],
        purpose: str,
        queue_name: str,
        exchange_name: str,
        redelivery_delay: float,
        settle: Settle,
        count: Callable[[str], None],
    ) -> None:
        self._handler = handler
        self._client = client
        self._db = db
        self._purpose = purpose
        self._queue_name = queue_name
        self._exchange_name = exchange_name
        self._redelivery_delay = redelivery_delay
        self._settle = settle
        self._count = count

    def _start_span(self, event: CloudEvent, message: AbstractIncomingMessage) -> Span:
        return _tracer.start_span(
            f"{event.type} process",
            context=extract_trace_context(_header_text(message.headers or {})),
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "rabbitmq",
                "messaging.operation": "process",
                "messaging.destination.name": self._exchange_name,
                "messaging.rabbitmq.destination.routing_key": event.type,
                "messaging.message.id": event.id,
                "messaging.consumer.group.name": self._queue_name,
            },
        )

    async def _in_transaction_riding_out_outages(
        self, fn: Callable[[AsyncClientSession], Awaitable[T]]
    ) -> T:
        """``run_in_transaction(fn)``, retried while the database is unreachable.

        The database being down is not the event's fault: the message stays
        unacked (neither lost nor counted against the delivery limit) until
        the database is back or we stop.
        """
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(ConnectionFailure),
            wait=wait_exponential(multiplier=self._redelivery_delay, max=5.0),
            before_sleep=self._log_database_outage,
            reraise=True,
        ):
            with attempt:
                return await run_in_transaction(self._client, fn)
        raise AssertionError("not reached: the retry returns or reraises")

    async def handle(self, batch: Sequence[Delivery]) -> list[tuple[Delivery, Exception]]:
        """Handle ``batch`` in one transaction and ack it; the events that failed.

        When a handler fails, the batch's transaction is rolled back, that
        event is returned to be given back (one attempt, as if alone) and the
        rest are handled again without it. Any other failure (a duplicate
        record racing another replica, say) handles each event alone.
        """
        if len(batch) == 1:
            return await self._handle_alone(batch[0])
        spans = [self._start_span(d.event, d.message) for d in batch]
        try:
            fresh = await self._in_transaction_riding_out_outages(
                lambda session: self._handle_batch_once(batch, spans, session)
            )
        except _HandlerFailed as failed:
            for span in spans:
                span.end()
            rest = [d for index, d in enumerate(batch) if index != failed.index]
            return [(batch[failed.index], failed.error), *await self.handle(rest)]
        except Exception as exc:
            for span in spans:
                span.end()
            log.info(
                "an event batch failed; handling its events one by one",
                extra={
                    "queue": self._queue_name,
                    "events": len(batch),
                    "error": type(exc).__name__,
                },
            )
            failures: list[tuple[Delivery, Exception]] = []
            for delivery in batch:
                failures += await self._handle_alone(delivery)
            return failures
        except BaseException:
            for span in spans:
                span.end()
            raise  # shutdown: the broker redelivers the unacked messages
        for index, (delivery, span) in enumerate(zip(batch, spans, strict=True)):
            await self._settle(delivery.message.ack())
            self._count("handled" if index in fresh else "duplicate")
            span.end()
        return []

    async def _handle_batch_once(
        self, batch: Sequence[Delivery], spans: Sequence[Span], session: AsyncClientSession
    ) -> set[int]:
        """Record and handle the events of ``batch`` not processed yet; their positions."""
        records = self._db[PROCESSED_EVENTS_COLLECTION]
        keys = [self._record_id(delivery.event) for delivery in batch]
        found = await records.find({"_id": {"$in": keys}}, {"_id": 1}, session=session).to_list()
        done = {doc["_id"] for doc in found}
        fresh: list[int] = []
        for index, key in enumerate(keys):
            if key not in done:  # also a second copy of an event within the batch
                done.add(key)
                fresh.append(index)
        if fresh:
            await records.insert_many(
                [self._record(batch[index].event) for index in fresh], session=session
            )
        for index in fresh:
            with trace.use_span(spans[index], end_on_exit=False):
                try:
                    await self._handler(batch[index].event, session)
                except PyMongoError:
                    raise  # the transaction's own retry rules apply (transient errors rerun)
                except Exception as exc:
                    raise _HandlerFailed(index, exc) from exc
        return set(fresh)

    async def _handle_alone(self, delivery: Delivery) -> list[tuple[Delivery, Exception]]:
        message, event = delivery.message, delivery.event
        with trace.use_span(self._start_span(event, message), end_on_exit=True) as span:
            try:
                await self._in_transaction_riding_out_outages(lambda s: self._handle_once(event, s))
            except _AlreadyProcessed:
                await self._settle(message.ack())
                self._count("duplicate")
                return []
            except asyncio.CancelledError:
                raise  # shutdown: the broker redelivers the unacked message
            except Exception as exc:
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                return [(delivery, exc)]
            await self._settle(message.ack())
            self._count("handled")
            return []

    def _log_database_outage(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        log.warning(
            "database unreachable while handling an event; retrying",
            extra={"queue": self._queue_name, "error": type(error).__name__},
        )

    def _record_id(self, event: CloudEvent) -> str:
        return f"{self._purpose}:{event.id}"

    def _record(self, event: CloudEvent) -> dict[str, Any]:
        """The ``processed_events`` record that makes handling ``event`` exactly-once."""
        return {
            "_id": self._record_id(event),
            "purpose": self._purpose,
            "event_id": event.id,
            "type": event.type,
            "source": event.source,
            "handled_at": utc_now(),
        }

    async def _handle_once(self, event: CloudEvent, session: AsyncClientSession) -> None:
        try:
            await self._db[PROCESSED_EVENTS_COLLECTION].insert_one(
                self._record(event), session=session
            )
        except DuplicateKeyError:
            raise _AlreadyProcessed from None
        await self._handler(event, session)
