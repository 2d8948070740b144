"""RabbitMQ publishing and consuming (aio-pika) for CloudEvents.

* :class:`EventPublisher` publishes to one durable topic exchange with
  publisher confirms; a publish that the broker does not confirm raises, so
  the outbox relay keeps the event and retries.
* :class:`EventConsumer` owns one durable quorum queue per (service, purpose)
  with an explicit delivery limit and a dead-letter queue. Each event is
  handled inside one MongoDB transaction together with a ``processed_events``
  record keyed by event id, and acknowledged only after that commit: delivery
  is at-least-once, effects are exactly-once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import aio_pika
import aiormq
from aio_pika.abc import (
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustChannel,
    AbstractRobustConnection,
)
from opentelemetry.trace import SpanKind, Status, StatusCode
from pymongo import AsyncMongoClient, IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import ConnectionFailure, DuplicateKeyError

from billing_kit.events import CloudEvent, decode_event, encode_event
from billing_kit.metrics import EVENTS_HANDLED
from billing_kit.mongo import run_in_transaction
from billing_kit.telemetry import extract_trace_context, get_tracer, inject_trace_context

log = logging.getLogger(__name__)
_tracer = get_tracer(__name__)

CONTENT_TYPE = "application/cloudevents+json"
PROCESSED_EVENTS_COLLECTION = "processed_events"
# _id is already unique (it is the dedupe key); the time index serves
# operators and an eventual clean-up job, not correctness.
PROCESSED_EVENTS_INDEXES: dict[str, list[IndexModel]] = {
    PROCESSED_EVENTS_COLLECTION: [IndexModel([("handled_at", 1)], name="handled_at")],
}

Handler = Callable[[CloudEvent, AsyncClientSession], Awaitable[None]]


class PublishNotConfirmed(RuntimeError):
    """The broker did not confirm a published message (nack, timeout or lost connection)."""


def _connection_is_up(connection: AbstractRobustConnection | None) -> bool:
    return connection is not None and not connection.is_closed and connection.connected.is_set()


def _header_text(headers: Mapping[str, Any]) -> dict[str, str]:
    """AMQP header values as text (aiormq may hand back bytes for long strings)."""
    out: dict[str, str] = {}
    for key, value in headers.items():
        if isinstance(value, bytes | bytearray):
            out[key] = bytes(value).decode("utf-8", "replace")
        elif isinstance(value, str):
            out[key] = value
    return out


class EventPublisher:
    """Publishes CloudEvents to a durable topic exchange with publisher confirms."""

    def __init__(
        self,
        amqp_url: str,
        exchange: str,
        *,
        service: str,
        publish_timeout: float = 10.0,
        reconnect_interval: float = 2.0,
    ) -> None:
        self._url = amqp_url
        self._exchange_name = exchange
        self._service = service
        self._publish_timeout = publish_timeout
        self._reconnect_interval = reconnect_interval
        self._connection: AbstractRobustConnection | None = None
        self._exchange: AbstractExchange | None = None
        self._lock = asyncio.Lock()

    async def connect(self) -> None:
        """Connect, open a confirming channel and declare the exchange (idempotent).

        Raises when the broker cannot be reached; once connected, the
        connection reconnects by itself after an outage.
        """
        async with self._lock:
            if self._exchange is not None:
                return
            connection = await aio_pika.connect_robust(
                self._url,
                timeout=self._publish_timeout,
                reconnect_interval=self._reconnect_interval,
                client_properties={"connection_name": f"{self._service}-publisher"},
            )
            try:
                channel = await connection.channel(publisher_confirms=True)
                exchange = await channel.declare_exchange(
                    self._exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
                )
            except BaseException:
                await connection.close()
                raise
            self._connection, self._exchange = connection, exchange

    async def close(self) -> None:
        """Close the connection (safe to call twice or before connect)."""
        async with self._lock:
            connection, self._connection, self._exchange = self._connection, None, None
        if connection is not None:
            await connection.close()

    def is_connected(self) -> bool:
        """True while the broker connection is open (false during an outage)."""
        return _connection_is_up(self._connection)

    async def publish(self, event: CloudEvent, *, headers: Mapping[str, str] | None = None) -> None:
        """Publish one event and wait for the broker's confirm.

        ``headers`` (usually W3C trace context) default to the current trace
        context. Connects lazily, so a relay started while the broker is down
        simply retries. Raises :class:`PublishNotConfirmed` (or the connection
        error) when the broker did not take the message.
        """
        await self.connect()
        exchange = self._exchange
        if exchange is None:  # closed concurrently
            raise PublishNotConfirmed("publisher is closed")
        message_headers: dict[str, Any] = (
            dict(headers) if headers is not None else inject_trace_context()
        )
        message = aio_pika.Message(
            body=encode_event(event),
            content_type=CONTENT_TYPE,
            content_encoding="utf-8",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=event.id,
            type=event.type,
            app_id=self._service,
            timestamp=event.time,
            headers=message_headers,
        )
        try:
            # The robust channel waits for a reconnect without limit; bound it so
            # the caller can back off and try again.
            result = await asyncio.wait_for(
                exchange.publish(message, routing_key=event.type, mandatory=False),
                timeout=self._publish_timeout,
            )
        except TimeoutError as exc:
            raise PublishNotConfirmed(f"no confirm within {self._publish_timeout}s") from exc
        except aiormq.exceptions.DeliveryError as exc:
            raise PublishNotConfirmed("broker refused the message") from exc
        if not isinstance(result, aiormq.spec.Basic.Ack):
            raise PublishNotConfirmed(f"unexpected publish result {type(result).__name__}")


class _AlreadyProcessed(Exception):
    """Raised inside the transaction when the event's dedupe record exists."""


