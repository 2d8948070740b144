"""Fixtures for the kit's integration tests (real SecantusDB/MongoDB and RabbitMQ)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from billing_kit.mongo import create_mongo_client, ensure_indexes
from billing_kit.outbox import OUTBOX_INDEXES
from billing_kit.testing import BrokerNamespace, broker_namespace
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

_exporter = InMemorySpanExporter()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def mongo_client(mongo_url: str) -> AsyncIterator[AsyncMongoClient[Any]]:
    client = create_mongo_client(mongo_url, app_name="billing-kit-tests")
    yield client
    await client.close()


@pytest_asyncio.fixture
async def db(
    mongo_client: AsyncMongoClient[Any], unique_db_name: str
) -> AsyncIterator[AsyncDatabase[Any]]:
    database = mongo_client[unique_db_name]
    await ensure_indexes(database, OUTBOX_INDEXES)
    yield database
    await mongo_client.drop_database(unique_db_name)


@pytest_asyncio.fixture
async def ns(amqp_url: str) -> AsyncIterator[BrokerNamespace]:
    """A broker namespace per test, so consumers of one test never see another's events."""
    async with broker_namespace(amqp_url) as namespace:
        yield namespace


@pytest.fixture
def spans() -> InMemorySpanExporter:
    """Finished spans of this test (installs an SDK tracer provider once)."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    if not getattr(provider, "_kit_test_exporter", False):
        provider.add_span_processor(SimpleSpanProcessor(_exporter))
        provider._kit_test_exporter = True  # type: ignore[attr-defined]
    _exporter.clear()
    return _exporter
