"""The unified portal's billing pages: every business of one email on one page.

One email bought a subscription at two businesses, each paid with a card saved
there (in live mode: the unified portal is live only). After one unified
sign-in, the subscriptions page and the payments page show both, each row
with its business's name; a third business's customer with another email and
a test-mode customer with the same email are not shown. The row's actions
(Edit, cancel) work from the unified portal itself, without switching portals.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from devstack import Mailbox, Stack, message_link
from devstack.browser import open_and_confirm_link, request_sign_in_link
from devstack.demo_catalogue import save_test_card
from devstack.portal import Mode, PortalBusiness, create_portal_business, unique_email
from playwright.async_api import Page, expect

from .conftest import merchant_sdk

pytestmark = pytest.mark.e2e

BILLING: Any = {"country": "IT", "city": "Milano"}
MONTHLY: Any = {
    "type": "recurring_price",
    "currency": "EUR",
    "price": 1500,
    "payment_frequency_count": 1,
    "payment_frequency_interval": "Month",
    "subscription_period_count": 1,
    "subscription_period_interval": "Year",
}


async def save_card(
    stack: Stack, business: PortalBusiness, mode: Mode, customer_id: str, number: str
) -> str:
    """A card saved the way the customer saves one: payments' hosted page, submitted over HTTP."""
    async with aiohttp.ClientSession() as http:
        return await save_test_card(
            http,
            stack.grpc_target("payments"),
            business.business_id,
            customer_id,
            number,
            mode=mode,
        )


@dataclass(frozen=True)
class Purchase:
    """A customer of a business, its saved cards and a subscription paid with the first."""

    business: PortalBusiness
    customer_id: str
    cards: list[str]
    subscription_id: str
    payment_id: str


async def purchase(
    stack: Stack, business: PortalBusiness, email: str, mode: Mode = "live", *, cards: int = 1
) -> Purchase:
    """The merchant's customer, ``cards`` saved cards and a subscription on the first one."""
    async with merchant_sdk(stack, business, mode) as sdk:
        customer = await sdk.customers.create(email=email, name="Ada Lovelace")
        saved = [
            await save_card(stack, business, mode, customer.customer_id, "4242424242424242")
            for _ in range(cards)
        ]
        plan = await sdk.products.create(
            name=f"{business.name} plan", tax_category="saas", price=MONTHLY
        )
        sub = await sdk.subscriptions.create(
            billing=BILLING,
            customer={"customer_id": customer.customer_id},
            product_id=plan.product_id,
            quantity=1,
            extra_body={"payment_method_id": saved[0]},
        )
    assert sub.payment_id, "the subscription was not charged at once"
    return Purchase(business, customer.customer_id, saved, sub.subscription_id, sub.payment_id)


async def live_subscription(stack: Stack, bought: Purchase) -> Any:
    async with merchant_sdk(stack, bought.business, "live") as sdk:
        return await sdk.subscriptions.retrieve(bought.subscription_id)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
async def test_one_sign_in_lists_and_manages_the_billing_of_every_business(
    stack: Stack, mailbox: Mailbox, page: Page
) -> None:
    suffix = uuid.uuid4().hex[:4]
    async with stack.auth_admin() as admin:
        first = await create_portal_business(admin, f"Alpha Books {suffix}")
        second = await create_portal_business(admin, f"Beta Music {suffix}")
        third = await create_portal_business(admin, f"Gamma Games {suffix}")
    email = unique_email("allbilling")
    at_first = await purchase(stack, first, email, cards=2)
    at_second = await purchase(stack, second, email.upper())
    stranger = await purchase(stack, third, unique_email("stranger"))
    test_mode = await purchase(stack, third, email, mode="test")
    invisible = (stranger, test_mode)

    await request_sign_in_link(page, f"{stack.portal_urls.unified}/login", email)
    # Receipts of the purchases reach the same inbox: take the sign-in email.
    signed = await mailbox.wait_for(email, subject_contains="sign-in link", within_seconds=30)
    link = message_link(signed, f"{stack.portal_urls.unified}/link/cpt_")
    await open_and_confirm_link(page, link)
    await page.wait_for_url(f"{stack.portal_urls.unified}/")

    # One subscriptions page: both rows, each with its business's name.
    await page.goto(f"{stack.portal_urls.unified}/subscriptions")
    for bought in (at_first, at_second):
        row = page.locator(
            f'#current-subscriptions li[data-subscription-id="{bought.subscription_id}"]'
        )
        await expect(row.locator(".business-tag-name")).to_have_text(bought.business.name)
        await expect(row.locator('[data-status="active"]')).to_be_visible()
        await expect(row).to_contain_text("Visa •••• 4242")
    assert await page.locator("li[data-subscription-id]").count() == 2
    text = await page.locator("main").inner_text()
    assert third.name not in text
    for other in invisible:
        assert await page.locator(f'[data-subscription-id="{other.subscription_id}"]').count() == 0

    # One payments page: both first-period payments, each with its business's name.
    await page.goto(f"{stack.portal_urls.unified}/payments")
    for bought in (at_first, at_second):
        row = page.locator(f"#payment-{bought.payment_id}")
        await expect(row.locator(".business-tag-name")).to_have_text(bought.business.name)
        await expect(row).to_contain_text("€15.00")
    assert await page.locator("#payments tbody tr").count() == 2
    assert third.name not in await page.locator("main").inner_text()
    for other in invisible:
        assert await page.locator(f"#payment-{other.payment_id}").count() == 0

    # Edit on the first business's row: switch to its other card, still on the unified portal.
    spare = at_first.cards[1]
    await page.goto(f"{stack.portal_urls.unified}/subscriptions")
    await page.locator(f"#edit-{at_first.subscription_id}").click()
    unified = stack.portal_urls.unified
    edit_url = f"{unified}/b/{first.business_id}/subscriptions/{at_first.subscription_id}"
    await page.wait_for_url(f"{edit_url}/payment-method")
    await page.locator(f"#method-{spare}").check()
    await page.locator("#confirm-changes").click()
    await page.wait_for_url(f"{edit_url}?done=switched")
    assert (await live_subscription(stack, at_first)).payment_method_id == spare

    # Cancel the second business's subscription at period end, from its row's detail page.
    await page.goto(f"{stack.portal_urls.unified}/subscriptions")
    row = page.locator(f'li[data-subscription-id="{at_second.subscription_id}"]')
    await row.locator(".sub-name a").click()
    detail = f"{unified}/b/{second.business_id}/subscriptions/{at_second.subscription_id}"
    await page.wait_for_url(detail)
    await page.locator("#cancel-subscription").click()
    await page.locator("#when-period-end").check()
    await page.locator("#confirm").check()
    await page.locator("#confirm-cancel").click()
    await page.wait_for_url(f"{detail}?done=scheduled")
    assert (await live_subscription(stack, at_second)).cancel_at_next_billing_date is True
    await page.goto(f"{stack.portal_urls.unified}/subscriptions")
    await expect(
        page.locator(f'li[data-subscription-id="{at_second.subscription_id}"]')
    ).to_contain_text("Cancels at period end")

    # Another business's id in a unified URL is not found, whatever the subscription.
    reply = await page.goto(
        f"{stack.portal_urls.unified}/b/{third.business_id}/subscriptions/{stranger.subscription_id}"
    )
    assert reply is not None and reply.status == 404
