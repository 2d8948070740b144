"""The whole system, started once per test session on free ports.

Black-box: tests talk to it only as a merchant (HTTP, the official SDK), an
operator (auth's gRPC API) or a monitoring system (gRPC health, /readyz)
would. Nothing here reaches into a service's database.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from devstack import BusinessWithKey, Stack
from dodopayments import AsyncDodoPayments


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def stack(tmp_path_factory: pytest.TempPathFactory, amqp_url: str) -> AsyncIterator[Stack]:
    """Every service, SecantusDB and the SMTP sink, in their own broker namespace."""
    running = Stack.isolated(tmp_path_factory.mktemp("stack"), amqp_url=amqp_url)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


async def new_merchant(stack: Stack, label: str) -> BusinessWithKey:
    """A business of its own (unique name) with a test-mode API key."""
    return await stack.create_business(f"{label} {uuid.uuid4().hex[:8]}")


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def merchant(stack: Stack) -> BusinessWithKey:
    """The business most tests act as."""
    return await new_merchant(stack, "Acme e2e")


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def other_merchant(stack: Stack) -> BusinessWithKey:
    """A second business, whose data the first must never see."""
    return await new_merchant(stack, "Globex e2e")


@pytest_asyncio.fixture(loop_scope="session")
async def sdk(stack: Stack, merchant: BusinessWithKey) -> AsyncIterator[AsyncDodoPayments]:
    """The official Dodo Payments SDK pointed at our gateway (no retries: see failures)."""
    client = AsyncDodoPayments(
        bearer_token=merchant.api_key_secret, base_url=stack.gateway_url, max_retries=0
    )
    async with client:
        yield client


@pytest.fixture
def mini_stack_dir(tmp_path: Path) -> Path:
    """Data dir for a throwaway stack that a test may break."""
    return tmp_path / "mini-stack"
