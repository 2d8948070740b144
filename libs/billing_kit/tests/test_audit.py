"""billing_kit.audit against a real SecantusDB/MongoDB: entries commit with the change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from billing_kit.audit import (
    AUDIT_INDEXES,
    Actor,
    Resource,
    audit_trail,
    record_audit,
)
from billing_kit.clock import FrozenClock
from billing_kit.mongo import ensure_indexes, run_in_transaction
from billing_kit.telemetry import get_tracer
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import ValidationError
from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

pytestmark = pytest.mark.integration

ADA = Actor(kind="customer", id="cus_ada")
PROFILE = Resource(kind="customer", id="cus_ada", business_id="bus_1", mode="test")
T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


async def _audited_rename(
    client: AsyncMongoClient[Any], db: AsyncDatabase[Any], at: datetime, *, fail: bool = False
) -> None:
    async def change(session: AsyncClientSession) -> None:
        await db.customers.update_one(
            {"_id": "cus_ada"}, {"$set": {"name": "Ada King"}}, upsert=True, session=session
        )
        await record_audit(
            db,
            actor=ADA,
            action="customer.profile_updated",
            resource=PROFILE,
            at=at,
            session=session,
            request_id="req_1",
            details={"fields": "name"},
        )
        if fail:
            raise RuntimeError("the use case failed after writing")

    await run_in_transaction(client, change)


async def test_an_entry_commits_with_the_change_and_reads_newest_first(
    mongo_client: AsyncMongoClient[Any], db: AsyncDatabase[Any]
) -> None:
    await ensure_indexes(db, AUDIT_INDEXES)
    clock = FrozenClock(T0)
    await _audited_rename(mongo_client, db, clock.now())
    clock.advance(60)
    await _audited_rename(mongo_client, db, clock.now())

    trail = await audit_trail(db, "customer", "cus_ada")
    assert [e.at for e in trail] == [T0 + timedelta(seconds=60), T0]
    newest = trail[0]
    assert (newest.actor, newest.action, newest.resource) == (
        ADA,
        "customer.profile_updated",
        PROFILE,
    )
    assert (newest.request_id, newest.details) == ("req_1", {"fields": "name"})
    assert await audit_trail(db, "customer", "cus_other") == []


async def test_a_rolled_back_change_leaves_no_entry(
    mongo_client: AsyncMongoClient[Any], db: AsyncDatabase[Any]
) -> None:
    with pytest.raises(RuntimeError, match="failed after writing"):
        await _audited_rename(mongo_client, db, T0, fail=True)
    assert await audit_trail(db, "customer", "cus_ada") == []
    assert await db.customers.count_documents({}) == 0


async def test_outside_a_transaction_is_refused(
    mongo_client: AsyncMongoClient[Any], db: AsyncDatabase[Any]
) -> None:
    async with mongo_client.start_session() as session:
        with pytest.raises(RuntimeError, match="inside a transaction"):
            await record_audit(
                db, actor=ADA, action="customer.signed_in", resource=PROFILE, at=T0, session=session
            )
    assert await db.audit_log.count_documents({}) == 0


async def test_the_entry_carries_the_requests_trace_id(
    mongo_client: AsyncMongoClient[Any], db: AsyncDatabase[Any], spans: InMemorySpanExporter
) -> None:
    with get_tracer("audit-test").start_as_current_span("request") as span:
        await _audited_rename(mongo_client, db, T0)
        expected = format(span.get_span_context().trace_id, "032x")
    [entry] = await audit_trail(db, "customer", "cus_ada")
    assert entry.trace_id == expected


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("details", {"new_email": "ada@example.com"}),
        ("details", {"token": "cpt_abc"}),
        ("action", "Updated Profile"),
        ("at", datetime(2026, 3, 1)),
    ],
)
async def test_bad_entries_are_refused_and_nothing_is_written(
    mongo_client: AsyncMongoClient[Any], db: AsyncDatabase[Any], field: str, value: Any
) -> None:
    fields: dict[str, Any] = {"action": "customer.email_changed", "at": T0, "details": {}}
    fields[field] = value

    async def change(session: AsyncClientSession) -> None:
        await record_audit(db, actor=ADA, resource=PROFILE, session=session, **fields)

    with pytest.raises(ValidationError):
        await run_in_transaction(mongo_client, change)
    assert await db.audit_log.count_documents({}) == 0
