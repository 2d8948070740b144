"""A signed-in customer edits the profile: name, phone, and a verified email change."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import grpc
import pytest
from billing.common.v1 import common_pb2
from billing.notifications.v1 import notifications_pb2, notifications_pb2_grpc
from billing_kit.testing import eventually
from devstack import Mailbox, Stack, message_link, message_links
from devstack.browser import heading, open_and_confirm_link, submit_with
from devstack.portal import PortalBusiness, unique_email
from dodopayments import AsyncDodoPayments
from playwright.async_api import BrowserContext, Page

pytestmark = pytest.mark.e2e

BrowserContextFactory = Callable[[], Awaitable[BrowserContext]]
# The gateway reuses a resolved session this long (GATEWAY_SESSION_CACHE_SECONDS) + slack.
SESSION_CACHE_LIMIT_SECONDS = 5 + 5


async def sign_in_to_profile(
    page: Page, stack: Stack, shop: PortalBusiness, sdk: AsyncDodoPayments, customer_id: str
) -> None:
    """A magic link deep-linked to the profile page, confirmed in this browser."""
    profile = f"/b/{shop.business_id}/profile"
    link = (
        await sdk.customers.customer_portal.create(customer_id, extra_query={"next": profile})
    ).link
    await open_and_confirm_link(page, link)
    await page.wait_for_url(f"{stack.portal_urls.test}{profile}")


async def recipient_email(stack: Stack, shop: PortalBusiness, customer_id: str) -> str:
    """The address notifications has for the customer (learned from customer.* events)."""
    async with grpc.aio.insecure_channel(stack.grpc_target("notifications")) as channel:
        stub = notifications_pb2_grpc.NotificationsServiceStub(channel)
        try:
            recipient = await stub.GetRecipient(
                notifications_pb2.GetRecipientRequest(
                    business_id=shop.business_id, mode=common_pb2.MODE_TEST, customer_id=customer_id
                ),
                timeout=5,
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return ""
            raise
        return str(recipient.email)


async def test_name_and_phone_are_saved_and_bad_phone_is_refused(
    stack: Stack, shop: PortalBusiness, shop_sdk: AsyncDodoPayments, page: Page
) -> None:
    customer = await shop_sdk.customers.create(email=unique_email("profile"), name="Ada Byron")
    await sign_in_to_profile(page, stack, shop, shop_sdk, customer.customer_id)
    assert await heading(page) == "Profile"
    assert await page.locator("input#name").input_value() == "Ada Byron"

    await page.locator("input#name").fill("Ada King")
    await page.locator("input#phone_number").fill("+39 333 123 4567")
    await submit_with(page, "button#save-profile")

    assert await page.locator("#profile-saved").is_visible()
    await page.reload()
    assert await page.locator("input#name").input_value() == "Ada King"
    assert await page.locator("input#phone_number").input_value() == "+393331234567"
    merchant_view = await shop_sdk.customers.retrieve(customer.customer_id)
    assert (merchant_view.name, merchant_view.phone_number) == ("Ada King", "+393331234567")

    await page.locator("input#name").fill("Someone Else")
    await page.locator("input#phone_number").fill("call me maybe")
    await submit_with(page, "button#save-profile")

    error = page.locator("p#phone_number-error")
    assert await error.is_visible()
    assert await error.get_attribute("role") == "alert"
    assert not await page.locator("#profile-saved").is_visible()
    unchanged = await shop_sdk.customers.retrieve(customer.customer_id)
    assert (unchanged.name, unchanged.phone_number) == ("Ada King", "+393331234567")


async def test_email_change_takes_effect_only_when_verified(
    stack: Stack,
    shop: PortalBusiness,
    shop_sdk: AsyncDodoPayments,
    mailbox: Mailbox,
    page: Page,
    browser_context_factory: BrowserContextFactory,
) -> None:
    old_email, new_email = unique_email("old"), unique_email("new")
    customer = await shop_sdk.customers.create(email=old_email, name="Grace Hopper")
    await sign_in_to_profile(page, stack, shop, shop_sdk, customer.customer_id)
    laptop = await (await browser_context_factory()).new_page()
    await sign_in_to_profile(laptop, stack, shop, shop_sdk, customer.customer_id)

    await page.locator("input#new_email").fill(new_email)
    await submit_with(page, "button#change-email")

    assert await page.locator("#email-change-sent").is_visible()
    notice = await mailbox.wait_for(old_email)
    # The old inbox is told, but cannot confirm the change for the new one.
    assert not [url for url in message_links(notice) if "/email-change/" in url]
    verify = message_link(
        await mailbox.wait_for(new_email), f"{stack.portal_urls.test}/email-change/cpt_"
    )
    # Nothing has changed yet.
    await page.reload()
    assert await page.locator("strong#current-email").inner_text() == old_email
    assert (await shop_sdk.customers.retrieve(customer.customer_id)).email == old_email

    shown = await page.goto(verify)
    assert shown is not None and shown.headers["referrer-policy"] == "no-referrer"
    assert await heading(page) == "Confirm your new email address"
    await submit_with(page, "button#confirm-email-change")

    assert await heading(page) == "Your email address has been changed"
    assert new_email in await page.locator("p#email-changed").inner_text()
    assert (await shop_sdk.customers.retrieve(customer.customer_id)).email == new_email
    await page.locator("a#back-to-profile").click()
    await page.wait_for_url(f"{stack.portal_urls.test}/b/{shop.business_id}/profile")
    assert await page.locator("strong#current-email").inner_text() == new_email

    async def laptop_signed_out() -> bool:
        await laptop.reload()
        return "/login/" in laptop.url

    await eventually(
        laptop_signed_out,
        within=SESSION_CACHE_LIMIT_SECONDS,
        interval=0.25,
        message="the other device's session never ended",
    )

    async def notifications_knows_new_email() -> bool:
        return await recipient_email(stack, shop, customer.customer_id) == new_email

    await eventually(
        notifications_knows_new_email,
        within=20,
        interval=0.25,
        message="customer.updated never reached notifications",
    )
    # The link is spent: opening it again says so.
    again = await page.goto(verify)
    assert again is not None and again.status == 410
