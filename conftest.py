"""Shared pytest fixtures for every suite in the workspace.

Built on :mod:`billing_kit.testing`. pytest-asyncio runs fixtures and tests
on one session-scoped event loop (see ``[tool.pytest.ini_options]``), so the
session fixtures below are started once and shared.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from billing_kit.testing import (
    BrokerNamespace,
    amqp_url_from_env,
    mongo_server,
    unique_name,
)
from billing_kit.testing import (
    broker_namespace as _broker_namespace,
)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def mongo_url() -> AsyncIterator[str]:
    """One MongoDB for the session: ``MONGODB_URL`` if set, else an in-memory SecantusDB."""
    async with mongo_server() as url:
        yield url


@pytest.fixture(scope="session")
def amqp_url() -> str:
    """The RabbitMQ to use: ``AMQP_URL`` or amqp://guest:guest@127.0.0.1:5672/."""
    return amqp_url_from_env()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def broker_namespace(amqp_url: str) -> AsyncIterator[BrokerNamespace]:
    """A unique exchange name and queue prefix for this run, deleted afterwards."""
    async with _broker_namespace(amqp_url) as namespace:
        yield namespace


@pytest.fixture
def unique_db_name() -> str:
    """A database name no other test uses (tests share one server)."""
    return unique_name("test")
