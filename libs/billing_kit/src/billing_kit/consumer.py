"""RabbitMQ consuming (aio-pika) of CloudEvents, exactly once per event id.

:class:`EventConsumer` owns one durable quorum queue per (service, purpose)
with an explicit delivery limit and a dead-letter queue. Deliveries
that arrive together (up to ``batch_size``, within the prefetch window) are
taken as one batch and handled by :mod:`billing_kit.exactly_once`: one
MongoDB transaction with a ``processed_events`` record per event id, acked
only after the commit (at-least-once delivery, exactly-once effects). A
failed event is requeued with a short pause, or dead-lettered on its last
allowed delivery.

A consumer does not need the broker to exist when the process starts: it
can start in the background and begins consuming when the broker appears.
Every wait on the broker (connect, consumer cancel, close) has a deadline,
so shutdown is bounded during an outage. Retries with backoff (connecting,
riding out a database outage while handling an event) use tenacity; the one
pause that is not a retry loop (before requeueing a failed event, so a blip
does not burn every allowed delivery at once) is a single computed sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Sequence
from typing import Any

import aio_pika
from aio_pika.abc import (
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustChannel,
    AbstractRobustConnection,
)
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential_jitter

from billing_kit.broker_connection import close_within, connect_robust, connection_is_up
from billing_kit.events import CloudEvent, decode_event
from billing_kit.exactly_once import (
    PROCESSED_EVENTS_COLLECTION,
    PROCESSED_EVENTS_INDEXES,
    Delivery,
    ExactlyOnceHandling,
    Handler,
)
from billing_kit.metrics import EVENTS_HANDLED

__all__ = [
    "PROCESSED_EVENTS_COLLECTION",
    "PROCESSED_EVENTS_INDEXES",
    "EventConsumer",
    "Handler",
]

log = logging.getLogger(__name__)


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
        batch_size: int = 64,
        queue_prefix: str = "",
        redelivery_delay: float = 0.5,
        reconnect_interval: float = 1.0,
        connect_timeout: float = 10.0,
        close_timeout: float = 2.0,
    ) -> None:
        if delivery_limit < 1 or batch_size < 1:
            raise ValueError("delivery_limit and batch_size must be at least 1")
        if not bindings:
            raise ValueError("a consumer needs at least one binding")
        self._url = amqp_url
        self._exchange_name = exchange
        self._service = service
        self._purpose = purpose
        self.service = service
        self.purpose = purpose
        self._bindings = list(bindings)
        self._delivery_limit = delivery_limit
        self._prefetch = prefetch
        self._redelivery_delay = redelivery_delay
        self._reconnect_interval = reconnect_interval
        self._connect_timeout = connect_timeout
        self._close_timeout = close_timeout
        self._connecting: asyncio.Task[None] | None = None
        self.queue_name = f"{queue_prefix}{service}.{purpose}"
        self.dead_letter_queue_name = f"{self.queue_name}.dlq"
        self.dead_letter_exchange_name = f"{exchange}.dlx"
        self._connection: AbstractRobustConnection | None = None
        self._queue: AbstractQueue | None = None
        self._consumer_tag: str | None = None
        self._inflight: set[asyncio.Task[Any]] = set()
        self._batch_size = batch_size
        self._waiting: list[Delivery] = []  # decoded, not yet taken into a batch
        # One batch transaction at a time, in delivery order. Measured with a
        # backlog: two at a time made the batches half as big and the consumer
        # slower (~280/s against ~380/s on SecantusDB).
        self._batch_lock = asyncio.Lock()
        self._handling = ExactlyOnceHandling(
            handler=handler,
            client=client,
            db=db,
            purpose=purpose,
            queue_name=self.queue_name,
            exchange_name=exchange,
            redelivery_delay=redelivery_delay,
            settle=self._settle,
            count=self._count,
        )

    def is_connected(self) -> bool:
        """True while the broker connection is open and the consumer is registered."""
        return self._consumer_tag is not None and connection_is_up(self._connection)

    async def start(self) -> None:
        """Declare the topology and start consuming; raises when the broker is unreachable."""
        connection = await connect_robust(
            self._url,
            connect_timeout=self._connect_timeout,
            reconnect_interval=self._reconnect_interval,
            name=f"{self._service}-{self._purpose}",
            close_timeout=self._close_timeout,
        )
        try:
            channel: AbstractRobustChannel = await asyncio.wait_for(
                connection.channel(),  # type: ignore[arg-type]
                self._connect_timeout,
            )
            await channel.set_qos(prefetch_count=self._prefetch)
            queue = await asyncio.wait_for(self._declare(channel), self._connect_timeout)
            self._consumer_tag = await queue.consume(self._on_message, no_ack=False)
        except BaseException:
            await close_within(connection, self._close_timeout)
            raise
        self._connection, self._queue = connection, queue
        log.info(
            "consuming",
            extra={"queue": self.queue_name, "bindings": self._bindings},
        )

    async def start_or_keep_trying(self, first_attempt_timeout: float = 5.0) -> None:
        """Start now if the broker answers within ``first_attempt_timeout``, else in the background.

        With a healthy broker the queue exists (and catches events) before the
        service reports ready, as with :meth:`start`; with the broker down the
        service starts anyway and consumes once it is back.
        """
        try:
            await asyncio.wait_for(self.start(), first_attempt_timeout)
        except Exception as exc:
            log.warning(
                "broker unreachable at start; consuming once it is back",
                extra={"queue": self.queue_name, "error": type(exc).__name__},
            )
            self.start_in_background()

    def start_in_background(self) -> None:
        """Connect and start consuming as soon as the broker can be reached.

        A service must not need the broker to start (it serves reads and
        writes through the outbox without it). This keeps trying, with a
        capped exponential pause, until :meth:`start` succeeds or
        :meth:`stop` is called; after that the robust connection restores
        the queue and the consumer by itself after each outage.
        """
        if self._connecting is None or self._connecting.done():
            self._connecting = asyncio.create_task(
                self._connect_until_started(), name=f"{self.queue_name}-connect"
            )

    async def _connect_until_started(self) -> None:
        # tenacity rather than a hand-written loop: capped exponential wait with
        # jitter, and cancellation (stop) passes straight through.
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(Exception),
            wait=wait_exponential_jitter(multiplier=0.2, max=self._reconnect_interval, jitter=0.2),
            before_sleep=self._log_connect_failure,
        ):
            with attempt:
                await self.start()

    def _log_connect_failure(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        log.warning(
            "broker unreachable; consumer will start when it is back",
            extra={
                "queue": self.queue_name,
                "error": type(error).__name__,
                "attempt": state.attempt_number,
            },
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
        transactions abort and the broker redelivers their messages. Every
        step is bounded: cancelling the consumer on a channel that is
        reconnecting (a broker outage) would otherwise wait forever.
        """
        connecting, self._connecting = self._connecting, None
        if connecting is not None and not connecting.done():
            connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await connecting
        queue, tag = self._queue, self._consumer_tag
        self._consumer_tag = None
        if queue is not None and tag is not None:
            try:
                await asyncio.wait_for(queue.cancel(tag), self._close_timeout)
            except Exception as exc:
                # Closing the connection below stops the deliveries as well.
                log.info(
                    "could not cancel the consumer; closing its connection",
                    extra={"queue": self.queue_name, "error": type(exc).__name__},
                )
        if self._inflight:
            _, pending = await asyncio.wait(set(self._inflight), timeout=grace_seconds)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=self._close_timeout)
        # Deliveries of cancelled tasks: unacked, the broker redelivers them.
        self._waiting.clear()
        connection, self._connection, self._queue = self._connection, None, None
        if connection is not None:
            await close_within(connection, self._close_timeout)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._inflight.add(task)
        try:
            event = await self._decode(message)
            if event is not None:
                await self._join_batch(Delivery(message, event))
        finally:
            if task is not None:
                self._inflight.discard(task)

    def _count(self, outcome: str) -> None:
        EVENTS_HANDLED.labels(service=self._service, handler=self._purpose, outcome=outcome).inc()

    async def _decode(self, message: AbstractIncomingMessage) -> CloudEvent | None:
        try:
            return decode_event(message.body)
        except ValueError:
            # Retrying cannot fix a malformed body: dead-letter it at once.
            # The body is not logged: it may hold customer data.
            log.warning(
                "dead-lettering a message that is not a CloudEvent",
                extra={"queue": self.queue_name, "message_id": message.message_id},
            )
            await message.reject(requeue=False)
            self._count("dead_lettered")
            return None

    async def _join_batch(self, delivery: Delivery) -> None:
        """Wait for ``delivery`` to be handled, in a batch with whatever arrived meanwhile.

        Every delivery runs in its own task (aio-pika); while one of them
        holds the lock and handles a batch, the others queue up, and the next
        holder takes them all (oldest first, up to ``batch_size``). A task
        whose delivery another task took just returns: that task settles it.
        """
        self._waiting.append(delivery)
        if not self._batch_lock.locked():
            # One turn of the event loop lets the deliveries that came in with
            # this one (a task each) join its batch instead of waiting for the next.
            await asyncio.sleep(0)
        while not delivery.taken:
            async with self._batch_lock:
                if delivery.taken:
                    return
                batch = self._waiting[: self._batch_size]
                del self._waiting[: len(batch)]
                for taken in batch:
                    taken.taken = True
                failures = await self._handling.handle(batch)
            # Outside the lock: the pause before a requeue holds up no other event.
            for failed, exc in failures:
                await self._give_back(failed.message, failed.event, exc)

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