class EventConsumer:
    """Consumes one durable quorum queue and runs ``handler`` exactly once per event id."""

    def __init__(
        self,
        *,
        amqp_url: str,
        exchange: str,
        service: str,
        purpose: str,
        bindings: Sequence[str],
        handler: Handler,
        client: AsyncMongoClient[Any],
        db: AsyncDatabase[Any],
        delivery_limit: int = 5,
        prefetch: int = 16,
        queue_prefix: str = "",
        redelivery_delay: float = 0.5,
        reconnect_interval: float = 2.0,
    ) -> None:
        if delivery_limit < 1:
            raise ValueError("delivery_limit must be at least 1")
        if not bindings:
            raise ValueError("a consumer needs at least one binding")
        self._url = amqp_url
        self._exchange_name = exchange
        self._service = service
        self._purpose = purpose
        self.service = service
        self.purpose = purpose
        self._bindings = list(bindings)
        self._handler = handler
        self._client = client
        self._db = db
        self._delivery_limit = delivery_limit
        self._prefetch = prefetch
        self._redelivery_delay = redelivery_delay
        self._reconnect_interval = reconnect_interval
        self.queue_name = f"{queue_prefix}{service}.{purpose}"
        self.dead_letter_queue_name = f"{self.queue_name}.dlq"
        self.dead_letter_exchange_name = f"{exchange}.dlx"
        self._connection: AbstractRobustConnection | None = None
        self._queue: AbstractQueue | None = None
        self._consumer_tag: str | None = None
        self._inflight: set[asyncio.Task[Any]] = set()

    def is_connected(self) -> bool:
        """True while the broker connection is open and the consumer is registered."""
        return self._consumer_tag is not None and _connection_is_up(self._connection)

    async def start(self) -> None:
        """Declare the topology and start consuming."""
        connection = await aio_pika.connect_robust(
            self._url,
            reconnect_interval=self._reconnect_interval,
            client_properties={"connection_name": f"{self._service}-{self._purpose}"},
        )
        try:
            channel: AbstractRobustChannel = await connection.channel()  # type: ignore[assignment]
            await channel.set_qos(prefetch_count=self._prefetch)
            queue = await self._declare(channel)
            self._consumer_tag = await queue.consume(self._on_message, no_ack=False)
        except BaseException:
            await connection.close()
            raise
        self._connection, self._queue = connection, queue
        log.info(
            "consuming",
            extra={"queue": self.queue_name, "bindings": self._bindings},
        )

    async def _declare(self, channel: AbstractRobustChannel) -> AbstractQueue:
        exchange = await channel.declare_exchange(
            self._exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
        )
        # A direct dead-letter exchange shared by all queues; each queue
        # dead-letters with its own name as routing key, so its DLQ gets only
        # its own messages.
        dlx = await channel.declare_exchange(
            self.dead_letter_exchange_name, aio_pika.ExchangeType.DIRECT, durable=True
        )
        dlq = await channel.declare_queue(
            self.dead_letter_queue_name, durable=True, arguments={"x-queue-type": "quorum"}
        )
        await dlq.bind(dlx, routing_key=self.queue_name)
        queue = await channel.declare_queue(
            self.queue_name,
            durable=True,
            arguments={
                "x-queue-type": "quorum",
                # RabbitMQ 3.x quorum queues have no default limit: set it.
                "x-delivery-limit": self._delivery_limit,
                "x-dead-letter-exchange": self.dead_letter_exchange_name,
                "x-dead-letter-routing-key": self.queue_name,
            },
        )
        for key in self._bindings:
            await queue.bind(exchange, routing_key=key)
        return queue

    async def stop(self, grace_seconds: float | None = None) -> None:
        """Stop taking messages, let in-flight handlers finish, then close.

        Handlers still running after ``grace_seconds`` are cancelled; their
        transactions abort and the broker redelivers their messages.
        """
        queue, tag = self._queue, self._consumer_tag
        self._consumer_tag = None
        if queue is not None and tag is not None:
            with contextlib.suppress(Exception):
                await queue.cancel(tag)
        if self._inflight:
            _, pending = await asyncio.wait(set(self._inflight), timeout=grace_seconds)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        connection, self._connection, self._queue = self._connection, None, None
        if connection is not None:
            await connection.close()

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._inflight.add(task)
        try:
            await self._process(message)
        finally:
            if task is not None:
                self._inflight.discard(task)

    def _count(self, outcome: str) -> None:
        EVENTS_HANDLED.labels(service=self._service, handler=self._purpose, outcome=outcome).inc()

    async def _process(self, message: AbstractIncomingMessage) -> None:
        try:
            event = decode_event(message.body)
        except ValueError:
            # Retrying cannot fix a malformed body: dead-letter it at once.
            # The body is not logged: it may hold customer data.
            log.warning(
                "dead-lettering a message that is not a CloudEvent",
                extra={"queue": self.queue_name, "message_id": message.message_id},
            )
            await message.reject(requeue=False)
            self._count("dead_lettered")
            return

        parent = extract_trace_context(_header_text(message.headers or {}))
        with _tracer.start_as_current_span(
            f"{event.type} process",
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "rabbitmq",
                "messaging.operation": "process",
                "messaging.destination.name": self._exchange_name,
                "messaging.rabbitmq.destination.routing_key": event.type,
                "messaging.message.id": event.id,
                "messaging.consumer.group.name": self.queue_name,
            },
        ) as span:
            outage_pause = self._redelivery_delay
            while True:
                try:
                    await run_in_transaction(self._client, lambda s: self._handle_once(event, s))
                except _AlreadyProcessed:
                    await self._settle(message.ack())
                    self._count("duplicate")
                    return
                except asyncio.CancelledError:
                    raise  # shutdown: the broker redelivers the unacked message
                except ConnectionFailure as exc:
                    # The database is unreachable: not the event's fault. Hold the
                    # message unacked (so it is neither lost nor counted against the
                    # delivery limit) and retry until the database is back or we stop.
                    log.warning(
                        "database unreachable while handling an event; retrying",
                        extra={"queue": self.queue_name, "error": type(exc).__name__},
                    )
                    await asyncio.sleep(outage_pause)
                    outage_pause = min(outage_pause * 2, 5.0)
                    continue
                except Exception as exc:
                    span.record_exception(exc)
                    span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                    await self._give_back(message, event, exc)
                    return
                break
            await self._settle(message.ack())
            self._count("handled")

    async def _handle_once(self, event: CloudEvent, session: AsyncClientSession) -> None:
        try:
            await self._db[PROCESSED_EVENTS_COLLECTION].insert_one(
                {
                    "_id": f"{self._purpose}:{event.id}",
                    "purpose": self._purpose,
                    "event_id": event.id,
                    "type": event.type,
                    "source": event.source,
                    "handled_at": datetime.now(UTC),
                },
                session=session,
            )
        except DuplicateKeyError:
            raise _AlreadyProcessed from None
        await self._handler(event, session)

    async def _give_back(
        self, message: AbstractIncomingMessage, event: CloudEvent, exc: Exception
    ) -> None:
        """Requeue a failed event, or dead-letter it on its last allowed delivery."""
        previous = message.headers.get("x-delivery-count") if message.headers else None
        attempts = int(previous) if isinstance(previous, int | str) else 0
        last = attempts >= self._delivery_limit
        log.warning(
            "event handler failed",
            extra={
                "queue": self.queue_name,
                "event_id": event.id,
                "event_type": event.type,
                "error": type(exc).__name__,
                "delivery": attempts + 1,
                "dead_lettered": last,
            },
            exc_info=exc,
        )
        if last:
            # Same outcome as the broker's own delivery limit, but visible in
            # our metrics as a dead letter rather than one more failure.
            await self._settle(message.reject(requeue=False))
            self._count("dead_lettered")
            return
        # A short, growing pause so a dependency blip does not burn every
        # allowed delivery within milliseconds.
        await asyncio.sleep(min(self._redelivery_delay * (2**attempts), 5.0))
        await self._settle(message.nack(requeue=True))
        self._count("failed")

    async def _settle(self, settlement: Awaitable[None]) -> None:
        try:
            await settlement
        except Exception as exc:
            # The channel went away: the broker redelivers the message and the
            # processed_events record turns the repeat into a duplicate.
            log.warning(
                "could not settle a message; it will be redelivered",
                extra={"queue": self.queue_name, "error": type(exc).__name__},
            )
