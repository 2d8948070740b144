"""The unified portal: one sign-in with an email shows every business it bought from."""

from __future__ import annotations

import pytest
from devstack import Mailbox, Stack, message_link
from devstack.browser import heading, open_and_confirm_link, request_sign_in_link
from devstack.portal import PortalBusiness, create_portal_business, unique_email
from dodopayments import AsyncDodoPayments
from playwright.async_api import Page

pytestmark = pytest.mark.e2e


async def add_customer(
    stack: Stack, business: PortalBusiness, email: str, name: str, mode: str = "live"
) -> str:
    """The merchant creates a customer with the official SDK; returns its id."""
    key = business.live_key if mode == "live" else business.test_key
    async with AsyncDodoPayments(
        bearer_token=key, base_url=stack.gateway_url, max_retries=0
    ) as sdk:
        customer = await sdk.customers.create(email=email, name=name)
    return str(customer.customer_id)


async def test_one_email_sees_its_businesses_and_nothing_else(
    stack: Stack, mailbox: Mailbox, page: Page
) -> None:
    async with stack.auth_admin() as admin:
        first = await create_portal_business(admin, "Alpha Books")
        second = await create_portal_business(admin, "Beta Music")
        third = await create_portal_business(admin, "Gamma Games")
    email, stranger = unique_email("buyer"), unique_email("stranger")
    await add_customer(stack, first, email, "Ada Lovelace")
    # Same person, different capitals at the second shop: still one identity.
    await add_customer(stack, second, email.upper(), "Ada L.")
    await add_customer(stack, third, stranger, "Somebody Else")
    # A test-mode purchase is not a real one: the unified portal is live only.
    await add_customer(stack, third, email, "Ada Test", mode="test")

    await request_sign_in_link(page, f"{stack.portal_urls.unified}/login", email)
    assert await heading(page) == "Check your email"
    link = message_link(await mailbox.wait_for(email), f"{stack.portal_urls.unified}/link/cpt_")
    await open_and_confirm_link(page, link)

    await page.wait_for_url(f"{stack.portal_urls.unified}/")
    assert await heading(page) == "Your accounts"
    accounts = page.locator("ul#accounts > li.account")
    shown = {await item.get_attribute("data-business-id") for item in await accounts.all()}
    assert shown == {first.business_id, second.business_id}
    text = await page.locator("main").inner_text()
    assert first.name in text and second.name in text
    assert third.name not in text and "Somebody Else" not in text and "Ada Test" not in text

    # Each business opens without signing in again, in live mode.
    for business in (first, second):
        await page.goto(f"{stack.portal_urls.unified}/")
        await page.locator(f"button#open-{business.business_id}").click()
        await page.wait_for_url(f"{stack.portal_urls.live}/b/{business.business_id}/")
        assert await heading(page) == "Welcome"
        assert business.name in await page.locator("header").inner_text()
        assert not await page.locator(".test-banner").count()
    await page.goto(f"{stack.portal_urls.live}/b/{second.business_id}/profile")
    assert await page.locator("input#name").input_value() == "Ada L."

    # The third business's portal is not open to this browser.
    await page.goto(f"{stack.portal_urls.live}/b/{third.business_id}/")
    assert page.url.startswith(f"{stack.portal_urls.live}/login/{third.business_id}")
