"""The license APIs against the real subscriptions service (auth from memory).

What the software and a merchant's client see: Dodo's shapes, one answer for
every unusable key, another business's ids as 404, and 429 on a burst.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from billing.common.v1 import common_pb2
from billing.subscriptions.v1 import products_pb2, products_pb2_grpc
from billing_kit.testing import running_service
from gateway.app import create_app
from subscriptions.app import create_app as create_subscriptions
from subscriptions.config import SubscriptionsSettings

from .conftest import FakeAuth, settings_for

pytestmark = pytest.mark.integration
PER_KEY = 8


@dataclass
class World:
    client: TestClient[Any, Any]
    auth: FakeAuth
    products: products_pb2_grpc.ProductsServiceStub

    async def product(self, business_id: str) -> str:
        made = await self.products.CreateProduct(
            products_pb2.CreateProductRequest(
                business_id=business_id,
                mode=common_pb2.MODE_TEST,
                name="Desktop app",
                price=products_pb2.Price(type="one_time_price", price=4900, currency="EUR"),
                tax_category="saas",
                license_key_enabled=True,
                license_key_activations_limit=2,
            )
        )
        return made.product_id

    async def import_key(self, api_key: str, key: str, limit: int | None = 1) -> dict[str, Any]:
        product_id = await self.product("biz_1")
        customer = self.auth.add_customer("biz_1", "ada@example.com")
        body: dict[str, Any] = {"customer_id": customer, "product_id": product_id, "key": key}
        if limit is not None:
            body["activations_limit"] = limit
        resp = await self.client.post("/license_keys", json=body, headers=bearer(api_key))
        assert resp.status == 200, await resp.text()
        result: dict[str, Any] = await resp.json()
        return result


@pytest_asyncio.fixture
async def world(mongo_url: str, fake_auth: tuple[FakeAuth, int]) -> AsyncIterator[World]:
    fake, auth_port = fake_auth
    async with running_service(
        create_subscriptions,
        SubscriptionsSettings,
        mongo_url=mongo_url,
        renewals_enabled=False,
        license_rate_limit_per_key=PER_KEY,
    ) as subs:
        app = create_app(settings_for(auth_port, subscriptions_target=subs.grpc_target))
        async with TestClient(TestServer(app)) as client:
            yield World(client, fake, products_pb2_grpc.ProductsServiceStub(subs.channel))


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def test_a_merchant_imports_lists_updates_and_only_sees_its_own_keys(world: World) -> None:
    key, other = world.auth.add_key("biz_1"), world.auth.add_key("biz_2")
    made = await world.import_key(key, "MY-KEY-0001", limit=3)
    assert made["key"] == "MY-KEY-0001" and made["status"] == "active"
    assert made["source"] == "import" and made["activations_limit"] == 3
    assert made["instances_count"] == 0 and made["expires_at"] is None
    path = f"/license_keys/{made['id']}"
    assert (await world.client.get(path, headers=bearer(other))).status == 404
    listed = await (await world.client.get("/license_keys", headers=bearer(key))).json()
    assert [k["id"] for k in listed["items"]] == [made["id"]]
    assert (await (await world.client.get("/license_keys", headers=bearer(other))).json()) == {
        "items": []
    }
    patched = await world.client.patch(
        path, json={"disabled": True, "activations_limit": None}, headers=bearer(key)
    )
    body = await patched.json()
    assert body["status"] == "disabled" and body["activations_limit"] is None
    assert (
        await world.client.patch(path, json={"disabled": False}, headers=bearer(other))
    ).status == 404
    disabled = await world.client.get(
        "/license_keys", params={"status": "disabled"}, headers=bearer(key)
    )
    assert [k["id"] for k in (await disabled.json())["items"]] == [made["id"]]
    taken = await world.client.post(
        "/license_keys",
        json={
            "customer_id": made["customer_id"],
            "product_id": made["product_id"],
            "key": "MY-KEY-0001",
        },
        headers=bearer(key),
    )
    assert taken.status == 409


async def test_activate_up_to_the_limit_deactivate_and_validate_without_an_api_key(
    world: World,
) -> None:
    key = world.auth.add_key("biz_1")
    made = await world.import_key(key, "APP-KEY-1", limit=1)
    first = await world.client.post(
        "/licenses/activate", json={"license_key": "APP-KEY-1", "name": "laptop"}
    )
    assert first.status == 200, await first.text()
    instance = await first.json()
    assert instance["license_key_id"] == made["id"] and instance["name"] == "laptop"
    assert instance["customer"]["customer_id"] == made["customer_id"]
    assert instance["customer"]["email"] == "ada@example.com"
    assert instance["product"] == {"product_id": made["product_id"], "name": "Desktop app"}
    # A key of another business in the header changes nothing.
    full = await world.client.post(
        "/licenses/activate",
        json={"license_key": "APP-KEY-1", "name": "desktop"},
        headers=bearer(world.auth.add_key("biz_2")),
    )
    assert full.status == 409
    valid = await world.client.post(
        "/licenses/validate",
        json={"license_key": "APP-KEY-1", "license_key_instance_id": instance["id"]},
    )
    assert await valid.json() == {"valid": True}
    # The merchant sees and renames the instance; another business cannot.
    path = f"/license_key_instances/{instance['id']}"
    renamed = await world.client.patch(path, json={"name": "work laptop"}, headers=bearer(key))
    assert (await renamed.json())["name"] == "work laptop"
    other = world.auth.add_key("biz_2")
    assert (await world.client.get(path, headers=bearer(other))).status == 404
    listed = await world.client.get(
        "/license_key_instances", params={"license_key_id": made["id"]}, headers=bearer(key)
    )
    assert [i["id"] for i in (await listed.json())["items"]] == [instance["id"]]

    gone = await world.client.post(
        "/licenses/deactivate",
        json={"license_key": "APP-KEY-1", "license_key_instance_id": instance["id"]},
    )
    assert gone.status == 204
    again = await world.client.post(
        "/licenses/activate", json={"license_key": "APP-KEY-1", "name": "desktop"}
    )
    assert again.status == 200


async def test_unknown_malformed_and_disabled_keys_get_the_same_answer(world: World) -> None:
    key = world.auth.add_key("biz_1")
    made = await world.import_key(key, "DISABLED-KEY", limit=None)
    await world.client.patch(
        f"/license_keys/{made['id']}", json={"disabled": True}, headers=bearer(key)
    )
    answers = []
    for presented in ("DISABLED-KEY", "NO-SUCH-KEY", "", " " * 3, "x" * 2000):
        activate = await world.client.post(
            "/licenses/activate", json={"license_key": presented, "name": "laptop"}
        )
        deactivate = await world.client.post(
            "/licenses/deactivate",
            json={"license_key": presented, "license_key_instance_id": "lki_1"},
        )
        validate = await world.client.post("/licenses/validate", json={"license_key": presented})
        answers.append(
            (
                activate.status,
                await activate.json(),
                deactivate.status,
                await deactivate.json(),
                await validate.json(),
            )
        )
    assert all(a == answers[0] for a in answers), answers
    assert answers[0][0] == 404 and answers[0][4] == {"valid": False}
    after = await world.client.get(f"/license_keys/{made['id']}", headers=bearer(key))
    assert (await after.json())["instances_count"] == 0


async def test_a_burst_on_one_key_gets_429_while_another_key_still_works(world: World) -> None:
    key = world.auth.add_key("biz_1")
    await world.import_key(key, "BURST-KEY", limit=None)
    await world.import_key(key, "CALM-KEY", limit=None)
    statuses = []
    for _ in range(PER_KEY + 2):
        resp = await world.client.post("/licenses/validate", json={"license_key": "BURST-KEY"})
        statuses.append(resp.status)
    assert statuses[:PER_KEY] == [200] * PER_KEY and statuses[-1] == 429
    assert resp.headers["Retry-After"] == "60"
    calm = await world.client.post("/licenses/validate", json={"license_key": "CALM-KEY"})
    assert calm.status == 200 and await calm.json() == {"valid": True}
