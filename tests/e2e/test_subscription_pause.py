"""Pause and resume end to end: the official SDK and a real browser against the whole stack.

Through the SDK: pause → the business's test clock passes the renewal date → no new
payment → resume → the next billing date is the resume time plus the part of the paid
period left at pause time (the rule in the subscriptions README), and the renewal
charges then, once. In the portal: Pause and Resume with their confirmation pages.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from billing_kit.testing import eventually
from devstack import Stack
from devstack.portal import PortalBusiness, unique_email
from dodopayments import AsyncDodoPayments, ConflictError, UnprocessableEntityError
from playwright.async_api import Page, expect

from .test_portal_subscriptions import add_cards, card_ids, sign_in_at, subscribed
from .test_subscriptions_api import BILLING, MONTHLY, Cards

pytestmark = pytest.mark.e2e
DAY = 86_400


@pytest_asyncio.fixture(loop_scope="session")
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def _advance(
    stack: Stack, shop: PortalBusiness, http: aiohttp.ClientSession, seconds: int
) -> datetime:
    """Move the business's test clock; its new now."""
    async with http.post(
        f"{stack.gateway_url}/test-helpers/clock/advance",
        json={"seconds": seconds},
        headers={"Authorization": f"Bearer {shop.key('test')}"},
    ) as reply:
        assert reply.status == 200, await reply.text()
        body: Any = await reply.json()
    return datetime.fromisoformat(body["now"])


async def _succeeded(sdk: AsyncDodoPayments, sid: str) -> list[Any]:
    return [p async for p in sdk.payments.list(subscription_id=sid) if p.status == "succeeded"]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
async def test_paused_past_the_renewal_nothing_is_charged_and_resume_follows_the_rule(
    stack: Stack, shop: PortalBusiness, shop_sdk: AsyncDodoPayments, http: aiohttp.ClientSession
) -> None:
    sdk = shop_sdk
    product = await sdk.products.create(
        name=f"Pausable {uuid.uuid4().hex[:6]}", tax_category="saas", price=MONTHLY
    )
    customer = await sdk.customers.create(email=unique_email("pause"), name="Ada")
    card = await Cards(stack, shop.business_id, http).save(customer.customer_id, "4242424242424242")

    async def subscribe() -> str:
        created = await sdk.subscriptions.create(
            billing=BILLING,
            customer={"customer_id": customer.customer_id},
            product_id=product.product_id,
            quantity=1,
            payment_method_id=card,
        )
        return created.subscription_id

    sid = await subscribe()
    control = await subscribe()  # never paused: shows the scheduler did run
    assert len(await _succeeded(sdk, sid)) == 1

    await _advance(stack, shop, http, 5 * DAY)
    paused = await sdk.subscriptions.update(sid, status="paused")
    assert paused.status == "paused" and paused.paused_at is not None
    left = paused.next_billing_date - paused.paused_at  # the unused part of the paid period
    assert 20 * DAY < left.total_seconds() < 27 * DAY

    # Illegal moves: pausing twice, and status with anything else (Dodo: alone).
    with pytest.raises(ConflictError) as twice:
        await sdk.subscriptions.update(sid, status="paused")
    assert twice.value.response.headers["x-should-retry"] == "false"
    with pytest.raises(UnprocessableEntityError):
        await sdk.subscriptions.update(sid, status="active", metadata={"a": "b"})

    # Well past the renewal date: the scheduler charges nothing.
    await _advance(stack, shop, http, 40 * DAY)

    async def control_renewed() -> bool:
        return len(await _succeeded(sdk, control)) >= 2

    await eventually(control_renewed, within=30, message="the scheduler renewed nothing")
    still = await sdk.subscriptions.retrieve(sid)
    assert still.status == "paused" and still.next_billing_date == paused.next_billing_date
    assert len(await _succeeded(sdk, sid)) == 1

    before_resume = await _advance(stack, shop, http, 1)
    resumed = await sdk.subscriptions.update(sid, status="active")
    assert resumed.status == "active" and resumed.paused_at is None
    resumed_at = resumed.next_billing_date - left  # the rule, solved for the resume time
    assert 0 <= (resumed_at - before_resume).total_seconds() < 60

    # The next charge comes at that date, once, for one period's price.
    await _advance(stack, shop, http, int(left.total_seconds()) + 120)

    async def renewed() -> bool:
        return len(await _succeeded(sdk, sid)) == 2

    await eventually(renewed, within=30, message="no renewal after the resumed period ended")

    # The payment is recorded before the scheduler writes the renewed period: wait for both.
    async def period_moved() -> bool:
        after = await sdk.subscriptions.retrieve(sid)
        return after.previous_billing_date == resumed.next_billing_date

    await eventually(period_moved, within=30, message="the renewed period never started")
    charges = await _succeeded(sdk, sid)
    assert [p.total_amount for p in charges] == [1200, 1200]


async def test_pause_and_resume_in_the_portal(
    stack: Stack, shop: PortalBusiness, shop_sdk: AsyncDodoPayments, page: Page
) -> None:
    customer = await shop_sdk.customers.create(email=unique_email("pauseui"), name="Ada Lovelace")
    base = f"/b/{shop.business_id}"
    await sign_in_at(page, stack, shop, shop_sdk, customer.customer_id, f"{base}/payment-methods")
    await add_cards(page, base, "4242424242424242")
    card = (await card_ids(shop_sdk, customer.customer_id))["4242"]
    sub_id = await subscribed(shop_sdk, customer.customer_id, card)
    detail = f"{stack.portal_urls.test}{base}/subscriptions/{sub_id}"

    await page.goto(detail)
    await page.locator("#pause-subscription").click()
    await page.wait_for_url(f"{detail}/pause")
    await expect(page.locator("#pause-terms")).to_contain_text("Nothing is charged")
    await page.locator("#confirm-pause").click()
    await page.wait_for_url(f"{detail}?done=paused")
    await expect(page.locator("#notice")).to_contain_text("paused")
    await expect(page.locator(".page-heading")).to_contain_text("Paused")
    paused = await shop_sdk.subscriptions.retrieve(sub_id)
    assert paused.status == "paused" and paused.paused_at is not None

    await page.locator("#resume-subscription").click()
    await page.wait_for_url(f"{detail}/resume")
    await expect(page.locator("#resume-terms")).to_contain_text("left of the period you paid for")
    await page.locator("#confirm-resume").click()
    await page.wait_for_url(f"{detail}?done=resumed")
    await expect(page.locator("#notice")).to_contain_text("resumed")
    resumed = await shop_sdk.subscriptions.retrieve(sub_id)
    assert resumed.status == "active" and resumed.paused_at is None
    # Resumed moments after the pause: the paid period is (to the minute) where it was.
    moved = (resumed.next_billing_date - paused.next_billing_date).total_seconds()
    assert 0 <= moved < 600
    await expect(page.locator("#pause-subscription")).to_be_visible()
