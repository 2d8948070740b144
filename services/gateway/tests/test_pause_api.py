"""``PATCH /subscriptions/{id}`` pause and resume through the real gateway app, against
in-memory auth and subscriptions: what the merchant's client sees."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from billing.subscriptions.v1 import subscriptions_pb2 as subs
from gateway.app import create_app

from .billing_fakes import FakeBilling, start_fake_billing
from .conftest import FakeAuth, settings_for

Client = TestClient[Any, Any]


class World:
    def __init__(self, client: Client, auth: FakeAuth, billing: FakeBilling) -> None:
        self.client, self.auth, self.billing = client, auth, billing
        self.business_id = auth.add_business("Acme")
        customer = auth.add_customer(self.business_id, "ada@example.com")
        self.sub = billing.add_subscription(self.business_id, customer)
        self.headers = {"Authorization": f"Bearer {auth.add_key(self.business_id)}"}

    async def patch(self, body: dict[str, Any], sub: str | None = None) -> tuple[int, Any]:
        resp = await self.client.patch(
            f"/subscriptions/{sub or self.sub}", json=body, headers=self.headers
        )
        return resp.status, await resp.json()


@pytest.fixture
async def world(fake_auth: tuple[FakeAuth, int]) -> AsyncIterator[World]:
    auth, auth_port = fake_auth
    billing, server, port = await start_fake_billing()
    settings = settings_for(
        auth_port,
        subscriptions_target=f"127.0.0.1:{port}",
        payments_target=f"127.0.0.1:{port}",
    )
    try:
        async with TestClient(TestServer(create_app(settings))) as client:
            yield World(client, auth, billing)
    finally:
        await server.stop(None)


async def test_pause_then_resume_answer_the_subscription(world: World) -> None:
    status, body = await world.patch({"status": "paused"})
    assert status == 200, body
    assert body["status"] == "paused" and body["paused_at"] is not None
    asked = next(r for n, r in world.billing.calls if n == "UpdateSubscription")
    assert asked.pause and not asked.resume and not asked.cancel_now
    assert asked.customer_id == ""  # the merchant acts on any customer's subscription
    status, body = await world.patch({"status": "active"})
    assert status == 200 and body["status"] == "active" and body["paused_at"] is None


async def test_an_illegal_move_is_409_not_to_be_retried(world: World) -> None:
    resp = await world.client.patch(
        f"/subscriptions/{world.sub}", json={"status": "active"}, headers=world.headers
    )
    assert resp.status == 409 and resp.headers["x-should-retry"] == "false"
    assert world.billing.subscriptions[world.sub].status == subs.SUBSCRIPTION_STATUS_ACTIVE


async def test_status_with_another_field_is_422_and_nothing_is_asked(world: World) -> None:
    status, body = await world.patch({"status": "paused", "metadata": {"a": "b"}})
    assert status == 422, body
    assert world.billing.count("UpdateSubscription") == 0


async def test_another_business_subscription_is_404(world: World) -> None:
    other = world.auth.add_business("Other")
    theirs = world.billing.add_subscription(other, world.auth.add_customer(other, "e@example.com"))
    for sub in (theirs, "sub_nope"):
        status, _ = await world.patch({"status": "paused"}, sub=sub)
        assert status == 404
    assert world.billing.subscriptions[theirs].status == subs.SUBSCRIPTION_STATUS_ACTIVE
