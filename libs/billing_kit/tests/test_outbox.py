"""Outbox writes and the relay, against real SecantusDB/MongoDB and RabbitMQ."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from billing_kit.broker import EventPublisher
from billing_kit.clock import FrozenClock
from billing_kit.events import CloudEvent, decode_event, new_event
from billing_kit.mongo import run_in_transaction
from billing_kit.outbox import OUTBOX_COLLECTION, add_to_outbox, upgrade_outbox
from billing_kit.outbox_relay import LEASE_COLLECTION, OutboxRelay
from billing_kit.testing import (
    BrokerNamespace,
    eventually,
    free_port,
    tap_exchange,
    unique_name,
    with_port,
)
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client import REGISTRY
from pydantic import BaseModel
from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

pytestmark = pytest.mark.integration


class Renamed(BaseModel):
    customer_id: str


def renamed(customer_id: str) -> CloudEvent:
    return new_event("customer.updated", "kit-tests", Renamed(customer_id=customer_id))


async def rename_customer(
    client: AsyncMongoClient[Any], db: AsyncDatabase[Any], event: CloudEvent, *, fail: bool = False
) -> None:
    async def change(session: AsyncClientSession) -> None:
        await db.customers.update_one(
            {"_id": event.data["customer_id"]},
            {"$set": {"name": "New"}},
            upsert=True,
            session=session,
        )
        await add_to_outbox(db, event, session=session)
        if fail:
            raise RuntimeError("a later step of the use case failed")

    await run_in_transaction(client, change)


def gauge(name: str, service: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"service": service})


async def test_event_and_state_change_commit_together(
    mongo_client: AsyncMongoClient[Any], db: AsyncDatabase[Any]
) -> None:
    event = renamed("cus_1")
    await rename_customer(mongo_client, db, event)
    assert await db.customers.count_documents({"_id": "cus_1"}) == 1
    stored = await db[OUTBOX_COLLECTION].find_one({"event_id": event.id})
    assert stored is not None
    assert stored["sent_at"] is None
    assert CloudEvent.model_validate(stored["event"]) == event


async def test_aborted_transaction_leaves_neither_state_nor_event(
    mongo_client: AsyncMongoClient[Any], db: AsyncDatabase[Any]
) -> None:
    with pytest.raises(RuntimeError, match="later step"):
        await rename_customer(mongo_client, db, renamed("cus_2"), fail=True)
    assert await db.customers.count_documents({}) == 0
    assert await db[OUTBOX_COLLECTION].count_documents({}) == 0


async def test_outbox_refuses_writes_outside_a_transaction(
    mongo_client: AsyncMongoClient[Any], db: AsyncDatabase[Any]
) -> None:
    async with mongo_client.start_session() as session:
        with pytest.raises(RuntimeError, match="inside a transaction"):
            await add_to_outbox(db, renamed("cus_3"), session=session)
    assert await db[OUTBOX_COLLECTION].count_documents({}) == 0


async def test_same_event_id_twice_is_rejected_and_writes_nothing(
    mongo_client: AsyncMongoClient[Any], db: AsyncDatabase[Any]
) -> None:
    event = renamed("cus_4")
    await rename_customer(mongo_client, db, event)
    other = event.model_copy(update={"data": {"customer_id": "cus_5"}})
    with pytest.raises(DuplicateKeyError):
        await rename_customer(mongo_client, db, other)
    assert await db.customers.count_documents({"_id": "cus_5"}) == 0
    assert await db[OUTBOX_COLLECTION].count_documents({}) == 1


async def test_relay_publishes_in_creation_order_and_marks_sent(
    mongo_client: AsyncMongoClient[Any],
    db: AsyncDatabase[Any],
    ns: BrokerNamespace,
    spans: InMemorySpanExporter,
) -> None:
    service = unique_name("svc")
    tracer = trace.get_tracer("test")
    events = [renamed(f"cus_{i}") for i in range(5)]
    with tracer.start_as_current_span("request") as request_span:
        for event in events:
            await rename_customer(mongo_client, db, event)
    publisher = EventPublisher(ns.amqp_url, ns.exchange, service=service)
    relay = OutboxRelay(db, publisher, service=service, use_change_stream=False)
    async with tap_exchange(ns.amqp_url, ns.exchange) as seen:
        try:
            assert await relay.publish_pending() == 5
            assert gauge("outbox_backlog_events", service) == 0
            await eventually(lambda: len(seen.messages) == 5, within=5)
        finally:
            await publisher.close()

    assert seen.message_ids == [e.id for e in events]
    first = seen.messages[0]
    assert first.routing_key == "customer.updated"
    assert first.content_type == "application/cloudevents+json"
    assert first.delivery_mode == 2  # persistent
    assert decode_event(first.body) == events[0]
    assert await db[OUTBOX_COLLECTION].count_documents({"sent_at": None}) == 0
    assert (
        REGISTRY.get_sample_value(
            "events_published_total", {"service": service, "type": "customer.updated"}
        )
        == 5
    )
    assert gauge("outbox_oldest_pending_age_seconds", service) == 0

    # The publish span continues the request's trace; the message carries the publish span.
    producers = [s for s in spans.get_finished_spans() if s.kind is SpanKind.PRODUCER]
    assert len(producers) == 5
    request_ctx = request_span.get_span_context()
    for span in producers:
        assert span.parent is not None and span.parent.span_id == request_ctx.span_id
        assert span.context.trace_id == request_ctx.trace_id
    headers = first.headers or {}
    traceparent = headers["traceparent"]
    traceparent = traceparent.decode() if isinstance(traceparent, bytes) else str(traceparent)
    assert traceparent.split("-")[2] == format(producers[0].context.span_id, "016x")


async def test_unreachable_broker_keeps_events_pending(
    mongo_client: AsyncMongoClient[Any], db: AsyncDatabase[Any], ns: BrokerNamespace
) -> None:
    service = unique_name("svc")
    await rename_customer(mongo_client, db, renamed("cus_9"))
    publisher = EventPublisher(
        with_port(ns.amqp_url, free_port()), ns.exchange, service=service, publish_timeout=1
    )
    relay = OutboxRelay(db, publisher, service=service, use_change_stream=False)
    with pytest.raises(OSError):
        await relay.publish_pending()
    pending = await db[OUTBOX_COLLECTION].find_one({})
    assert pending is not None
    assert pending["sent_at"] is None
    assert pending["lease_owner"] is None  # released at once, not held until expiry
    assert pending["last_error"]
    assert gauge("outbox_backlog_events", service) == 1
    assert (gauge("outbox_oldest_pending_age_seconds", service) or 0) > 0


async def _published_only_when_the_lease_ends(
    db: AsyncDatabase[Any],
    ns: BrokerNamespace,
    service: str,
    clock: FrozenClock,
    event: CloudEvent,
) -> None:
    """A relay leaves ``event`` alone until the dead holder's 30 s lease ends, then publishes it."""
    publisher = EventPublisher(ns.amqp_url, ns.exchange, service=service)
    relay = OutboxRelay(db, publisher, service=service, use_change_stream=False, clock=clock)
    async with tap_exchange(ns.amqp_url, ns.exchange) as seen:
        try:
            assert await relay.publish_pending() == 0  # someone else's lease
            clock.advance(29)
            assert await relay.publish_pending() == 0  # a second before the lease ends
            clock.advance(1)
            assert await relay.publish_pending() == 1
            await eventually(lambda: seen.message_ids == [event.id], within=5)
        finally:
            await publisher.close()


