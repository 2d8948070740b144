"""The merchant webhooks API against the real notifications service (auth from memory).

What a merchant's client sees: Dodo's shapes, cursor pages, another business's
endpoint as 404, and the fields the API refuses.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from billing_kit.testing import running_service
from gateway.app import create_app
from notifications.app import create_app as create_notifications
from notifications.config import NotificationsSettings

from .conftest import FakeAuth, settings_for

pytestmark = pytest.mark.integration


@dataclass
class World:
    client: TestClient[Any, Any]
    auth: FakeAuth


@pytest_asyncio.fixture
async def world(mongo_url: str, fake_auth: tuple[FakeAuth, int]) -> AsyncIterator[World]:
    fake, auth_port = fake_auth
    async with running_service(
        create_notifications, NotificationsSettings, mongo_url=mongo_url
    ) as notifications:
        app = create_app(settings_for(auth_port, notifications_target=notifications.grpc_target))
        async with TestClient(TestServer(app)) as client:
            yield World(client, fake)


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def create(world: World, key: str, **body: Any) -> dict[str, Any]:
    body.setdefault("url", "https://shop.example/hooks")
    resp = await world.client.post("/webhooks", json=body, headers=bearer(key))
    assert resp.status == 200, await resp.text()
    created: dict[str, Any] = await resp.json()
    return created


async def test_create_retrieve_update_delete_in_dodos_shape(world: World) -> None:
    key = world.auth.add_key("biz_1")
    made = await create(
        world,
        key,
        description="orders",
        filter_types=["payment.succeeded", "subscription.on_hold"],
        metadata={"team": "billing"},
        headers={"X-Shop": "42"},
        disabled=None,
        rate_limit=None,
        idempotency_key="create-1",
    )
    assert set(made) == {
        "id",
        "created_at",
        "updated_at",
        "description",
        "metadata",
        "url",
        "disabled",
        "filter_types",
        "rate_limit",
    }
    assert made["disabled"] is False and made["created_at"].endswith("Z")
    again = await create(world, key, idempotency_key="create-1")
    assert again["id"] == made["id"]

    got = await world.client.get(f"/webhooks/{made['id']}", headers=bearer(key))
    assert await got.json() == made

    patched = await world.client.patch(
        f"/webhooks/{made['id']}",
        json={"description": "all", "filter_types": [], "disabled": True},
        headers=bearer(key),
    )
    body = await patched.json()
    assert (body["description"], body["filter_types"], body["disabled"]) == ("all", [], True)
    assert body["url"] == made["url"] and body["metadata"] == {"team": "billing"}

    assert (await world.client.delete(f"/webhooks/{made['id']}", headers=bearer(key))).status == 204
    assert (await world.client.get(f"/webhooks/{made['id']}", headers=bearer(key))).status == 404


async def test_list_pages_with_iterator_and_only_this_business(world: World) -> None:
    key, other = world.auth.add_key("biz_1"), world.auth.add_key("biz_2")
    ids = [(await create(world, key, url=f"https://shop.example/{n}"))["id"] for n in range(3)]
    await create(world, other)
    first = await (await world.client.get("/webhooks?limit=2", headers=bearer(key))).json()
    assert [w["id"] for w in first["data"]] == [ids[2], ids[1]]
    assert first["done"] is False and first["iterator"]
    second = await (
        await world.client.get(
            f"/webhooks?limit=2&iterator={first['iterator']}", headers=bearer(key)
        )
    ).json()
    assert [w["id"] for w in second["data"]] == [ids[0]]
    assert second["done"] is True and second["iterator"] is None


async def test_another_business_gets_404_everywhere(world: World) -> None:
    key, other = world.auth.add_key("biz_1"), world.auth.add_key("biz_2")
    live = world.auth.add_key("biz_1", mode=2)
    hook = (await create(world, key))["id"]
    for caller in (other, live):
        for method, path in (
            ("GET", f"/webhooks/{hook}"),
            ("GET", f"/webhooks/{hook}/secret"),
            ("GET", f"/webhooks/{hook}/headers"),
            ("GET", f"/webhooks/{hook}/deliveries"),
            ("POST", f"/webhooks/{hook}/secret/rotate"),
            ("DELETE", f"/webhooks/{hook}"),
        ):
            resp = await world.client.request(method, path, headers=bearer(caller))
            assert resp.status == 404, (method, path)
        patch = await world.client.patch(
            f"/webhooks/{hook}", json={"description": "x"}, headers=bearer(caller)
        )
        assert patch.status == 404
    assert (await world.client.get(f"/webhooks/{hook}", headers=bearer(key))).status == 200


@pytest.mark.parametrize(
    ("body", "field", "kind"),
    [
        ({"url": "ftp://shop.example/"}, "url", "string_pattern_mismatch"),
        ({"url": "javascript:alert(1)"}, "url", "string_pattern_mismatch"),
        ({"url": "https://shop.example/", "rate_limit": 10}, "rate_limit", "unsupported_field"),
        (
            {"url": "https://shop.example/", "filter_types": ["nope"]},
            "filter_types.0",
            "literal_error",
        ),
        ({"url": "https://shop.example/", "surprise": 1}, "surprise", "extra_forbidden"),
        (
            {"url": "https://shop.example/", "metadata": {"a\u0000b": "x"}},
            "metadata.a\x00b.[key]",
            "string_pattern_mismatch",
        ),
        ({"url": "https://shop.example/", "disabled": 0}, "disabled", "bool_type"),
        (
            {"url": "https://shop.example/", "headers": {"webhook-id": "x"}},
            "headers",
            "invalid_webhook",
        ),
    ],
)
async def test_bad_bodies_are_422_naming_the_field(
    world: World, body: dict[str, Any], field: str, kind: str
) -> None:
    key = world.auth.add_key("biz_1")
    resp = await world.client.post("/webhooks", json=body, headers=bearer(key))
    assert resp.status == 422
    errors = (await resp.json())["errors"]
    assert any(e["field"] == field and e["type"] == kind for e in errors), errors
    listed = await (await world.client.get("/webhooks", headers=bearer(key))).json()
    assert listed["data"] == [], "nothing written"


async def test_secret_headers_rotation_and_deliveries(world: World) -> None:
    key = world.auth.add_key("biz_1")
    hook = (await create(world, key, headers={"X-Shop": "42", "Authorization": "Bearer s3"}))["id"]
    secret_resp = await world.client.get(f"/webhooks/{hook}/secret", headers=bearer(key))
    secret = (await secret_resp.json())["secret"]
    assert secret.startswith("whsec_") and secret_resp.headers["Cache-Control"] == "no-store"

    headers = await (
        await world.client.get(f"/webhooks/{hook}/headers", headers=bearer(key))
    ).json()
    assert headers == {"headers": {"X-Shop": "42"}, "sensitive": ["Authorization"]}
    updated = await world.client.patch(
        f"/webhooks/{hook}/headers",
        json={"headers": {"X-Shop": "", "X-Env": "prod"}},
        headers=bearer(key),
    )
    assert updated.status == 204
    headers = await (
        await world.client.get(f"/webhooks/{hook}/headers", headers=bearer(key))
    ).json()
    assert headers == {"headers": {"X-Env": "prod"}, "sensitive": ["Authorization"]}

    rotated = await (
        await world.client.post(f"/webhooks/{hook}/secret/rotate", headers=bearer(key))
    ).json()
    assert rotated["secret"] != secret and rotated["previous_secret_expires_at"]
    now = await (await world.client.get(f"/webhooks/{hook}/secret", headers=bearer(key))).json()
    assert now["secret"] == rotated["secret"]

    log = await (await world.client.get(f"/webhooks/{hook}/deliveries", headers=bearer(key))).json()
    assert log == {"data": [], "iterator": None, "done": True}


async def test_openapi_lists_the_webhook_paths(world: World) -> None:
    doc = await (await world.client.get("/openapi.json")).json()
    for path in (
        "/webhooks",
        "/webhooks/{webhook_id}",
        "/webhooks/{webhook_id}/secret",
        "/webhooks/{webhook_id}/secret/rotate",
        "/webhooks/{webhook_id}/headers",
        "/webhooks/{webhook_id}/deliveries",
    ):
        assert path in doc["paths"]


async def test_metadata_keys_with_dots_and_dollars_round_trip(world: World) -> None:
    key = world.auth.add_key("biz_1")
    odd = {"a.b": "1", "$x": "2", "é": "3"}
    made = await create(world, key, metadata=odd)
    assert made["metadata"] == odd
    patched = await world.client.patch(
        f"/webhooks/{made['id']}", json={"metadata": {"$y.z": "4"}}, headers=bearer(key)
    )
    assert (await patched.json())["metadata"] == {"$y.z": "4"}
    got = await (await world.client.get(f"/webhooks/{made['id']}", headers=bearer(key))).json()
    assert got["metadata"] == {"$y.z": "4"}
