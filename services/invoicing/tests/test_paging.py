"""A customer with 10,000 invoices: every page is read from the index, one page at a time.

The repository's own queries are captured (PyMongo command monitoring) and
explained on the real SecantusDB: a page must examine about one page of index
keys, never the customer's whole history or the collection.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from billing_kit.mongo import ensure_indexes
from billing_kit.scoping import PageRequest
from billing_kit.testing import unique_name
from invoicing.models import Invoice
from invoicing.repository import (
    COUNTERS,
    INDEXES,
    INVOICES,
    InvoiceFilter,
    InvoicingRepository,
    customer_counter,
    invoice_to_document,
)
from pymongo import AsyncMongoClient, monitoring
from pymongo.asynchronous.database import AsyncDatabase

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 1, tzinfo=UTC)
BIG = 10_000


class FindRecorder(monitoring.CommandListener):
    """Keeps the ``find`` commands sent to the invoices collection."""

    def __init__(self) -> None:
        self.finds: list[dict[str, Any]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "find" and event.command.get("find") == INVOICES:
            self.finds.append(dict(event.command))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def seeded_once(mongo_url: str) -> AsyncIterator[tuple[AsyncDatabase[Any], FindRecorder]]:
    recorder = FindRecorder()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        mongo_url, tz_aware=True, event_listeners=[recorder]
    )
    db = client[unique_name("paging")]
    await ensure_indexes(db, INDEXES)
    docs = [
        invoice_to_document(_invoice(f"inv_{n:05d}", "cus_big", n), n) for n in range(1, BIG + 1)
    ]
    docs += [invoice_to_document(_invoice(f"inv_s{n}", "cus_small", n), n) for n in range(1, 11)]
    await db[INVOICES].insert_many(docs)
    await db[COUNTERS].insert_many(
        [
            {"_id": customer_counter("cus_big", "test"), "seq": BIG},
            {"_id": customer_counter("cus_small", "test"), "seq": 10},
        ]
    )
    try:
        yield db, recorder
    finally:
        await client.drop_database(db.name)
        await client.close()


@pytest_asyncio.fixture(loop_scope="session")
async def seeded(
    seeded_once: tuple[AsyncDatabase[Any], FindRecorder],
) -> tuple[AsyncDatabase[Any], FindRecorder]:
    """The seeded database (once per module: 10,000 inserts) with a fresh query record."""
    seeded_once[1].finds.clear()
    return seeded_once


def _invoice(iid: str, customer_id: str, n: int) -> Invoice:
    return Invoice.model_validate(
        {
            "invoice_id": iid,
            "number": f"INV-{customer_id}-{n:06d}",
            "business_id": "bus_1",
            "mode": "test",
            "customer_id": customer_id,
            "payment_id": f"pay_{iid}",
            "total": 100,
            "currency": "EUR",
            "issued_at": T0 + timedelta(minutes=n),
            "pdf_ready": True,
        }
    )


async def _explained(db: AsyncDatabase[Any], find: dict[str, Any]) -> dict[str, Any]:
    command = {k: v for k, v in find.items() if k in ("find", "filter", "sort", "limit", "skip")}
    explained: dict[str, Any] = await db.command(
        {"explain": command, "verbosity": "executionStats"}
    )
    return explained


def _stages(plan: dict[str, Any]) -> list[str]:
    stages = []
    while plan:
        stages.append(plan["stage"])
        plan = plan.get("inputStage", {})
    return stages


@pytest.mark.parametrize(
    ("where", "page_number", "expected_first"),
    [
        (InvoiceFilter("bus_1", "test", ["cus_big"]), 0, "inv_10000"),
        (InvoiceFilter("bus_1", "test", ["cus_big"]), 500, "inv_05000"),
        (InvoiceFilter("", "test", ["cus_big"]), 999, "inv_00010"),
    ],
    ids=["first-page", "deep-page", "unified-last-page"],
)
async def test_a_page_of_ten_thousand_reads_one_page_of_the_index(
    seeded: tuple[AsyncDatabase[Any], FindRecorder],
    where: InvoiceFilter,
    page_number: int,
    expected_first: str,
) -> None:
    db, recorder = seeded
    page = await InvoicingRepository(db).list_invoices(
        where, PageRequest(page_size=10, page_number=page_number)
    )
    ids = [i.invoice_id for i in page]
    assert len(ids) == 10 and ids[0] == expected_first
    assert ids == sorted(ids, reverse=True), "newest first"
    assert recorder.finds, "the repository's queries were not seen"
    for find in recorder.finds:
        explained = await _explained(db, find)
        stages = _stages(explained["queryPlanner"]["winningPlan"])
        assert "COLLSCAN" not in stages and "IXSCAN" in stages, stages
        assert explained["executionStats"]["totalKeysExamined"] <= 10
        assert explained["executionStats"]["totalDocsExamined"] <= 10


async def test_the_unified_list_merges_customers_newest_first(
    seeded: tuple[AsyncDatabase[Any], FindRecorder],
) -> None:
    db, recorder = seeded
    where = InvoiceFilter("", "test", ["cus_big", "cus_small", "cus_unknown"])
    first = await InvoicingRepository(db).list_invoices(where, PageRequest(page_size=5))
    # cus_big's invoices are the newest (its n-th minute goes up to 10,000).
    assert [i.invoice_id for i in first] == [f"inv_{n:05d}" for n in range(10_000, 9_995, -1)]
    for find in recorder.finds:
        explained = await _explained(db, find)
        assert "COLLSCAN" not in _stages(explained["queryPlanner"]["winningPlan"])
        assert explained["executionStats"]["totalKeysExamined"] <= 5
