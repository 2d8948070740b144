"""Producer → outbox → relay → RabbitMQ → consumer, all real.

The effect of a handled event is one ``$inc`` in the consumer's transaction,
so "exactly once" is checked as "the counter is 1".
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import aio_pika
import pytest
from billing_kit.broker import EventPublisher
from billing_kit.consumer import PROCESSED_EVENTS_INDEXES, EventConsumer, Handler
from billing_kit.events import CloudEvent, decode_event, new_event
from billing_kit.mongo import ensure_indexes, run_in_transaction
from billing_kit.outbox import OUTBOX_COLLECTION, add_to_outbox
from billing_kit.outbox_relay import OutboxRelay
from billing_kit.testing import (
    BrokerNamespace,
    TcpProxy,
    eventually,
    free_port,
    take_queue_messages,
    tap_exchange,
    unique_name,
    with_port,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client import REGISTRY
from pydantic import BaseModel
from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from yarl import URL

pytestmark = pytest.mark.integration

FAST_RELAY = {"poll_seconds": 0.1, "max_backoff_seconds": 0.3}


class Thing(BaseModel):
    key: str
    poison: bool = False


def thing_event(key: str, *, poison: bool = False) -> CloudEvent:
    return new_event("thing.created", "kit-tests", Thing(key=key, poison=poison))


async def create_thing(
    client: AsyncMongoClient[Any], db: AsyncDatabase[Any], event: CloudEvent
) -> None:
    """What a producer does: the state change and its event in one transaction."""

    async def change(session: AsyncClientSession) -> None:
        await db.things.insert_one({"_id": event.data["key"]}, session=session)
        await add_to_outbox(db, event, session=session)

    await run_in_transaction(client, change)


def counting_handler(db: AsyncDatabase[Any]) -> Handler:
    """Effect = one increment per event key; "poison" events always fail."""

    async def handle(event: CloudEvent, session: AsyncClientSession) -> None:
        if event.data.get("poison"):
            # Outside the transaction on purpose: it counts attempts, which abort.
            await db.poison_attempts.update_one({"_id": event.id}, {"$inc": {"n": 1}}, upsert=True)
            raise RuntimeError("this event always fails")
        await db.effects.update_one(
            {"_id": event.data["key"]}, {"$inc": {"n": 1}}, upsert=True, session=session
        )

    return handle


async def all_arrived_before_a_marker(
    client: AsyncMongoClient[Any], db: AsyncDatabase[Any]
) -> None:
    """Write one more event and wait until it is handled, instead of sleeping.

    The relay publishes in creation order and one consumer takes its queue in
    order, so a duplicate of anything written earlier (a republished or
    redelivered event) reaches the consumer before this marker does.
    """
    marker = thing_event(unique_name("marker"))
    await create_thing(client, db, marker)
    await eventually(lambda: effect(db, marker.data["key"]), within=5, message="marker not handled")


async def effect(db: AsyncDatabase[Any], key: str) -> int:
    doc = await db.effects.find_one({"_id": key})
    return int(doc["n"]) if doc else 0


def handled(service: str, purpose: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "events_handled_total", {"service": service, "handler": purpose, "outcome": outcome}
    )
    return value or 0.0


@asynccontextmanager
async def running_consumer(
    ns: BrokerNamespace,
    client: AsyncMongoClient[Any],
    db: AsyncDatabase[Any],
    *,
    service: str,
    handler: Handler | None = None,
    delivery_limit: int = 5,
) -> AsyncIterator[EventConsumer]:
    await ensure_indexes(db, PROCESSED_EVENTS_INDEXES)
    consumer = EventConsumer(
        amqp_url=ns.amqp_url,
        exchange=ns.exchange,
        service=service,
        purpose="things",
        bindings=["thing.*"],
        handler=handler or counting_handler(db),
        client=client,
        db=db,
        delivery_limit=delivery_limit,
        queue_prefix=ns.queue_prefix,
        redelivery_delay=0.01,
        reconnect_interval=0.2,
    )
    await consumer.start()
    try:
        yield consumer
    finally:
        await consumer.stop(grace_seconds=5)


@asynccontextmanager
async def running_relay(
    db: AsyncDatabase[Any], amqp_url: str, exchange: str, *, service: str
) -> AsyncIterator[tuple[OutboxRelay, EventPublisher]]:
    publisher = EventPublisher(
        amqp_url, exchange, service=service, publish_timeout=1.0, reconnect_interval=0.2
    )
    relay = OutboxRelay(db, publisher, service=service, **FAST_RELAY)
    await relay.start()
    try:
        yield relay, publisher
    finally:
        await relay.stop()
        await publisher.close()


async def test_relay_and_consumer_handle_each_event_once(
    mongo_client: AsyncMongoClient[Any],
    db: AsyncDatabase[Any],
    ns: BrokerNamespace,
    spans: InMemorySpanExporter,
) -> None:
    service = unique_name("svc")
    async with (
        running_consumer(ns, mongo_client, db, service=service) as consumer,
        running_relay(db, ns.amqp_url, ns.exchange, service=service),
    ):
        assert consumer.is_connected()
        keys = [f"k{i}" for i in range(10)]
        for key in keys:
            await create_thing(mongo_client, db, thing_event(key))
        for key in keys:
            await eventually(lambda key=key: effect(db, key), within=5)
        await all_arrived_before_a_marker(mongo_client, db)
    # Checked once the consumer has stopped: its in-flight handlers have finished.
    assert [await effect(db, key) for key in keys] == [1] * 10
    assert handled(service, "things", "handled") == 11  # the ten and the marker
    assert await db.processed_events.count_documents({}) == 11

    # The consumer span is a child of the relay's producer span.
    finished = spans.get_finished_spans()
    producer_ids = {s.context.span_id for s in finished if s.kind is SpanKind.PRODUCER}
    consumers = [s for s in finished if s.kind is SpanKind.CONSUMER]
    assert len(consumers) == 11
    assert all(s.parent is not None and s.parent.span_id in producer_ids for s in consumers)


async def test_event_written_during_broker_outage_arrives_once_after_recovery(
    mongo_client: AsyncMongoClient[Any], db: AsyncDatabase[Any], ns: BrokerNamespace
) -> None:
    """THE acceptance test: the relay's broker link is cut while a state change commits."""
    service = unique_name("svc")
    broker = URL(ns.amqp_url)
    async with AsyncExitStack() as stack:
        proxy = await stack.enter_async_context(
            TcpProxy(free_port(), broker.host or "127.0.0.1", broker.port or 5672)
        )
        await stack.enter_async_context(running_consumer(ns, mongo_client, db, service=service))
        relay, publisher = await stack.enter_async_context(
            running_relay(
                db, with_port(ns.amqp_url, proxy.listen_port), ns.exchange, service=service
            )
        )
        await create_thing(mongo_client, db, thing_event("before"))
        await eventually(lambda: effect(db, "before"), within=5)
        assert publisher.is_connected()

        await proxy.cut()
        await eventually(lambda: not publisher.is_connected(), within=5)
        event = thing_event("during")
        await create_thing(mongo_client, db, event)  # the producer does not notice the outage

        async def failed_twice() -> dict[str, Any] | None:
            return await db[OUTBOX_COLLECTION].find_one(
                {"event_id": event.id, "attempts": {"$gte": 2}}
            )

        stored = await eventually(failed_twice, within=5, message="relay never retried")
        assert stored["sent_at"] is None
        assert await effect(db, "during") == 0
        assert not relay.healthy

        await proxy.restore()
        await eventually(lambda: effect(db, "during"), within=10)
        await all_arrived_before_a_marker(mongo_client, db)
        stored = await db[OUTBOX_COLLECTION].find_one({"event_id": event.id})
        assert stored is not None and stored["sent_at"] is not None
        assert relay.healthy
    # Checked once the consumer has stopped: its in-flight handlers have finished.
    assert await effect(db, "during") == 1
    assert await effect(db, "before") == 1


