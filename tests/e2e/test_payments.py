"""Saved cards and payments end to end: the hosted page in a browser, the merchant's SDK.

The hosted payment page is opened the way the portal will open it: a session
from payments' gRPC API (no HTTP path creates one yet), then only the browser
and the official SDK. The end-of-suite check in conftest.py greps every log,
span file and database of the stack for the card numbers typed here.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import dodopayments
import grpc
import pytest
import pytest_asyncio
from billing.common.v1 import common_pb2
from billing.payments.v1 import payments_pb2, payments_pb2_grpc
from devstack import Stack
from devstack.portal import PortalBusiness
from dodopayments import AsyncDodoPayments
from playwright.async_api import Page, expect
from yarl import URL

from .conftest import merchant_sdk

pytestmark = pytest.mark.e2e


@pytest_asyncio.fixture(loop_scope="session")
async def payments_stub(stack: Stack) -> AsyncIterator[payments_pb2_grpc.PaymentsServiceStub]:
    async with grpc.aio.insecure_channel(stack.grpc_target("payments")) as channel:
        yield payments_pb2_grpc.PaymentsServiceStub(channel)


async def _customer(sdk: AsyncDodoPayments) -> str:
    created = await sdk.customers.create(
        email=f"card-{uuid.uuid4().hex[:8]}@example.com", name="Ada Lovelace"
    )
    return created.customer_id


async def _session(
    stub: payments_pb2_grpc.PaymentsServiceStub,
    stack: Stack,
    shop: PortalBusiness,
    customer_id: str,
    **fields: Any,
) -> payments_pb2.PaymentSession:
    fields.setdefault("purpose", payments_pb2.PAYMENT_SESSION_PURPOSE_SAVE_METHOD)
    return await stub.CreatePaymentSession(
        payments_pb2.CreatePaymentSessionRequest(
            business_id=shop.business_id,
            mode=common_pb2.MODE_TEST,
            customer_id=customer_id,
            return_url=f"{stack.gateway_url}/openapi.json?back=1",
            branding=payments_pb2.Branding(business_name=shop.name, accent_color="#0A7D5A"),
            **fields,
        )
    )


async def _fill(page: Page, number: str, expiry: str = "12/34", cvc: str = "123") -> None:
    await page.get_by_label("Name on card").fill("Ada Lovelace")
    await page.get_by_label("Card number").fill(number)
    await page.get_by_label("Expiry date (MM/YY)").fill(expiry)
    await page.get_by_label("Security code (CVC)").fill(cvc)
    await page.locator("#submit").click()


async def _returned(page: Page, stack: Stack) -> dict[str, str]:
    await page.wait_for_url(f"{stack.gateway_url}/openapi.json?**")
    return dict(URL(page.url).query)


async def test_cards_saved_on_the_hosted_page_are_what_the_merchant_sees(
    stack: Stack,
    shop: PortalBusiness,
    shop_sdk: AsyncDodoPayments,
    payments_stub: payments_pb2_grpc.PaymentsServiceStub,
    page: Page,
) -> None:
    customer_id = await _customer(shop_sdk)

    first = await _session(payments_stub, stack, shop, customer_id)
    await page.goto(first.url)
    await expect(page.get_by_role("heading", name="Add a card")).to_be_visible()
    await expect(page.get_by_text(shop.name).first).to_be_visible()
    await _fill(page, "4242 4242 4242 4242")
    saved = await _returned(page, stack)
    assert (saved["status"], saved["payment_session_id"]) == ("succeeded", first.session_id)

    second = await _session(payments_stub, stack, shop, customer_id)
    await page.goto(second.url)
    await _fill(page, "4000002500003155", expiry="03/31")
    challenged = await _returned(page, stack)

    methods = await shop_sdk.customers.retrieve_payment_methods(customer_id)
    by_id = {m.payment_method_id: m for m in methods.items}
    assert set(by_id) == {saved["payment_method_id"], challenged["payment_method_id"]}
    visa = by_id[saved["payment_method_id"]]
    assert visa.payment_method == "card" and visa.card is not None
    assert (visa.card.last4_digits, visa.card.card_network) == ("4242", "visa")
    assert (visa.card.expiry_month, visa.card.expiry_year) == ("12", "2034")
    assert visa.card.card_holder_name == "Ada Lovelace"
    three_ds = by_id[challenged["payment_method_id"]].card
    assert three_ds is not None and (three_ds.last4_digits, three_ds.expiry_month) == ("3155", "03")

    # The session is single-use: the same link cannot save another card.
    await page.goto(first.url)
    await expect(page.get_by_text("This payment page was already used.")).to_be_visible()


async def test_the_page_says_what_is_wrong_next_to_each_field(
    stack: Stack,
    shop: PortalBusiness,
    shop_sdk: AsyncDodoPayments,
    payments_stub: payments_pb2_grpc.PaymentsServiceStub,
    page: Page,
) -> None:
    customer_id = await _customer(shop_sdk)
    session = await _session(payments_stub, stack, shop, customer_id)
    await page.goto(session.url)

    await _fill(page, "4242 4242 4242 4241", expiry="01/20")

    await expect(page.locator("#cc-number-error")).to_have_text("This card number is not valid.")
    await expect(page.locator("#cc-exp-error")).to_have_text("This card has expired.")
    await expect(page.get_by_label("Card number")).to_have_attribute("aria-invalid", "true")
    assert "4241" not in await page.content()
    # Corrected, the same page saves the card.
    await _fill(page, "4242 4242 4242 4242")
    assert (await _returned(page, stack))["status"] == "succeeded"


async def test_a_merchant_deletes_a_saved_card_and_another_business_cannot(
    stack: Stack,
    shop: PortalBusiness,
    shop_sdk: AsyncDodoPayments,
    payments_stub: payments_pb2_grpc.PaymentsServiceStub,
    page: Page,
) -> None:
    customer_id = await _customer(shop_sdk)
    session = await _session(payments_stub, stack, shop, customer_id)
    await page.goto(session.url)
    await _fill(page, "4242424242424242")
    method_id = (await _returned(page, stack))["payment_method_id"]

    async with stack.auth_admin() as admin:
        business = await admin.create_business(f"Other {uuid.uuid4().hex[:6]}", "s@example.com")
        _key_id, key = await admin.create_key(business.business_id, "e2e", mode="test")
    async with AsyncDodoPayments(
        bearer_token=key, base_url=stack.gateway_url, max_retries=0
    ) as other:
        with pytest.raises(dodopayments.NotFoundError):
            await other.customers.retrieve_payment_methods(customer_id)
        with pytest.raises(dodopayments.NotFoundError):
            await other.customers.delete_payment_method(method_id, customer_id=customer_id)

    await shop_sdk.customers.delete_payment_method(method_id, customer_id=customer_id)
    assert (await shop_sdk.customers.retrieve_payment_methods(customer_id)).items == []
    with pytest.raises(dodopayments.NotFoundError):
        await shop_sdk.customers.delete_payment_method(method_id, customer_id=customer_id)


async def test_a_payment_made_on_the_page_with_3ds_is_listed_and_retrieved(
    stack: Stack,
    shop: PortalBusiness,
    shop_sdk: AsyncDodoPayments,
    payments_stub: payments_pb2_grpc.PaymentsServiceStub,
    page: Page,
) -> None:
    customer_id = await _customer(shop_sdk)
    session = await _session(
        payments_stub,
        stack,
        shop,
        customer_id,
        purpose=payments_pb2.PAYMENT_SESSION_PURPOSE_PAY,
        amount=2500,
        currency="EUR",
        idempotency_key=f"e2e-{uuid.uuid4().hex}",
        charge_type=payments_pb2.CHARGE_TYPE_NEW,
    )
    await page.goto(session.url)
    await expect(page.locator("#amount")).to_have_text("€25.00")
    await _fill(page, "4000002760003184")
    await expect(page.get_by_role("heading", name="Confirm your payment")).to_be_visible()
    await page.get_by_role("button", name="Complete").click()
    back = await _returned(page, stack)
    assert back["status"] == "succeeded"

    listed = await shop_sdk.payments.list(customer_id=customer_id)
    assert [p.payment_id for p in listed.items] == [back["payment_id"]]
    item = listed.items[0]
    assert (item.total_amount, item.currency, item.status) == (2500, "EUR", "succeeded")
    assert (item.card_last_four, item.card_network) == ("3184", "visa")
    assert item.customer.customer_id == customer_id and item.customer.name == "Ada Lovelace"
    payment = await shop_sdk.payments.retrieve(back["payment_id"])
    assert (payment.payment_id, payment.business_id) == (back["payment_id"], shop.business_id)
    assert payment.payment_method_id == back["payment_method_id"]
    assert payment.charge_type == "new" and payment.status == "succeeded"
    failed = await shop_sdk.payments.list(customer_id=customer_id, status="failed")
    assert failed.items == []
    async with merchant_sdk(stack, shop, "live") as live:
        with pytest.raises(dodopayments.NotFoundError):
            await live.payments.retrieve(back["payment_id"])
