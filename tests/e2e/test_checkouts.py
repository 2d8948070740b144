"""Checkout sessions and payment links end to end: the official SDK, the hosted page in a browser.

A cart (one-time and subscription products) is paid once on payments' hosted
page; the paid cart is one succeeded payment and one active subscription per
subscription product. ``payment_link: true`` subscriptions and
``update-payment-method`` with ``type: new`` use the same page.
"""

from __future__ import annotations

import uuid
from typing import Any

import aiohttp
import pytest
from billing_kit.testing import eventually
from devstack import Stack
from devstack.portal import PortalBusiness, create_portal_business
from dodopayments import (
    APIStatusError,
    AsyncDodoPayments,
    ConflictError,
    NotFoundError,
    UnprocessableEntityError,
)
from playwright.async_api import Page, expect
from yarl import URL

from .conftest import merchant_sdk
from .test_subscriptions_api import MONTHLY, Cards, _advance

pytestmark = pytest.mark.e2e

DAY = 86_400
ONE_TIME: Any = {"type": "one_time_price", "currency": "EUR", "price": 500}


async def _products(sdk: AsyncDodoPayments) -> tuple[str, str]:
    tag = uuid.uuid4().hex[:6]
    one_time = await sdk.products.create(name=f"Book {tag}", tax_category="saas", price=ONE_TIME)
    monthly = await sdk.products.create(name=f"Plan {tag}", tax_category="saas", price=MONTHLY)
    return one_time.product_id, monthly.product_id


def _back(stack: Stack) -> str:
    return f"{stack.gateway_url}/openapi.json?back=1"


async def _pay(
    page: Page, stack: Stack, url: str, number: str = "4242 4242 4242 4242"
) -> dict[str, str]:
    await page.goto(url)
    await expect(page.get_by_role("heading", name="Pay")).to_be_visible()
    await page.get_by_label("Name on card").fill("Ada Lovelace")
    await page.get_by_label("Card number").fill(number)
    await page.get_by_label("Expiry date (MM/YY)").fill("12/34")
    await page.get_by_label("Security code (CVC)").fill("123")
    await page.locator("#submit").click()
    await page.wait_for_url(f"{stack.gateway_url}/openapi.json?**")
    return dict(URL(page.url).query)


async def test_a_paid_cart_is_one_payment_and_an_active_subscription_per_plan(
    stack: Stack, shop: PortalBusiness, shop_sdk: AsyncDodoPayments, page: Page
) -> None:
    book, plan = await _products(shop_sdk)
    email = f"cart-{uuid.uuid4().hex[:8]}@example.com"
    session = await shop_sdk.checkout_sessions.create(
        product_cart=[
            {"product_id": book, "quantity": 2},
            {"product_id": plan, "quantity": 1},
        ],
        customer={"email": email, "name": "Ada Lovelace"},
        billing_address={"country": "IT", "city": "Roma"},
        return_url=_back(stack),
    )
    assert session.checkout_url
    before = await shop_sdk.checkout_sessions.retrieve(session.session_id)
    assert (before.customer_email, before.payment_id, before.payment_status) == (email, None, None)

    back = await _pay(page, stack, session.checkout_url)
    assert back["status"] == "succeeded"

    async def paid() -> Any:
        now = await shop_sdk.checkout_sessions.retrieve(session.session_id)
        return now if now.payment_status == "succeeded" else None

    done = await eventually(paid, within=30, message="checkout not marked paid")
    assert done.payment_id == back["payment_id"]
    payment = await shop_sdk.payments.retrieve(done.payment_id)
    assert (payment.status, payment.total_amount, payment.currency) == ("succeeded", 2200, "EUR")
    customer_id = payment.customer.customer_id

    async def subscribed() -> list[Any]:
        return [s async for s in shop_sdk.subscriptions.list(customer_id=customer_id)]

    subs = await eventually(subscribed, within=30, message="no subscription from the cart")
    assert [(s.product_id, s.status, s.quantity) for s in subs] == [(plan, "active", 1)]
    assert subs[0].recurring_pre_tax_amount == 1200

    # The page is single use: a second visit (a double submit, a back button) pays nothing.
    await page.goto(session.checkout_url)
    await expect(page.get_by_text("This payment page was already used.")).to_be_visible()
    payments = [p async for p in shop_sdk.payments.list(customer_id=customer_id)]
    assert [p.payment_id for p in payments] == [done.payment_id]
    assert len(await subscribed()) == 1