async def test_malformed_message_is_dead_lettered_and_good_ones_still_flow(
    mongo_client: AsyncMongoClient[Any], db: AsyncDatabase[Any], ns: BrokerNamespace
) -> None:
    service = unique_name("svc")
    async with running_consumer(ns, mongo_client, db, service=service) as consumer:
        connection = await aio_pika.connect(ns.amqp_url)
        async with connection:
            channel = await connection.channel()
            exchange = await channel.get_exchange(ns.exchange)
            await exchange.publish(aio_pika.Message(b"this is not json"), routing_key="thing.x")
            await exchange.publish(aio_pika.Message(b'{"type": "thing.x"}'), routing_key="thing.x")
        publisher = EventPublisher(ns.amqp_url, ns.exchange, service=service)
        try:
            await publisher.publish(thing_event("good"))
        finally:
            await publisher.close()
        await eventually(lambda: effect(db, "good"), within=5)
        await eventually(lambda: handled(service, "things", "dead_lettered") == 2, within=5)
        dead = await take_queue_messages(ns.amqp_url, consumer.dead_letter_queue_name)
    assert sorted(m.body for m in dead) == sorted([b"this is not json", b'{"type": "thing.x"}'])
    assert await db.processed_events.count_documents({}) == 1


async def test_event_that_always_fails_is_dead_lettered_after_the_delivery_limit(
    mongo_client: AsyncMongoClient[Any], db: AsyncDatabase[Any], ns: BrokerNamespace
) -> None:
    service = unique_name("svc")
    poison = thing_event("bad", poison=True)
    async with running_consumer(
        ns, mongo_client, db, service=service, delivery_limit=2
    ) as consumer:
        publisher = EventPublisher(ns.amqp_url, ns.exchange, service=service)
        try:
            await publisher.publish(poison)
            for i in range(3):
                await publisher.publish(thing_event(f"ok{i}"))
        finally:
            await publisher.close()
        for i in range(3):
            await eventually(lambda i=i: effect(db, f"ok{i}"), within=5)
        await eventually(lambda: handled(service, "things", "dead_lettered") == 1, within=5)
        dead = await take_queue_messages(ns.amqp_url, consumer.dead_letter_queue_name)

    assert [decode_event(m.body).id for m in dead] == [poison.id]
    attempts = await db.poison_attempts.find_one({"_id": poison.id})
    # One delivery plus delivery_limit redeliveries, then the dead-letter queue.
    assert attempts is not None and attempts["n"] == 3
    assert handled(service, "things", "failed") == 2
    assert await effect(db, "bad") == 0
    # The failed attempts left no dedupe record behind (their transactions aborted).
    assert await db.processed_events.count_documents({"event_id": poison.id}) == 0


