"""An isolated corner of the shared RabbitMQ, and taps to see what was published there."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

log = logging.getLogger(__name__)

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


def amqp_url_from_env() -> str:
    """``AMQP_URL`` from the environment, or the local RabbitMQ."""
    return os.environ.get("AMQP_URL", DEFAULT_AMQP_URL)


@dataclass
class BrokerNamespace:
    """A private corner of the shared RabbitMQ: one exchange name and one queue prefix."""

    amqp_url: str
    exchange: str
    queue_prefix: str
    extra_queues: set[str] = field(default_factory=set)

    def queue(self, service: str, purpose: str) -> str:
        """The queue :class:`~billing_kit.consumer.EventConsumer` uses for (service, purpose)."""
        return f"{self.queue_prefix}{service}.{purpose}"

    def dead_letter_queue(self, service: str, purpose: str) -> str:
        """The dead-letter queue of (service, purpose)."""
        return f"{self.queue(service, purpose)}.dlq"

    def track_queue(self, name: str) -> str:
        """Remember a queue created outside the prefix so cleanup deletes it too."""
        self.extra_queues.add(name)
        return name


async def _list_queue_names() -> list[str]:
    """Queue names via ``rabbitmqctl`` when it is usable here (best effort)."""
    ctl = shutil.which("rabbitmqctl")
    if ctl is None:
        return []
    try:
        proc = await asyncio.create_subprocess_exec(
            ctl,
            "-q",
            "list_queues",
            "name",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=20)
    except (OSError, TimeoutError):
        return []
    if proc.returncode != 0:
        return []
    return [line.strip() for line in out.decode(errors="replace").splitlines() if line.strip()]


async def delete_broker_objects(amqp_url: str, queues: set[str], exchanges: set[str]) -> None:
    """Delete queues and exchanges, ignoring ones that do not exist."""
    connection = await aio_pika.connect(amqp_url)
    try:
        for name in sorted(queues):
            # A failed delete closes the channel, so each gets its own.
            channel = await connection.channel()
            with contextlib.suppress(Exception):
                await channel.queue_delete(name)
            with contextlib.suppress(Exception):
                await channel.close()
        for name in sorted(exchanges):
            channel = await connection.channel()
            with contextlib.suppress(Exception):
                await channel.exchange_delete(name)
            with contextlib.suppress(Exception):
                await channel.close()
    finally:
        await connection.close()


@contextlib.asynccontextmanager
async def broker_namespace(
    amqp_url: str | None = None, *, known_consumers: list[tuple[str, str]] | None = None
) -> AsyncIterator[BrokerNamespace]:
    """Yield a unique exchange + queue prefix; delete its queues and exchanges afterwards.

    Queues are found by prefix through ``rabbitmqctl`` when available; queues of
    ``known_consumers`` ((service, purpose) pairs) and tracked queues are
    deleted in any case.
    """
    url = amqp_url or amqp_url_from_env()
    token = uuid.uuid4().hex[:12]
    namespace = BrokerNamespace(
        amqp_url=url, exchange=f"test.{token}.events", queue_prefix=f"test.{token}."
    )
    try:
        yield namespace
    finally:
        queues = set(namespace.extra_queues)
        for service, purpose in known_consumers or []:
            queues |= {
                namespace.queue(service, purpose),
                namespace.dead_letter_queue(service, purpose),
            }
        queues |= {q for q in await _list_queue_names() if q.startswith(namespace.queue_prefix)}
        exchanges = {namespace.exchange, f"{namespace.exchange}.dlx"}
        try:
            await delete_broker_objects(url, queues, exchanges)
        except Exception as exc:  # cleanup must not hide the test's own result
            log.warning("broker namespace cleanup failed: %s", type(exc).__name__)


class MessageTap:
    """Messages seen by a private queue bound to an exchange (see :func:`tap_exchange`)."""

    def __init__(self) -> None:
        self.messages: list[AbstractIncomingMessage] = []

    @property
    def message_ids(self) -> list[str | None]:
        """``message_id`` of every message received, in arrival order."""
        return [m.message_id for m in self.messages]


@contextlib.asynccontextmanager
async def tap_exchange(
    amqp_url: str, exchange: str, binding: str = "#"
) -> AsyncIterator[MessageTap]:
    """Record every message published to ``exchange`` (topic) while the block runs."""
    recorder = MessageTap()
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        ex = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(ex, routing_key=binding)

        async def record(message: AbstractIncomingMessage) -> None:
            recorder.messages.append(message)
            await message.ack()

        await queue.consume(record)
        yield recorder
    finally:
        await connection.close()


async def take_queue_messages(
    amqp_url: str, queue_name: str, *, wait_seconds: float = 0.5
) -> list[AbstractIncomingMessage]:
    """Take (and ack) every message currently in an existing queue."""
    taken: list[AbstractIncomingMessage] = []
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(queue_name, passive=True)
        while True:
            message = await queue.get(fail=False, timeout=wait_seconds)
            if message is None:
                return taken
            await message.ack()
            taken.append(message)
    finally:
        await connection.close()
