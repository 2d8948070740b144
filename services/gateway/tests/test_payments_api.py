"""The merchant payments API against the real payments service (auth from memory).

What a merchant's client sees: Dodo's shapes, another business's ids as 404,
and the filters the API refuses.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from billing.common.v1 import common_pb2
from billing.payments.v1 import payments_pb2, payments_pb2_grpc
from billing_kit.testing import RunningService, running_service
from gateway.app import create_app
from payments.app import PaymentsRuntime
from payments.app import create_app as create_payments
from payments.config import PaymentsSettings
from yarl import URL

from .conftest import FakeAuth, settings_for

pytestmark = pytest.mark.integration
CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


@dataclass
class World:
    client: TestClient[Any, Any]
    auth: FakeAuth
    payments: payments_pb2_grpc.PaymentsServiceStub

    async def save_card(self, business_id: str, customer_id: str, number: str) -> str:
        """A card saved the way a customer does it: a session, then the hosted form."""
        session = await self.payments.CreatePaymentSession(
            payments_pb2.CreatePaymentSessionRequest(
                business_id=business_id,
                mode=common_pb2.MODE_TEST,
                customer_id=customer_id,
                purpose=payments_pb2.PAYMENT_SESSION_PURPOSE_SAVE_METHOD,
                return_url="https://shop.example/back",
            )
        )
        async with aiohttp.ClientSession() as http:
            async with http.get(session.url) as page:
                token = CSRF.search(await page.text())
            assert token is not None
            form = {
                "csrf_token": token.group(1),
                "cc-name": "Ada Lovelace",
                "cc-number": number,
                "cc-exp": "04/33",
                "cc-csc": "123",
            }
            async with http.post(session.url, data=form, allow_redirects=False) as done:
                assert done.status == 303
                return URL(done.headers["Location"]).query["payment_method_id"]

    async def charge(
        self, business_id: str, customer_id: str, method_id: str, key: str, **extra: Any
    ) -> str:
        payment = await self.payments.ChargePaymentMethod(
            payments_pb2.ChargeRequest(
                **extra,
                business_id=business_id,
                mode=common_pb2.MODE_TEST,
                customer_id=customer_id,
                payment_method_id=method_id,
                amount=1500,
                currency="USD",
                idempotency_key=key,
                charge_type=payments_pb2.CHARGE_TYPE_RENEWAL,
                subscription_id="sub_1",
            )
        )
        return payment.payment_id


@pytest_asyncio.fixture
async def world(mongo_url: str, fake_auth: tuple[FakeAuth, int]) -> AsyncIterator[World]:
    fake, auth_port = fake_auth
    async with running_service(
        create_payments, PaymentsSettings, mongo_url=mongo_url, http_port=0
    ) as payments:
        service: RunningService[PaymentsRuntime] = payments
        app = create_app(settings_for(auth_port, payments_target=service.grpc_target))
        async with TestClient(TestServer(app)) as client:
            yield World(client, fake, payments_pb2_grpc.PaymentsServiceStub(service.channel))


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def test_a_customers_saved_cards_in_dodos_shape_and_only_for_its_business(
    world: World,
) -> None:
    key, other_key = world.auth.add_key("biz_1"), world.auth.add_key("biz_2")
    customer = world.auth.add_customer("biz_1", "ada@example.com")
    method_id = await world.save_card("biz_1", customer, "4242 4242 4242 4242")

    resp = await world.client.get(f"/customers/{customer}/payment-methods", headers=bearer(key))
    assert resp.status == 200
    assert await resp.json() == {
        "items": [
            {
                "payment_method": "card",
                "payment_method_id": method_id,
                "card": {
                    "card_holder_name": "Ada Lovelace",
                    "card_issuing_country": None,
                    "card_network": "visa",
                    "card_type": None,
                    "expiry_month": "04",
                    "expiry_year": "2033",
                    "last4_digits": "4242",
                },
                "last_used_at": None,
                "payment_method_type": "credit",
                "recurring_enabled": True,
            }
        ]
    }
    foreign = await world.client.get(
        f"/customers/{customer}/payment-methods", headers=bearer(other_key)
    )
    assert foreign.status == 404
    delete_path = f"/customers/{customer}/payment-methods/{method_id}"
    assert (await world.client.delete(delete_path, headers=bearer(other_key))).status == 404
    assert (await world.client.delete(delete_path, headers=bearer(key))).status == 204
    assert (await world.client.delete(delete_path, headers=bearer(key))).status == 404


async def test_payments_are_listed_filtered_and_retrieved_in_dodos_shape(world: World) -> None:
    key, other_key = world.auth.add_key("biz_1"), world.auth.add_key("biz_2")
    customer = world.auth.add_customer("biz_1", "ada@example.com")
    ok = await world.save_card("biz_1", customer, "4242424242424242")
    declining = await world.save_card("biz_1", customer, "4000000000000341")
    paid = await world.charge(
        "biz_1",
        customer,
        ok,
        "k1",
        lines=[
            payments_pb2.PaymentLine(
                product_id="pdt_a", product_name="Pro", quantity=3, unit_amount=500
            )
        ],
        billing=payments_pb2.BillingAddress(country="IT", city="Roma"),
    )
    failed = await world.charge("biz_1", customer, declining, "k2")

    resp = await world.client.get("/payments", headers=bearer(key))
    items = (await resp.json())["items"]
    assert [p["payment_id"] for p in items] == [failed, paid]
    first = items[1]
    assert first["status"] == "succeeded" and first["charge_type"] == "renewal"
    assert (first["total_amount"], first["currency"], first["card_last_four"]) == (
        1500,
        "USD",
        "4242",
    )
    assert first["customer"]["customer_id"] == customer
    assert first["customer"]["email"] == "ada@example.com"
    assert first["subscription_ids"] == ["sub_1"]

    resp = await world.client.get(
        "/payments", params={"status": "failed", "customer_id": customer}, headers=bearer(key)
    )
    (declined,) = (await resp.json())["items"]
    assert (declined["error_code"], declined["error_message"]) == (
        "card_declined",
        "Your card was declined.",
    )
    never = await world.client.get(
        "/payments", params={"status": "requires_capture"}, headers=bearer(key)
    )
    assert (await never.json())["items"] == []

    resp = await world.client.get(f"/payments/{paid}", headers=bearer(key))
    payment = await resp.json()
    assert (payment["payment_id"], payment["settlement_amount"]) == (paid, 1500)
    assert payment["refunds"] == [] and payment["payment_method_id"] == ok
    # Dodo's product_cart and billing: what the payment was for and the buyer's address.
    assert payment["product_cart"] == [{"product_id": "pdt_a", "quantity": 3}]
    assert payment["billing"] == {
        "country": "IT",
        "city": "Roma",
        "state": None,
        "street": None,
        "zipcode": None,
    }
    without = await (await world.client.get(f"/payments/{failed}", headers=bearer(key))).json()
    assert (without["product_cart"], without["billing"]) == (None, None)
    assert (await world.client.get(f"/payments/{paid}", headers=bearer(other_key))).status == 404
    assert (await world.client.get("/payments", headers=bearer(other_key))).status == 200
    assert (await (await world.client.get("/payments", headers=bearer(other_key))).json()) == {
        "items": []
    }


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"currency": "USD"}, "currency"),
        ({"brand_id": "b"}, "brand_id"),
        ({"product_id": "pdt_1"}, "product_id"),
        ({"created_at_gte": "2026-01-01T00:00:00"}, "created_at_gte"),
        ({"created_at_lte": "0.5"}, "created_at_lte"),
        ({"status": "paid"}, "status"),
        ({"page_number": "10001"}, "page_number"),
    ],
)
async def test_refused_filters_are_named(world: World, params: dict[str, str], field: str) -> None:
    resp = await world.client.get(
        "/payments", params=params, headers=bearer(world.auth.add_key("b"))
    )
    assert resp.status == 422
    body = await resp.json()
    assert [e["field"] for e in body["errors"]] == [field]


async def test_the_sdks_page_walk_sees_every_payment_once(world: World) -> None:
    # The official SDK asks for the first page without page_number, then for 2, 3, …
    # (dodopayments.pagination): 0 and 1 must both be the first page, 2 the second.
    key = world.auth.add_key("biz_1")
    customer = world.auth.add_customer("biz_1", "pages@example.com")
    method_id = await world.save_card("biz_1", customer, "4242 4242 4242 4242")
    made = {await world.charge("biz_1", customer, method_id, f"page-{n}") for n in range(3)}

    async def page(query: str) -> list[str]:
        resp = await world.client.get(f"/payments?page_size=1{query}", headers=bearer(key))
        assert resp.status == 200
        return [p["payment_id"] for p in (await resp.json())["items"]]

    walked = [await page(q) for q in ("", "&page_number=2", "&page_number=3", "&page_number=4")]
    assert [len(ids) for ids in walked] == [1, 1, 1, 0]
    assert {ids[0] for ids in walked[:3]} == made
    assert await page("&page_number=0") == await page("&page_number=1") == walked[0]
