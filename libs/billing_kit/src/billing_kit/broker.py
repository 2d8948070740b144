"""RabbitMQ publishing (aio-pika) for CloudEvents.

:class:`EventPublisher` publishes to one durable topic exchange with
publisher confirms; a publish that the broker does not confirm raises, so
the outbox relay keeps the event and retries. It does not need the broker to
exist when the process starts: it connects lazily, and every wait on the
broker (connect, publish confirm, close) has a deadline, so shutdown is
bounded during an outage.

Consuming lives in :mod:`billing_kit.consumer`; its public names are
re-exported here so that existing ``billing_kit.broker`` imports keep working.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import aio_pika
import aiormq
from aio_pika.abc import AbstractExchange, AbstractRobustConnection

from billing_kit.broker_connection import close_within, connect_robust, connection_is_up
from billing_kit.consumer import (
    PROCESSED_EVENTS_COLLECTION,
    PROCESSED_EVENTS_INDEXES,
    EventConsumer,
    Handler,
)
from billing_kit.events import CloudEvent, encode_event
from billing_kit.telemetry import inject_trace_context

__all__ = [
    "CONTENT_TYPE",
    "PROCESSED_EVENTS_COLLECTION",
    "PROCESSED_EVENTS_INDEXES",
    "EventConsumer",
    "EventPublisher",
    "Handler",
    "PublishNotConfirmed",
]

CONTENT_TYPE = "application/cloudevents+json"


class PublishNotConfirmed(RuntimeError):
    """The broker did not confirm a published message (nack, timeout or lost connection)."""


class EventPublisher:
    """Publishes CloudEvents to a durable topic exchange with publisher confirms.

    Nothing here waits without a bound: connecting, publishing and closing
    each have a deadline, so a caller (the outbox relay, a shutdown) always
    gets control back during a broker outage.
    """

    def __init__(
        self,
        amqp_url: str,
        exchange: str,
        *,
        service: str,
        publish_timeout: float = 10.0,
        reconnect_interval: float = 1.0,
        close_timeout: float = 2.0,
    ) -> None:
        self._url = amqp_url
        self._exchange_name = exchange
        self._service = service
        self._publish_timeout = publish_timeout
        self._reconnect_interval = reconnect_interval
        self._close_timeout = close_timeout
        self._connection: AbstractRobustConnection | None = None
        self._exchange: AbstractExchange | None = None
        self._lock = asyncio.Lock()
        self._on_connected: list[Callable[[], None]] = []

    def on_connected(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` each time the broker connection is (re)established.

        The outbox relay uses it to resume at once when the broker returns,
        instead of waiting out its own retry pause.
        """
        self._on_connected.append(callback)

    def _notify_connected(self, *_: object) -> None:
        for callback in self._on_connected:
            callback()

    async def connect(self) -> None:
        """Connect, open a confirming channel and declare the exchange (idempotent).

        Raises when the broker cannot be reached within ``publish_timeout``;
        once connected, the connection reconnects by itself after an outage.
        """
        async with self._lock:
            if self._exchange is not None:
                return
            connection = await connect_robust(
                self._url,
                connect_timeout=self._publish_timeout,
                reconnect_interval=self._reconnect_interval,
                name=f"{self._service}-publisher",
                close_timeout=self._close_timeout,
            )
            try:
                channel = await asyncio.wait_for(
                    connection.channel(publisher_confirms=True), self._publish_timeout
                )
                exchange = await asyncio.wait_for(
                    channel.declare_exchange(
                        self._exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
                    ),
                    self._publish_timeout,
                )
            except BaseException:
                await close_within(connection, self._close_timeout)
                raise
            connection.reconnect_callbacks.add(self._notify_connected)
            self._connection, self._exchange = connection, exchange
        self._notify_connected()

    async def close(self) -> None:
        """Close the connection within ``close_timeout`` (safe to call twice or before connect)."""
        async with self._lock:
            connection, self._connection, self._exchange = self._connection, None, None
        if connection is not None:
            await close_within(connection, self._close_timeout)

    def is_connected(self) -> bool:
        """True while the broker connection is open (false during an outage)."""
        return connection_is_up(self._connection)

    async def publish(self, event: CloudEvent, *, headers: Mapping[str, str] | None = None) -> None:
        """Publish one event and wait for the broker's confirm.

        ``headers`` (usually W3C trace context) default to the current trace
        context. Connects lazily, so a relay started while the broker is down
        simply retries. Raises :class:`PublishNotConfirmed` (or the connection
        error) when the broker did not take the message.
        """
        outcome = (await self.publish_many([(event, headers)]))[0]
        if outcome is not None:
            raise outcome

    async def publish_many(
        self, events: Sequence[tuple[CloudEvent, Mapping[str, str] | None]]
    ) -> list[Exception | None]:
        """Publish several events at once and wait for all their confirms.

        The messages go out back to back on one confirming channel (in the
        given order) and the confirms are awaited together, so a batch costs
        about one round trip instead of one per event. Returns, per event,
        ``None`` when the broker confirmed it or the error when it did not.
        Raises only when there is no connection at all.
        """
        await self.connect()
        exchange = self._exchange
        if exchange is None:  # closed concurrently
            raise PublishNotConfirmed("publisher is closed")
        outcomes = await asyncio.gather(
            *(self._publish_one(exchange, event, headers) for event, headers in events),
            return_exceptions=True,
        )
        results: list[Exception | None] = []
        for outcome in outcomes:
            if isinstance(outcome, Exception):
                results.append(outcome)
            elif isinstance(outcome, BaseException):
                raise outcome  # cancellation: the caller is stopping
            else:
                results.append(None)
        return results

    async def _publish_one(
        self, exchange: AbstractExchange, event: CloudEvent, headers: Mapping[str, str] | None
    ) -> None:
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