async def test_same_event_delivered_twice_has_one_effect(
    mongo_client: AsyncMongoClient[Any], db: AsyncDatabase[Any], ns: BrokerNamespace
) -> None:
    service = unique_name("svc")
    event = thing_event("twice")
    async with running_consumer(ns, mongo_client, db, service=service):
        publisher = EventPublisher(ns.amqp_url, ns.exchange, service=service)
        try:
            await asyncio.gather(publisher.publish(event), publisher.publish(event))
            await publisher.publish(event)
        finally:
            await publisher.close()
        await eventually(
            lambda: (
                handled(service, "things", "handled") + handled(service, "things", "duplicate") == 3
            ),
            within=5,
        )
    assert await effect(db, "twice") == 1
    assert handled(service, "things", "handled") == 1
    assert handled(service, "things", "duplicate") == 2


async def test_two_relays_on_one_outbox_publish_each_event_once(
    mongo_client: AsyncMongoClient[Any], db: AsyncDatabase[Any], ns: BrokerNamespace
) -> None:
    service = unique_name("svc")
    events = [thing_event(f"r{i}") for i in range(40)]
    async with (
        tap_exchange(ns.amqp_url, ns.exchange) as seen,
        running_consumer(ns, mongo_client, db, service=service),
    ):
        # Written before the relays start, so both race for the same backlog.
        for event in events:
            await create_thing(mongo_client, db, event)
        async with (
            running_relay(db, ns.amqp_url, ns.exchange, service=service),
            running_relay(db, ns.amqp_url, ns.exchange, service=service),
        ):
            await eventually(lambda: len(seen.messages) >= len(events), within=10)
        # Both relays have stopped and closed their connections, so whatever
        # they published is already queued for the tap: a marker published now
        # arrives after all of it.
        marker = thing_event(unique_name("marker"))
        publisher = EventPublisher(ns.amqp_url, ns.exchange, service=service)
        try:
            await publisher.publish(marker)
        finally:
            await publisher.close()
        await eventually(lambda: marker.id in seen.message_ids, within=5)
        for event in events:
            await eventually(lambda key=event.data["key"]: effect(db, key), within=5)
    relayed = [m for m in seen.message_ids if m != marker.id]
    assert sorted(relayed) == sorted(e.id for e in events)  # no event twice
    assert [await effect(db, e.data["key"]) for e in events] == [1] * len(events)
    assert await db[OUTBOX_COLLECTION].count_documents({"sent_at": None}) == 0


async def test_stop_lets_an_in_flight_handler_finish(
    mongo_client: AsyncMongoClient[Any], db: AsyncDatabase[Any], ns: BrokerNamespace
) -> None:
    service = unique_name("svc")
    started = asyncio.Event()

    async def slow(event: CloudEvent, session: AsyncClientSession) -> None:
        started.set()
        await asyncio.sleep(0.5)  # the scenario: a handler still working when stop is called
        await db.effects.insert_one({"_id": event.data["key"], "n": 1}, session=session)

    consumer_cm = running_consumer(ns, mongo_client, db, service=service, handler=slow)
    consumer = await consumer_cm.__aenter__()
    publisher = EventPublisher(ns.amqp_url, ns.exchange, service=service)
    try:
        await publisher.publish(thing_event("slow"))
    finally:
        await publisher.close()
    await asyncio.wait_for(started.wait(), timeout=5)
    await consumer_cm.__aexit__(None, None, None)
    assert not consumer.is_connected()
    assert await effect(db, "slow") == 1
    assert handled(service, "things", "handled") == 1


