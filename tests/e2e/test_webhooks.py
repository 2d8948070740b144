"""Merchant webhooks end to end: the official SDK manages the endpoint, a real payment
on the hosted page succeeds, and a local HTTP server receives ``payment.succeeded``
once, signed so that the ``standardwebhooks`` library and the SDK's ``unwrap`` both
verify it, with ``data`` equal to what ``payments.retrieve`` shows.

The receiver listens on 127.0.0.1: test mode may reach private addresses in the
development stack (``NOTIFICATIONS_WEBHOOK_ALLOW_PRIVATE_TARGETS`` unset outside
production); live mode never may (services/notifications tests cover the guard).
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp
import dodopayments
import grpc
import pytest
import pytest_asyncio
from aiohttp import web
from billing.common.v1 import common_pb2
from billing.payments.v1 import payments_pb2, payments_pb2_grpc
from billing_kit.testing import eventually
from devstack import Stack
from devstack.seed import BusinessWithKey
from dodopayments import AsyncDodoPayments
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError
from yarl import URL

from .conftest import new_merchant

pytestmark = pytest.mark.e2e
CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')
MONTHLY: Any = {
    "type": "recurring_price",
    "currency": "EUR",
    "price": 1200,
    "payment_frequency_count": 1,
    "payment_frequency_interval": "Month",
    "subscription_period_count": 1,
    "subscription_period_interval": "Year",
}


@dataclass
class Receiver:
    url: str = ""
    received: list[tuple[dict[str, str], str]] = field(default_factory=list)


@pytest_asyncio.fixture(loop_scope="session")
async def receiver() -> AsyncIterator[Receiver]:
    """The merchant's webhook endpoint: a local HTTP server that records each request."""
    state = Receiver()

    async def hook(request: web.Request) -> web.Response:
        state.received.append((dict(request.headers.items()), await request.text()))
        return web.Response(status=200, text="ok")

    app = web.Application()
    app.router.add_post("/hooks/dodo", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    state.url = f"http://127.0.0.1:{port}/hooks/dodo"
    try:
        yield state
    finally:
        await runner.cleanup()


@pytest_asyncio.fixture(loop_scope="session")
async def seller(stack: Stack) -> BusinessWithKey:
    """A business of its own, so no other test's payments reach this endpoint."""
    return await new_merchant(stack, "Webhooks e2e")


@pytest_asyncio.fixture(loop_scope="session")
async def client(stack: Stack, seller: BusinessWithKey) -> AsyncIterator[AsyncDodoPayments]:
    sdk = AsyncDodoPayments(
        bearer_token=seller.api_key_secret, base_url=stack.gateway_url, max_retries=0
    )
    async with sdk:
        yield sdk


async def hosted_page(
    stack: Stack, seller: BusinessWithKey, customer_id: str, **fields: Any
) -> dict[str, str]:
    """A payment session from payments' gRPC API, then the hosted form as a browser posts it;
    the query of the page it returns to."""
    async with grpc.aio.insecure_channel(stack.grpc_target("payments")) as channel:
        session = await payments_pb2_grpc.PaymentsServiceStub(channel).CreatePaymentSession(
            payments_pb2.CreatePaymentSessionRequest(
                business_id=seller.business_id,
                mode=common_pb2.MODE_TEST,
                customer_id=customer_id,
                return_url=f"{stack.gateway_url}/openapi.json?back=1",
                branding=payments_pb2.Branding(business_name=seller.name),
                **fields,
            )
        )
    async with aiohttp.ClientSession() as http:
        async with http.get(session.url) as page:
            token = CSRF.search(await page.text())
        assert token is not None
        form = {
            "csrf_token": token.group(1),
            "cc-name": "Ada Lovelace",
            "cc-number": "4242 4242 4242 4242",
            "cc-exp": "12/34",
            "cc-csc": "123",
        }
        async with http.post(session.url, data=form, allow_redirects=False) as done:
            assert done.status == 303
            back = dict(URL(done.headers["Location"]).query)
    assert back["status"] == "succeeded"
    return back


async def pay_on_the_hosted_page(stack: Stack, seller: BusinessWithKey, customer_id: str) -> str:
    """A one-off payment of 49.90 EUR that succeeds; its id."""
    back = await hosted_page(
        stack,
        seller,
        customer_id,
        purpose=payments_pb2.PAYMENT_SESSION_PURPOSE_PAY,
        amount=4990,
        currency="EUR",
        idempotency_key=f"e2e-webhook-{uuid.uuid4().hex}",
        charge_type=payments_pb2.CHARGE_TYPE_NEW,
    )
    return back["payment_id"]


def assert_same_as_the_api(data: dict[str, Any], shown: dict[str, Any], must: set[str]) -> None:
    """Every field both have is equal (timestamps compared as instants)."""
    common = set(data) & set(shown)
    assert must <= common, f"missing from the webhook: {must - common}"
    differing = {k: (data[k], shown[k]) for k in common if not _same(data[k], shown[k])}
    assert not differing, f"webhook data differs from the API: {differing}"


def _same(a: Any, b: Any) -> bool:
    # Timestamps may differ in spelling only (".123000Z" vs ".123Z").
    if isinstance(a, str) and isinstance(b, str) and a[:4].isdigit() and "T" in a:
        try:
            return datetime.fromisoformat(a) == datetime.fromisoformat(b)
        except ValueError:
            return a == b
    return bool(a == b)


async def test_a_succeeded_payment_reaches_the_endpoint_once_signed_and_in_the_api_shape(
    stack: Stack, seller: BusinessWithKey, client: AsyncDodoPayments, receiver: Receiver
) -> None:
    endpoint = await client.webhooks.create(
        url=receiver.url,
        description="orders",
        filter_types=["payment.succeeded"],
        headers={"X-Shop": "e2e"},
        metadata={"team": "billing"},
    )
    assert endpoint.id and endpoint.filter_types == ["payment.succeeded"]
    assert endpoint.disabled is False and endpoint.metadata == {"team": "billing"}
    secret = (await client.webhooks.retrieve_secret(endpoint.id)).secret
    assert secret.startswith("whsec_")
    headers = await client.webhooks.headers.retrieve(endpoint.id)
    assert headers.headers == {"X-Shop": "e2e"}

    customer = await client.customers.create(
        email=f"hook-{uuid.uuid4().hex[:8]}@example.com", name="Ada Lovelace"
    )
    payment_id = await pay_on_the_hosted_page(stack, seller, customer.customer_id)

    await eventually(lambda: receiver.received, within=30, message="no webhook arrived")
    await asyncio.sleep(1.0)  # a duplicate would arrive about now
    assert len(receiver.received) == 1
    sent_headers, body = receiver.received[0]

    Webhook(secret).verify(body, sent_headers)
    event = client.webhooks.unwrap(body, headers=sent_headers, key=secret)
    assert event.type == "payment.succeeded"
    assert event.business_id == seller.business_id
    assert event.data.payment_id == payment_id
    assert sent_headers["X-Shop"] == "e2e"
    with pytest.raises(WebhookVerificationError):
        client.webhooks.unwrap(body.replace("4990", "1"), headers=sent_headers, key=secret)

    data = json.loads(body)["data"]
    shown = (await client.payments.with_raw_response.retrieve(payment_id)).http_response.json()
    # Every field the merchant API shows, with the same value.
    assert_same_as_the_api(data, shown, set(shown))
    assert data["customer"]["email"] == customer.email

    async with aiohttp.ClientSession() as http:
        async with http.get(
            f"{stack.gateway_url}/webhooks/{endpoint.id}/deliveries",
            headers={"Authorization": f"Bearer {seller.api_key_secret}"},
        ) as resp:
            log = await resp.json()
    (delivery,) = log["data"]
    assert delivery["id"] == sent_headers["webhook-id"]
    assert (delivery["status"], delivery["event_type"], delivery["attempts"]) == (
        "delivered",
        "payment.succeeded",
        1,
    )
    assert delivery["attempt_log"][0]["status_code"] == 200


async def test_endpoints_page_with_iterator_and_stay_within_the_business(
    stack: Stack, client: AsyncDodoPayments, other_merchant: BusinessWithKey
) -> None:
    made = [
        (await client.webhooks.create(url=f"https://shop.example/hooks/{n}")).id for n in range(3)
    ]
    first = await client.webhooks.list(limit=2)
    assert first.done is False and first.iterator
    seen = [w.id async for w in await client.webhooks.list(limit=2)]
    assert [i for i in seen if i in made] == list(reversed(made)), "newest first, none missing"
    assert len(seen) == len(set(seen)), "a page repeated an endpoint"

    updated = await client.webhooks.update(made[0], description="renamed", disabled=True)
    assert (updated.description, updated.disabled) == ("renamed", True)
    await client.webhooks.headers.update(made[0], headers={"Authorization": "Bearer t0k"})
    shown = await client.webhooks.headers.retrieve(made[0])
    assert (shown.headers, shown.sensitive) == ({}, ["Authorization"])

    async with AsyncDodoPayments(
        bearer_token=other_merchant.api_key_secret, base_url=stack.gateway_url, max_retries=0
    ) as other:
        with pytest.raises(dodopayments.NotFoundError):
            await other.webhooks.retrieve(made[0])
        with pytest.raises(dodopayments.NotFoundError):
            await other.webhooks.retrieve_secret(made[0])
        assert made[0] not in [w.id async for w in await other.webhooks.list()]

    await client.webhooks.delete(made[0])
    with pytest.raises(dodopayments.NotFoundError):
        await client.webhooks.retrieve(made[0])
    with pytest.raises(dodopayments.UnprocessableEntityError):
        await client.webhooks.create(url="ftp://shop.example/hooks")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
async def test_a_new_subscription_sends_subscription_active_in_the_api_shape(
    stack: Stack, seller: BusinessWithKey, client: AsyncDodoPayments
) -> None:
    received: list[tuple[dict[str, str], str]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append((dict(request.headers.items()), await request.text()))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/subs", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        endpoint = await client.webhooks.create(
            url=f"http://127.0.0.1:{port}/subs", filter_types=["subscription.active"]
        )
        secret = (await client.webhooks.retrieve_secret(endpoint.id)).secret
        seat = await client.addons.create(
            name="Extra seat", price=300, currency="EUR", tax_category="saas"
        )
        product = await client.products.create(
            name=f"Plan {uuid.uuid4().hex[:6]}",
            tax_category="saas",
            price=MONTHLY,
            addons=[seat.id],
        )
        customer = await client.customers.create(
            email=f"sub-{uuid.uuid4().hex[:8]}@example.com", name="Grace Hopper"
        )
        card = await hosted_page(
            stack,
            seller,
            customer.customer_id,
            purpose=payments_pb2.PAYMENT_SESSION_PURPOSE_SAVE_METHOD,
        )
        created = await client.subscriptions.create(
            billing={"country": "IT", "city": "Milano"},
            customer={"customer_id": customer.customer_id},
            product_id=product.product_id,
            quantity=1,
            payment_method_id=card["payment_method_id"],
            addons=[{"addon_id": seat.id, "quantity": 2}],
        )
        await eventually(lambda: received, within=30, message="no subscription webhook")
        await asyncio.sleep(1.0)
    finally:
        await runner.cleanup()
    assert len(received) == 1
    headers, body = received[0]
    event = client.webhooks.unwrap(body, headers=headers, key=secret)
    assert event.type == "subscription.active"
    data = json.loads(body)["data"]
    shown = (
        await client.subscriptions.with_raw_response.retrieve(created.subscription_id)
    ).http_response.json()
    assert_same_as_the_api(
        data,
        shown,
        {
            "subscription_id",
            "status",
            "product_id",
            "product_name",
            "recurring_pre_tax_amount",
            "created_at",
            "next_billing_date",
            "billing",
            "customer",
            "payment_frequency_interval",
            "addons",
        },
    )
    assert data["addons"] == [{"addon_id": seat.id, "quantity": 2}]
