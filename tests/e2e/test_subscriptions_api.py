"""Merchants run subscriptions with the official Dodo SDK against the whole stack.

Cards are saved the way a customer saves one: a payments hosted page (opened
for the customer over payments' gRPC contract) submitted over HTTP. Time moves
with the business's test clock (``POST /test-helpers/clock/advance``); the
subscriptions service's own scheduler renews and holds.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from billing_kit.testing import eventually
from devstack import Stack
from devstack.demo_catalogue import save_test_card
from devstack.portal import PortalBusiness, create_portal_business
from dodopayments import (
    AsyncDodoPayments,
    ConflictError,
    NotFoundError,
    UnprocessableEntityError,
)

from .conftest import merchant_sdk

pytestmark = pytest.mark.e2e
DAY = 86_400
BILLING: Any = {"country": "IT", "city": "Roma"}
MONTHLY: Any = {
    "type": "recurring_price",
    "currency": "EUR",
    "price": 1200,
    "payment_frequency_count": 1,
    "payment_frequency_interval": "Month",
    "subscription_period_count": 1,
    "subscription_period_interval": "Year",
}


class Cards:
    """Saves test cards for a customer through payments' hosted page."""

    def __init__(self, stack: Stack, business_id: str, http: aiohttp.ClientSession) -> None:
        self.stack = stack
        self.business_id = business_id
        self.http = http

    async def save(self, customer_id: str, number: str) -> str:
        return await save_test_card(
            self.http, self.stack.grpc_target("payments"), self.business_id, customer_id, number
        )


@pytest_asyncio.fixture(loop_scope="session")
async def world(
    stack: Stack, shop: PortalBusiness
) -> AsyncIterator[tuple[AsyncDodoPayments, Cards, aiohttp.ClientSession]]:
    async with merchant_sdk(stack, shop) as sdk, aiohttp.ClientSession() as http:
        yield sdk, Cards(stack, shop.business_id, http), http


async def _advance(
    stack: Stack, shop: PortalBusiness, http: aiohttp.ClientSession, seconds: int
) -> int:
    async with http.post(
        f"{stack.gateway_url}/test-helpers/clock/advance",
        json={"seconds": seconds},
        headers={"Authorization": f"Bearer {shop.key('test')}"},
    ) as reply:
        return reply.status


async def _setup(sdk: AsyncDodoPayments, cards: Cards) -> tuple[str, str, str]:
    product = await sdk.products.create(
        name=f"Plan {uuid.uuid4().hex[:6]}", tax_category="saas", price=MONTHLY
    )
    customer = await sdk.customers.create(
        email=f"sub-{uuid.uuid4().hex[:8]}@example.com", name="Ada"
    )
    good = await cards.save(customer.customer_id, "4242424242424242")
    return product.product_id, customer.customer_id, good


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
async def test_create_cancel_undo_renew_and_hold_then_reactivate(
    stack: Stack,
    shop: PortalBusiness,
    world: tuple[AsyncDodoPayments, Cards, aiohttp.ClientSession],
) -> None:
    sdk, cards, http = world
    product_id, customer_id, good = await _setup(sdk, cards)
    created = await sdk.subscriptions.create(
        billing=BILLING,
        customer={"customer_id": customer_id},
        product_id=product_id,
        quantity=1,
        payment_method_id=good,
    )
    sid = created.subscription_id
    assert created.payment_id.startswith("pay_")
    sub = await sdk.subscriptions.retrieve(sid)
    assert (sub.status, sub.recurring_pre_tax_amount, sub.currency) == ("active", 1200, "EUR")

    assert (
        await sdk.subscriptions.update(sid, cancel_at_next_billing_date=True)
    ).cancel_at_next_billing_date
    assert not (
        await sdk.subscriptions.update(sid, cancel_at_next_billing_date=False)
    ).cancel_at_next_billing_date

    first_period_end = sub.next_billing_date
    assert await _advance(stack, shop, http, 32 * DAY) == 200

    async def renewed() -> bool:
        now = await sdk.subscriptions.retrieve(sid)
        return now.status == "active" and now.previous_billing_date == first_period_end

    await eventually(renewed, within=30, message="not renewed after the clock moved")

    # A card that saves but declines every charge takes over; the next renewal holds.
    doomed = await cards.save(customer_id, "4000000000000341")
    await sdk.subscriptions.update_payment_method(
        sid, payment_method={"type": "existing", "payment_method_id": doomed}
    )
    assert await _advance(stack, shop, http, 32 * DAY) == 200

    async def held() -> bool:
        return (await sdk.subscriptions.retrieve(sid)).status == "on_hold"

    await eventually(held, within=30, message="not on_hold after a declined renewal")

    paid = await sdk.subscriptions.update_payment_method(
        sid, payment_method={"type": "existing", "payment_method_id": good}
    )
    assert paid.payment_id
    again = await sdk.subscriptions.update_payment_method(
        sid, payment_method={"type": "existing", "payment_method_id": good}
    )
    assert again.payment_id is None  # active now: the repeat only switches the method
    assert (await sdk.subscriptions.retrieve(sid)).status == "active"
    payments = [p async for p in sdk.payments.list(subscription_id=sid)]
    succeeded = [p for p in payments if p.status == "succeeded"]
    assert len(succeeded) == 3  # first period, one renewal, exactly one dues payment


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
async def test_an_illegal_change_is_409_and_not_to_be_retried(
    stack: Stack, world: tuple[AsyncDodoPayments, Cards, aiohttp.ClientSession]
) -> None:
    sdk, cards, _ = world
    product_id, customer_id, good = await _setup(sdk, cards)
    created = await sdk.subscriptions.create(
        billing=BILLING,
        customer={"customer_id": customer_id},
        product_id=product_id,
        quantity=1,
        payment_method_id=good,
    )
    await sdk.subscriptions.update(created.subscription_id, status="cancelled")
    with pytest.raises(ConflictError) as err:
        await sdk.subscriptions.update(created.subscription_id, status="cancelled")
    assert err.value.response.headers["x-should-retry"] == "false"
    with pytest.raises(NotFoundError):
        await sdk.subscriptions.retrieve("sub_nope")
    async with stack.auth_admin() as admin:
        other = await create_portal_business(admin, f"Other {uuid.uuid4().hex[:6]}")
    async with merchant_sdk(stack, other) as foreign:
        with pytest.raises(NotFoundError):
            await foreign.subscriptions.retrieve(created.subscription_id)
        with pytest.raises(NotFoundError):
            await foreign.subscriptions.update(created.subscription_id, metadata={"a": "b"})
        assert [s async for s in foreign.subscriptions.list()] == []
    with pytest.raises(UnprocessableEntityError) as unsupported:
        await sdk.subscriptions.create(
            billing=BILLING,
            customer={"customer_id": customer_id},
            product_id=product_id,
            quantity=1,
            payment_link=True,
        )
    body: Any = unsupported.value.body
    # A payment link needs somewhere to send the customer back to: refused, nothing made.
    assert "return_url" in [e["field"] for e in body["errors"]]
    listed = [s async for s in sdk.subscriptions.list(customer_id=customer_id)]
    assert [s.subscription_id for s in listed] == [created.subscription_id]


