"""Merchant API additions: PATCH /customers/{id} and the customer-portal session."""

from __future__ import annotations

from typing import Any

from billing.common.v1 import common_pb2


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def test_patch_changes_only_the_fields_sent(gateway: Any) -> None:
    client, fake = gateway
    business_id = fake.add_business("Acme")
    key = fake.add_key(business_id)
    customer_id = fake.add_customer(business_id, "ada@example.com")
    fake.customers[-1].phone_number = "+393331234567"
    resp = await client.patch(
        f"/customers/{customer_id}", json={"name": "Ada King"}, headers=bearer(key)
    )
    body = await resp.json()
    assert resp.status == 200, body
    assert body["name"] == "Ada King" and body["phone_number"] == "+393331234567"
    resp = await client.patch(
        f"/customers/{customer_id}", json={"phone_number": None}, headers=bearer(key)
    )
    assert (await resp.json())["phone_number"] is None


async def test_patch_refuses_bad_input_and_foreign_customers(gateway: Any) -> None:
    client, fake = gateway
    business_id = fake.add_business("Acme")
    key = fake.add_key(business_id)
    customer_id = fake.add_customer(business_id, "ada@example.com")
    for body in (
        {"phone_number": "12345"},
        {"name": ""},
        {"email": "not-an-email"},
        {"email": None},
        {"preferred_locale": "klingon"},
        {"metadata": {"plan": 3}},
    ):
        resp = await client.patch(f"/customers/{customer_id}", json=body, headers=bearer(key))
        assert resp.status == 422, body
    assert fake.customers[-1].name == "Ada Lovelace"
    live_key = fake.add_key(business_id, common_pb2.MODE_LIVE)
    other_key = fake.add_key(fake.add_business("Other"))
    for secret in (live_key, other_key):
        resp = await client.patch(
            f"/customers/{customer_id}", json={"name": "Mallory"}, headers=bearer(secret)
        )
        assert resp.status == 404
    assert fake.customers[-1].name == "Ada Lovelace"


async def test_portal_session_returns_a_link_and_validates_its_query(gateway: Any) -> None:
    client, fake = gateway
    business_id = fake.add_business("Acme")
    key = fake.add_key(business_id)
    customer_id = fake.add_customer(business_id, "ada@example.com")
    path = f"/customers/{customer_id}/customer-portal/session"
    resp = await client.post(
        path,
        params={
            "send_email": "true",
            "return_url": "https://shop.example/account",
            "next": f"/b/{business_id}/subscriptions",
        },
        headers=bearer(key),
    )
    body = await resp.json()
    assert resp.status == 200, body
    assert body["link"].startswith("http://localhost:8080/test/link/cpt_")
    token = body["link"].rsplit("/", 1)[1]
    assert fake.portal.tokens[token].next_path == f"/b/{business_id}/subscriptions"
    for params in (
        {"return_url": "javascript:alert(1)"},
        {"next": "https://evil.example/"},
        {"next": "/b/biz_other/profile"},
        {"send_email": "maybe"},
        {"unknown": "1"},
    ):
        resp = await client.post(path, params=params, headers=bearer(key))
        assert resp.status == 422, params
    resp = await client.post("/customers/cus_missing/customer-portal/session", headers=bearer(key))
    assert resp.status == 404