async def test_bad_carts_are_refused_naming_the_field_and_write_nothing(
    stack: Stack, shop: PortalBusiness, shop_sdk: AsyncDodoPayments
) -> None:
    book, plan = await _products(shop_sdk)
    archived, _ = await _products(shop_sdk)
    await shop_sdk.products.archive(archived)
    async with stack.auth_admin() as admin:
        other = await create_portal_business(admin, f"Other {uuid.uuid4().hex[:6]}")
    async with merchant_sdk(stack, other) as foreign:
        foreign_book, _ = await _products(foreign)
    customer = await shop_sdk.customers.create(
        email=f"bad-{uuid.uuid4().hex[:8]}@example.com", name="Ada"
    )
    cases: list[tuple[list[Any], str, type[APIStatusError]]] = [
        ([], "product_cart", UnprocessableEntityError),
        (
            [{"product_id": book, "quantity": 1}, {"product_id": foreign_book, "quantity": 1}],
            "product_cart[1].product_id",
            NotFoundError,
        ),
        ([{"product_id": "pdt_nope", "quantity": 1}], "product_cart[0].product_id", NotFoundError),
        ([{"product_id": archived, "quantity": 1}], "product_cart[0].product_id", ConflictError),
        (
            [{"product_id": plan, "quantity": 0}],
            "product_cart.0.quantity",
            UnprocessableEntityError,
        ),
    ]
    for cart, field, error in cases:
        with pytest.raises(error) as refused:
            await shop_sdk.checkout_sessions.create(
                product_cart=cart,
                customer={"customer_id": customer.customer_id},
                return_url=_back(stack),
            )
        body: Any = refused.value.body
        assert field in [e["field"] for e in body["errors"]], (cart, body)
    # A new customer's email with a bad cart: refused before the customer is created.
    stranger = f"never-{uuid.uuid4().hex[:8]}@example.com"
    with pytest.raises(ConflictError):
        await shop_sdk.checkout_sessions.create(
            product_cart=[{"product_id": archived, "quantity": 1}],
            customer={"email": stranger, "name": "Never"},
            return_url=_back(stack),
        )
    assert (await shop_sdk.customers.list(email=stranger)).items == []
    assert [s async for s in shop_sdk.subscriptions.list(customer_id=customer.customer_id)] == []
    assert [p async for p in shop_sdk.payments.list(customer_id=customer.customer_id)] == []
    with pytest.raises(NotFoundError):
        await shop_sdk.checkout_sessions.retrieve("cks_nope")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
async def test_a_payment_link_subscription_is_active_once_paid_on_the_page(
    stack: Stack, shop: PortalBusiness, shop_sdk: AsyncDodoPayments, page: Page
) -> None:
    _, plan = await _products(shop_sdk)
    customer = await shop_sdk.customers.create(
        email=f"link-{uuid.uuid4().hex[:8]}@example.com", name="Ada"
    )
    created = await shop_sdk.subscriptions.create(
        billing={"country": "IT"},
        customer={"customer_id": customer.customer_id},
        product_id=plan,
        quantity=2,
        payment_link=True,
        return_url=_back(stack),
    )
    assert created.payment_link
    sid = created.subscription_id
    assert (await shop_sdk.subscriptions.retrieve(sid)).status == "pending"

    back = await _pay(page, stack, created.payment_link)
    assert back["status"] == "succeeded"

    async def active() -> bool:
        return (await shop_sdk.subscriptions.retrieve(sid)).status == "active"

    await eventually(active, within=30, message="not active after paying the link")
    payments = [p async for p in shop_sdk.payments.list(subscription_id=sid)]
    assert [(p.status, p.total_amount) for p in payments] == [("succeeded", 2400)]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
async def test_a_new_card_on_the_page_pays_the_dues_of_an_on_hold_subscription(
    stack: Stack, shop: PortalBusiness, shop_sdk: AsyncDodoPayments, page: Page
) -> None:
    _, plan = await _products(shop_sdk)
    customer = await shop_sdk.customers.create(
        email=f"hold-{uuid.uuid4().hex[:8]}@example.com", name="Ada"
    )
    async with aiohttp.ClientSession() as http:
        cards = Cards(stack, shop.business_id, http)
        doomed = await cards.save(customer.customer_id, "4000000000000341")
        created = await shop_sdk.subscriptions.create(
            billing={"country": "IT"},
            customer={"customer_id": customer.customer_id},
            product_id=plan,
            quantity=1,
            payment_method_id=doomed,
        )
        sid = created.subscription_id
        # Active: the page only saves the card, and the subscription switches to it.
        switch = await shop_sdk.subscriptions.update_payment_method(
            sid, payment_method={"type": "new", "return_url": _back(stack)}
        )
        assert switch.payment_link and switch.payment_id is None
        await page.goto(switch.payment_link)
        await expect(page.get_by_role("heading", name="Add a card")).to_be_visible()
        await page.get_by_label("Name on card").fill("Ada Lovelace")
        await page.get_by_label("Card number").fill("4000 0000 0000 0341")
        await page.get_by_label("Expiry date (MM/YY)").fill("11/33")
        await page.get_by_label("Security code (CVC)").fill("123")
        await page.locator("#submit").click()
        await page.wait_for_url(f"{stack.gateway_url}/openapi.json?**")
        swapped = dict(URL(page.url).query)["payment_method_id"]
        assert swapped != doomed

        async def switched() -> bool:
            return (await shop_sdk.subscriptions.retrieve(sid)).payment_method_id == swapped

        await eventually(switched, within=30, message="not switched to the card saved on the page")
        assert await _advance(stack, shop, http, 32 * DAY) == 200

    async def held() -> bool:
        return (await shop_sdk.subscriptions.retrieve(sid)).status == "on_hold"

    await eventually(held, within=30, message="not on_hold after a declined renewal")
    link = await shop_sdk.subscriptions.update_payment_method(
        sid, payment_method={"type": "new", "return_url": _back(stack)}
    )
    assert link.payment_link
    back = await _pay(page, stack, link.payment_link)
    assert back["status"] == "succeeded"

    async def active() -> Any:
        now = await shop_sdk.subscriptions.retrieve(sid)
        return now if now.status == "active" else None

    await eventually(active, within=30, message="not active after paying the dues")
    methods = await shop_sdk.customers.retrieve_payment_methods(customer.customer_id)
    assert back["payment_method_id"] in {m.payment_method_id for m in methods.items}
    payments = [p async for p in shop_sdk.payments.list(subscription_id=sid)]
    assert sorted(p.status for p in payments) == ["failed", "succeeded", "succeeded"]
    # The renewal that failed was charged to the card saved on the first page.
    assert [p.payment_method_id for p in payments if p.status == "failed"] == [swapped]