async def test_a_live_key_has_no_test_clock(
    stack: Stack,
    shop: PortalBusiness,
    world: tuple[AsyncDodoPayments, Cards, aiohttp.ClientSession],
) -> None:
    _, _, http = world
    async with http.post(
        f"{stack.gateway_url}/test-helpers/clock/advance",
        json={"seconds": 60},
        headers={"Authorization": f"Bearer {shop.key('live')}"},
    ) as reply:
        assert reply.status == 404


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
async def test_a_scheduled_cancel_ends_at_the_period_end_and_cancel_now_at_once(
    stack: Stack,
    shop: PortalBusiness,
    world: tuple[AsyncDodoPayments, Cards, aiohttp.ClientSession],
) -> None:
    sdk, cards, http = world
    product_id, customer_id, good = await _setup(sdk, cards)

    async def subscribe() -> str:
        created = await sdk.subscriptions.create(
            billing=BILLING,
            customer={"customer_id": customer_id},
            product_id=product_id,
            quantity=1,
            payment_method_id=good,
        )
        return created.subscription_id

    at_end, now = await subscribe(), await subscribe()
    scheduled = await sdk.subscriptions.update(
        at_end, cancel_at_next_billing_date=True, cancellation_feedback="switched_service"
    )
    assert (scheduled.status, scheduled.cancel_at_next_billing_date) == ("active", True)
    ended = await sdk.subscriptions.update(now, status="cancelled")
    assert ended.status == "cancelled" and ended.cancelled_at is not None
    assert (await sdk.subscriptions.retrieve(now)).status == "cancelled"

    assert await _advance(stack, shop, http, 32 * DAY) == 200

    async def cancelled_at_period_end() -> bool:
        return (await sdk.subscriptions.retrieve(at_end)).status == "cancelled"

    await eventually(
        cancelled_at_period_end, within=30, message="the scheduled cancel never ended it"
    )
    done = await sdk.subscriptions.retrieve(at_end)
    assert done.cancelled_at is not None and done.cancellation_feedback == "switched_service"
    assert (await sdk.subscriptions.retrieve(now)).status == "cancelled"
    for sid in (at_end, now):
        payments = [p async for p in sdk.payments.list(subscription_id=sid)]
        # Only the first period was paid: no renewal after either cancellation.
        assert [p.status for p in payments] == ["succeeded"], [
            (p.status, p.payment_id) for p in payments
        ]
