"""A customer's payment pages read through recent windows are the unbounded query's pages.

``PaymentsRepository.list`` reads one customer's newest payments through
growing windows of recent time (so SecantusDB scans a bounded index range
instead of every payment of the customer); whatever the spread of the
payments over time, every page must be exactly the one the plain newest-first
query gives, ties on ``created_at`` included.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from billing_kit.scoping import PageRequest
from payments.charges.models import ChargeType, PaymentStatus, StoredPayment
from payments.charges.repository import (
    PAYMENT_INDEXES,
    PAYMENTS,
    PaymentFilter,
    PaymentsRepository,
    _to_document,
)
from pymongo import AsyncMongoClient

NOW = datetime(2026, 12, 7, 12, tzinfo=UTC)


def payment(customer_id: str, at: datetime, n: int) -> StoredPayment:
    return StoredPayment(
        payment_id=f"pay_{n:05d}_{uuid.uuid4().hex[:6]}",
        business_id="bus_1",
        mode="test",
        customer_id=customer_id,
        total_amount=100 + n,
        currency="EUR",
        status=PaymentStatus.SUCCEEDED,
        charge_type=ChargeType.RENEWAL,
        payment_method_id="pm_1",
        idempotency_key=f"k-{customer_id}-{n}",
        created_at=at,
        updated_at=at,
        processor_token="tok",
    )


@pytest.fixture
async def repository(mongo_url: str) -> AsyncIterator[tuple[PaymentsRepository, Any]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_url, tz_aware=True)
    db = client[f"payments_windows_{uuid.uuid4().hex[:8]}"]
    await db[PAYMENTS].create_indexes(list(PAYMENT_INDEXES[PAYMENTS]))
    try:
        yield PaymentsRepository(db), db
    finally:
        await client.drop_database(db.name)
        await client.close()


# Hours before NOW of each customer's payments: dense recent, spread over the
# windows' edges, old and sparse, ties on one instant, and some in the future
# (a test clock ahead of the service's clock).
HISTORIES: dict[str, list[float]] = {
    "cus_dense": [h * 0.5 for h in range(60)],
    "cus_spread": [1, 47, 48, 49, 24 * 30, 24 * 31, 24 * 32, 24 * 200, 24 * 366, 24 * 400] * 3,
    "cus_old": [24 * 900 + h for h in range(7)],
    "cus_ties": [5.0] * 25 + [24 * 40.0] * 5,
    "cus_future": [-24 * 60.0] * 3 + [h * 30.0 for h in range(30)],
}


@pytest.mark.parametrize("customer_id", sorted(HISTORIES))
async def test_windowed_pages_equal_the_plain_query(
    repository: tuple[PaymentsRepository, Any], customer_id: str
) -> None:
    repo, db = repository
    docs = [
        _to_document(payment(c, NOW - timedelta(hours=h), n))
        for c, hours in HISTORIES.items()
        for n, h in enumerate(hours)
    ]
    await db[PAYMENTS].insert_many(docs)
    where = PaymentFilter(business_id="bus_1", mode="test", customer_ids=[customer_id])
    total = len(HISTORIES[customer_id])
    for size in (1, 7, 20):
        for number in range(total // size + 2):
            page = PageRequest(page_size=size, page_number=number)
            plain = [p.payment_id for p in await repo.list(where, page)]
            windowed = [p.payment_id for p in await repo.list(where, page, now=NOW)]
            assert windowed == plain, (customer_id, size, number)
    # And the pages cover the whole history once, newest first.
    every = [p for p in await repo.list(where, PageRequest(page_size=100), now=NOW)]
    assert len(every) == total
    assert [p.created_at for p in every] == sorted((p.created_at for p in every), reverse=True)