async def test_a_dead_relay_holding_the_lease_is_taken_over_when_it_expires(
    mongo_client: AsyncMongoClient[Any], db: AsyncDatabase[Any], ns: BrokerNamespace
) -> None:
    """Another replica held the outbox's lease and died: its events are only delayed."""
    clock = FrozenClock(datetime.now(UTC))
    event = renamed("cus_11")
    await rename_customer(mongo_client, db, event)
    await db[LEASE_COLLECTION].insert_one(
        {"_id": "relay", "owner": "dead-relay", "until": clock.now() + timedelta(seconds=30)}
    )
    service = unique_name("svc")
    await _published_only_when_the_lease_ends(db, ns, service, clock, event)


async def test_event_leased_by_a_dead_relay_is_published_after_the_lease(
    mongo_client: AsyncMongoClient[Any], db: AsyncDatabase[Any], ns: BrokerNamespace
) -> None:
    """Another replica claimed the event and died: it is not lost, only delayed."""
    clock = FrozenClock(datetime.now(UTC))
    service = unique_name("svc")
    event = renamed("cus_10")
    await rename_customer(mongo_client, db, event)
    await db[OUTBOX_COLLECTION].update_one(
        {"event_id": event.id},
        {
            "$set": {
                "lease_owner": "dead-relay",
                "lease_until": clock.now() + timedelta(seconds=30),
            }
        },
    )
    await _published_only_when_the_lease_ends(db, ns, service, clock, event)