async def test_relay_wakes_on_a_write_without_waiting_for_the_poll(
    mongo_client: AsyncMongoClient[Any], db: AsyncDatabase[Any], ns: BrokerNamespace
) -> None:
    """The change stream wakes the relay; the 30 s poll would be far too late."""
    service = unique_name("svc")
    publisher = EventPublisher(ns.amqp_url, ns.exchange, service=service)
    relay = OutboxRelay(db, publisher, service=service, poll_seconds=30)
    first = thing_event("first")
    await create_thing(mongo_client, db, first)
    async with tap_exchange(ns.amqp_url, ns.exchange) as seen:
        await relay.start()
        try:
            # Its first pass has run once the older event is out; from then on
            # only a wake-up, not the 30 s poll, can publish in time.
            await eventually(lambda: seen.message_ids == [first.id], within=3)
            event = thing_event("prompt")
            await create_thing(mongo_client, db, event)
            await eventually(lambda: seen.message_ids == [first.id, event.id], within=3)
        finally:
            await relay.stop()
            await publisher.close()


async def test_events_wait_out_a_database_outage_instead_of_being_dead_lettered(
    ns: BrokerNamespace, mongo_url: str, db: AsyncDatabase[Any]
) -> None:
    service = unique_name("dbdown")
    async with AsyncExitStack() as stack:
        proxy = await stack.enter_async_context(TcpProxy(free_port(), *_host_port(mongo_url)))
        # The consumer reaches the database only through the proxy.
        client: AsyncMongoClient[Any] = AsyncMongoClient(
            with_port(mongo_url, proxy.listen_port),
            directConnection=True,
            tz_aware=True,
            serverSelectionTimeoutMS=300,
        )
        stack.push_async_callback(client.close)
        proxied_db = client[db.name]
        consumer = await stack.enter_async_context(
            running_consumer(ns, client, proxied_db, service=service, delivery_limit=2)
        )
        publisher = EventPublisher(ns.amqp_url, ns.exchange, service=service)
        await publisher.connect()
        stack.push_async_callback(publisher.close)

        await proxy.cut()
        keys = [unique_name("k") for _ in range(3)]
        for key in keys:
            await publisher.publish(thing_event(key))
        # The outage itself (the scenario, not a wait for something): far longer
        # than two redeliveries take, so had it been treated as a handler
        # failure, every event would be dead-lettered by now.
        await asyncio.sleep(3)
        await proxy.restore()

        for key in keys:
            await eventually(lambda k=key: _is_one(db, k), within=20, message=f"effect of {key}")
        assert await take_queue_messages(ns.amqp_url, consumer.dead_letter_queue_name) == []


async def _is_one(db: AsyncDatabase[Any], key: str) -> bool:
    return await effect(db, key) == 1


def _host_port(url: str) -> tuple[str, int]:
    parsed = URL(url)
    return parsed.host or "127.0.0.1", parsed.port or 27017


async def test_a_backlog_is_handled_in_batches_and_a_poison_event_in_one_fails_alone(
    mongo_client: AsyncMongoClient[Any], db: AsyncDatabase[Any], ns: BrokerNamespace
) -> None:
    """Events waiting together share a transaction; the one that fails costs no one else."""
    service = unique_name("svc")
    transactions: dict[int, int] = {}  # transaction (session) -> events it handled
    counting = counting_handler(db)

    async def handle(event: CloudEvent, session: AsyncClientSession) -> None:
        await counting(event, session)
        transactions[id(session)] = transactions.get(id(session), 0) + 1

    async with running_consumer(ns, mongo_client, db, service=service, delivery_limit=2):
        pass  # declares the queue, so the backlog below waits in it
    events = [thing_event(f"batch{i}", poison=i == 7) for i in range(30)]
    publisher = EventPublisher(ns.amqp_url, ns.exchange, service=service)
    try:
        outcomes = await publisher.publish_many([(event, None) for event in events])
        assert outcomes == [None] * len(events)
    finally:
        await publisher.close()
    async with running_consumer(
        ns, mongo_client, db, service=service, handler=handle, delivery_limit=2
    ):
        await eventually(lambda: handled(service, "things", "dead_lettered") == 1, within=10)
        await eventually(lambda: handled(service, "things", "handled") == 29, within=10)

    for i in range(30):
        assert await effect(db, f"batch{i}") == (0 if i == 7 else 1)
    # Its batch's failure was its first attempt, not an extra one: 1 + delivery_limit.
    attempts = await db.poison_attempts.find_one({"_id": events[7].id})
    assert attempts is not None and attempts["n"] == 3
    assert await db.processed_events.count_documents({"event_id": events[7].id}) == 0
    assert max(transactions.values()) > 1  # the backlog did not cost one transaction per event
    assert sum(transactions.values()) >= 29
