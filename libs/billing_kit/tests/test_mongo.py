"""billing_kit.mongo against a real SecantusDB/MongoDB."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from billing_kit.mongo import create_mongo_client, ensure_indexes, ping, run_in_transaction
from billing_kit.testing import free_port
from pymongo import AsyncMongoClient, IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

pytestmark = pytest.mark.integration


async def test_ping_reports_up_and_down(mongo_client: AsyncMongoClient[Any]) -> None:
    assert await ping(mongo_client) is True
    nobody = create_mongo_client(
        f"mongodb://127.0.0.1:{free_port()}/?directConnection=true", app_name="t"
    )
    try:
        started = asyncio.get_running_loop().time()
        assert await ping(nobody, timeout=0.5) is False
        assert asyncio.get_running_loop().time() - started < 3
    finally:
        await nobody.close()


async def test_client_returns_tz_aware_datetimes(db: AsyncDatabase[Any]) -> None:
    await db.things.insert_one({"_id": 1, "at": datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)})
    doc = await db.things.find_one({"_id": 1})
    assert doc is not None
    assert doc["at"] == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


async def test_ensure_indexes_is_idempotent_and_enforced(db: AsyncDatabase[Any]) -> None:
    indexes = {"customers": [IndexModel([("business_id", 1), ("email", 1)], unique=True)]}
    await ensure_indexes(db, indexes)
    await ensure_indexes(db, indexes)  # a second start must not fail
    await db.customers.insert_one({"business_id": "b1", "email": "a@example.com"})
    with pytest.raises(DuplicateKeyError):
        await db.customers.insert_one({"business_id": "b1", "email": "a@example.com"})


async def test_transaction_commits_all_or_nothing(
    mongo_client: AsyncMongoClient[Any], db: AsyncDatabase[Any]
) -> None:
    async def ok(session: AsyncClientSession) -> str:
        await db.a.insert_one({"_id": 1}, session=session)
        await db.b.insert_one({"_id": 1}, session=session)
        return "done"

    assert await run_in_transaction(mongo_client, ok) == "done"

    async def fails_half_way(session: AsyncClientSession) -> None:
        await db.a.insert_one({"_id": 2}, session=session)
        raise RuntimeError("business rule says no")

    with pytest.raises(RuntimeError, match="business rule"):
        await run_in_transaction(mongo_client, fails_half_way)
    assert await db.a.count_documents({}) == 1
    assert await db.b.count_documents({}) == 1


async def test_concurrent_transactions_on_one_document_both_apply(
    mongo_client: AsyncMongoClient[Any], db: AsyncDatabase[Any]
) -> None:
    """Write conflicts are transient: the loser is rerun, so no increment is lost."""
    await db.counters.insert_one({"_id": "c", "n": 0})

    async def increment(session: AsyncClientSession) -> None:
        doc = await db.counters.find_one({"_id": "c"}, session=session)
        assert doc is not None
        await asyncio.sleep(0.05)  # widen the window so the transactions overlap
        await db.counters.update_one({"_id": "c"}, {"$set": {"n": doc["n"] + 1}}, session=session)

    await asyncio.gather(*(run_in_transaction(mongo_client, increment) for _ in range(5)))
    doc = await db.counters.find_one({"_id": "c"})
    assert doc is not None and doc["n"] == 5