def _plan_stages(plan: dict[str, Any]) -> list[str]:
    """Stage names of a winning plan, outermost first (with the index of an IXSCAN)."""
    stages = []
    while plan:
        stage = plan["stage"]
        stages.append(f"{stage}:{plan['indexName']}" if stage == "IXSCAN" else stage)
        plan = plan.get("inputStage") or {}
    return stages


async def test_claim_reads_the_unsent_index_only_however_much_was_sent(
    mongo_client: AsyncMongoClient[Any], db: AsyncDatabase[Any], ns: BrokerNamespace
) -> None:
    """Sent history must not slow the claim: it walks the unsent index, not the collection."""
    now = datetime.now(UTC)
    history = [
        {"event_id": f"old{i}", "created_at": now, "sent_at": now, "lease_until": now}
        for i in range(500)
    ]
    await db[OUTBOX_COLLECTION].insert_many(history)
    for i in range(3):
        await rename_customer(mongo_client, db, renamed(f"cus_idx{i}"))
    service = unique_name("svc")
    publisher = EventPublisher(ns.amqp_url, ns.exchange, service=service)
    relay = OutboxRelay(db, publisher, service=service, batch_size=2, use_change_stream=False)
    try:
        explained = await relay.explain_claim()
        stages = _plan_stages(explained["queryPlanner"]["winningPlan"])
        assert "COLLSCAN" not in stages
        assert "IXSCAN:unsent_in_order" in stages
        stats = explained["executionStats"]
        assert stats["totalDocsExamined"] <= 3  # the unsent events, never the 500 sent ones

        assert await relay.publish_pending() == 2
        assert await relay.publish_pending() == 1
        assert await relay.publish_pending() == 0
    finally:
        await publisher.close()
    # Sent events left the hot path (the partial index) but stay for audits.
    assert await db[OUTBOX_COLLECTION].count_documents({"pending": True}) == 0
    assert await db[OUTBOX_COLLECTION].count_documents({"sent_at": {"$ne": None}}) == 503


async def test_relay_is_woken_by_a_local_commit_without_change_stream_or_poll(
    mongo_client: AsyncMongoClient[Any], db: AsyncDatabase[Any], ns: BrokerNamespace
) -> None:
    service = unique_name("svc")
    publisher = EventPublisher(ns.amqp_url, ns.exchange, service=service)
    relay = OutboxRelay(db, publisher, service=service, poll_seconds=60, use_change_stream=False)
    async with tap_exchange(ns.amqp_url, ns.exchange) as seen:
        await relay.start()
        try:
            # The relay clears its wake-up flag before each pass and has no change
            # stream, so long before its 60 s poll only the commit hook can wake it.
            first, second = renamed("cus_wake1"), renamed("cus_wake2")
            await rename_customer(mongo_client, db, first)
            await eventually(lambda: seen.message_ids == [first.id], within=5)
            await rename_customer(mongo_client, db, second)
            await eventually(lambda: seen.message_ids == [first.id, second.id], within=5)
        finally:
            await relay.stop()
            await publisher.close()


async def test_an_outbox_written_before_the_unsent_index_is_upgraded_and_drained(
    db: AsyncDatabase[Any], ns: BrokerNamespace
) -> None:
    """Events stored by the previous version (no ``pending`` field) are not stranded."""
    event = renamed("cus_legacy")
    await db[OUTBOX_COLLECTION].insert_one(
        {
            "event_id": event.id,
            "type": event.type,
            "event": event.model_dump(mode="json"),
            "trace": {},
            "created_at": datetime.now(UTC),
            "sent_at": None,
            "lease_until": datetime(1970, 1, 1, tzinfo=UTC),
            "lease_owner": None,
            "attempts": 0,
            "last_error": None,
        }
    )
    await upgrade_outbox(db)
    await upgrade_outbox(db)  # idempotent
    service = unique_name("svc")
    publisher = EventPublisher(ns.amqp_url, ns.exchange, service=service)
    relay = OutboxRelay(db, publisher, service=service, use_change_stream=False)
    async with tap_exchange(ns.amqp_url, ns.exchange) as seen:
        try:
            assert await relay.publish_pending() == 1
            await eventually(lambda: seen.message_ids == [event.id], within=5)
        finally:
            await publisher.close()
