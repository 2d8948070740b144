"""A customer gets into the portal without a password, in a real browser.

Every way in: the static link (email -> link from the mailbox), the merchant's
magic link from the official SDK, a used link, an expired link (auth's test
clock moved forward), an unknown email, and logout.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
import pytest
from billing.common.v1 import test_clock_pb2, test_clock_pb2_grpc
from devstack import Mailbox, Stack, message_link, message_links
from devstack.browser import heading, open_and_confirm_link, request_sign_in_link, submit_with
from devstack.portal import PortalBusiness, PortalHttp, business_cookie, unique_email
from dodopayments import AsyncDodoPayments
from playwright.async_api import BrowserContext, Page

pytestmark = pytest.mark.e2e

SIGN_IN_LINK_TTL_SECONDS = 15 * 60
BrowserContextFactory = Callable[[], Awaitable[BrowserContext]]


def portal_home(stack: Stack, business: PortalBusiness, mode: str = "test") -> str:
    """Where a signed-in customer lands."""
    base = stack.portal_urls.live if mode == "live" else stack.portal_urls.test
    return f"{base}/b/{business.business_id}/"


async def assert_in_portal(page: Page, stack: Stack, business: PortalBusiness) -> None:
    """The browser shows the branded portal home of this business, in test mode."""
    assert page.url == portal_home(stack, business)
    assert await heading(page) == "Welcome"
    assert business.name in await page.locator("header").inner_text()
    for section in ("subscriptions", "invoices", "payment-methods", "license-keys", "profile"):
        assert await page.locator(f"a#nav-{section}").is_visible()
    assert await page.locator(".test-banner").is_visible()


async def session_cookie(context: BrowserContext, business: PortalBusiness) -> dict[str, object]:
    """The browser's session cookie for this business (AssertionError if there is none)."""
    name = business_cookie("test", business.business_id)
    cookies = [c for c in await context.cookies() if c["name"] == name]
    assert cookies, f"no {name} cookie in the browser"
    return dict(cookies[0])


async def create_customer(sdk: AsyncDodoPayments, label: str, name: str = "Ada Lovelace") -> str:
    """A customer with a fresh address; returns the address."""
    email = unique_email(label)
    await sdk.customers.create(email=email, name=name)
    return email


@contextlib.asynccontextmanager
async def auth_clock(stack: Stack) -> AsyncIterator[test_clock_pb2_grpc.TestClockServiceStub]:
    """Auth's movable clock (e2e stack only); always put back to real time afterwards."""
    async with grpc.aio.insecure_channel(stack.grpc_target("auth")) as channel:
        clock = test_clock_pb2_grpc.TestClockServiceStub(channel)
        try:
            yield clock
        finally:
            await clock.ResetClock(test_clock_pb2.ResetClockRequest(), timeout=5)


async def test_static_link_email_link_portal(
    stack: Stack,
    shop: PortalBusiness,
    shop_sdk: AsyncDodoPayments,
    mailbox: Mailbox,
    page: Page,
    context: BrowserContext,
) -> None:
    email = await create_customer(shop_sdk, "static")
    login_url = f"{stack.portal_urls.test}/login/{shop.business_id}"

    # Typed as people do: capitals and stray spaces still find the customer.
    answer = await request_sign_in_link(page, login_url, f"  {email.upper()} ")

    assert answer is not None and answer.status == 200
    assert await heading(page) == "Check your email"
    message = await mailbox.wait_for(email)
    assert shop.name in message.subject
    link = message_link(message, f"{stack.portal_urls.test}/link/cpt_")

    confirm = await page.goto(link)
    assert confirm is not None and confirm.status == 200
    assert await heading(page) == "Continue to your portal"
    # A token page never leaks its URL nor lands in a cache.
    assert confirm.headers["referrer-policy"] == "no-referrer"
    assert "no-store" in confirm.headers["cache-control"]
    csp = confirm.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert confirm.headers["x-content-type-options"] == "nosniff"
    # Opening the link (as a mail scanner would) did not sign anyone in.
    assert not [c for c in await context.cookies() if c["name"].startswith("__Host-cp_")]

    await page.locator("button#confirm-link").click()
    await page.wait_for_url(portal_home(stack, shop))

    await assert_in_portal(page, stack, shop)
    cookie = await session_cookie(context, shop)
    assert cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    assert cookie["path"] == "/" and str(cookie["value"]).startswith("cps_")


async def test_magic_link_from_the_sdk_opens_the_portal_then_is_used_up(
    stack: Stack,
    shop: PortalBusiness,
    shop_sdk: AsyncDodoPayments,
    mailbox: Mailbox,
    page: Page,
    browser_context_factory: BrowserContextFactory,
) -> None:
    email = unique_email("magic")
    customer = await shop_sdk.customers.create(email=email, name="Grace Hopper")
    return_url = "https://merchant.example/account"

    session = await shop_sdk.customers.customer_portal.create(
        customer.customer_id, return_url=return_url
    )

    assert session.link.startswith(f"{stack.portal_urls.test}/link/cpt_")
    await open_and_confirm_link(page, session.link)
    await page.wait_for_url(portal_home(stack, shop))
    await assert_in_portal(page, stack, shop)
    back = page.locator("a#return-to-business")
    assert await back.get_attribute("href") == return_url
    assert f"Return to {shop.name}" in " ".join((await back.inner_text()).split())
    assert await mailbox.count(email) == 0  # nobody typed an email; nothing was sent

    # The same link again, from another browser: it has been used.
    other_context = await browser_context_factory()
    other = await other_context.new_page()
    used = await other.goto(session.link)
    assert used is not None and used.status == 410
    assert await other.locator("h1#page-title").get_attribute("data-state") == "used"
    assert await heading(other) == "This link has already been used"

    await submit_with(other, "button#request-fresh-link")
    assert await heading(other) == "Check your email"
    fresh = message_link(await mailbox.wait_for(email), f"{stack.portal_urls.test}/link/cpt_")
    assert fresh != session.link

    await open_and_confirm_link(other, fresh)
    await other.wait_for_url(portal_home(stack, shop))
    await assert_in_portal(other, stack, shop)
    # The fresh link keeps the merchant's return URL.
    assert await other.locator("a#return-to-business").get_attribute("href") == return_url


async def test_magic_link_with_next_deep_links_into_the_portal(
    stack: Stack, shop: PortalBusiness, shop_sdk: AsyncDodoPayments, page: Page
) -> None:
    customer = await shop_sdk.customers.create(email=unique_email("deep"), name="Alan Turing")
    target = f"/b/{shop.business_id}/profile"

    session = await shop_sdk.customers.customer_portal.create(
        customer.customer_id, extra_query={"next": target}
    )
    await open_and_confirm_link(page, session.link)

    await page.wait_for_url(f"{stack.portal_urls.test}{target}")
    assert await heading(page) == "Profile"
    assert await page.locator("input#name").input_value() == "Alan Turing"


async def test_magic_link_refuses_a_next_outside_the_portal(
    shop: PortalBusiness, shop_sdk: AsyncDodoPayments
) -> None:
    customer = await shop_sdk.customers.create(email=unique_email("evil"), name="Eve")

    for target in ("https://evil.example/", "//evil.example/b/", "/b/bus_other/profile"):
        with pytest.raises(Exception) as refused:
            await shop_sdk.customers.customer_portal.create(
                customer.customer_id, extra_query={"next": target}
            )
        assert getattr(refused.value, "status_code", None) == 422, target


async def test_expired_link_offers_a_new_one(
    stack: Stack,
    shop: PortalBusiness,
    shop_sdk: AsyncDodoPayments,
    mailbox: Mailbox,
    page: Page,
) -> None:
    email = await create_customer(shop_sdk, "expired")
    await request_sign_in_link(page, f"{stack.portal_urls.test}/login/{shop.business_id}", email)
    link = message_link(await mailbox.wait_for(email), f"{stack.portal_urls.test}/link/cpt_")

    async with auth_clock(stack) as clock:
        # Sign-in links live 15 minutes; move auth one second past that.
        await clock.AdvanceClock(
            test_clock_pb2.AdvanceClockRequest(seconds=SIGN_IN_LINK_TTL_SECONDS + 1), timeout=5
        )
        expired = await page.goto(link)

        assert expired is not None and expired.status == 410
        assert await page.locator("h1#page-title").get_attribute("data-state") == "expired"
        assert await heading(page) == "This link has expired"

        await submit_with(page, "button#request-fresh-link")
        assert await heading(page) == "Check your email"
        fresh = message_link(
            await mailbox.wait_for(email, skip=1), f"{stack.portal_urls.test}/link/cpt_"
        )
        await open_and_confirm_link(page, fresh)
        await page.wait_for_url(portal_home(stack, shop))
        await assert_in_portal(page, stack, shop)


async def test_unknown_email_gets_the_same_page_and_a_not_found_email(
    stack: Stack,
    shop: PortalBusiness,
    shop_sdk: AsyncDodoPayments,
    mailbox: Mailbox,
    page: Page,
) -> None:
    login_url = f"{stack.portal_urls.test}/login/{shop.business_id}"
    known = await create_customer(shop_sdk, "known")
    unknown = unique_email("stranger")

    known_answer = await request_sign_in_link(page, login_url, known)
    known_page = await page.locator("main").inner_text()
    unknown_answer = await request_sign_in_link(page, login_url, unknown)
    unknown_page = await page.locator("main").inner_text()

    assert known_answer is not None and unknown_answer is not None
    assert known_answer.status == unknown_answer.status == 200
    assert unknown_page == known_page
    assert await heading(page) == "Check your email"

    notice = await mailbox.wait_for(unknown)
    assert shop.name in notice.subject
    assert "no purchases" in notice.text().lower()
    assert not [url for url in message_links(notice) if "/link/" in url]
    sign_in = await mailbox.wait_for(known)
    message_link(sign_in, f"{stack.portal_urls.test}/link/cpt_")


async def test_logout_ends_the_session(
    stack: Stack, shop: PortalBusiness, shop_sdk: AsyncDodoPayments, page: Page, http: PortalHttp
) -> None:
    customer = await shop_sdk.customers.create(email=unique_email("bye"), name="Ada")
    link = (await shop_sdk.customers.customer_portal.create(customer.customer_id)).link
    await open_and_confirm_link(page, link)
    await page.wait_for_url(portal_home(stack, shop))
    cookie_value = str((await session_cookie(page.context, shop))["value"])

    await page.locator("button#logout").click()

    await page.wait_for_url(f"{stack.portal_urls.test}/login/{shop.business_id}?signed_out=1")
    assert await page.locator("div#signed-out").is_visible()
    assert not [c for c in await page.context.cookies() if c["name"].startswith("__Host-cp_")]
    # Back to the portal: the sign-in page, not the portal.
    await page.goto(portal_home(stack, shop))
    assert page.url.startswith(f"{stack.portal_urls.test}/login/{shop.business_id}")
    # The old cookie, replayed by hand, is dead at once (logout drops the gateway's cache too).
    replayed = await http.get(
        portal_home(stack, shop), cookies={business_cookie("test", shop.business_id): cookie_value}
    )
    assert replayed.status == 303
    assert replayed.location.startswith(f"{stack.portal_urls.test}/login/{shop.business_id}")


async def focus_by_tab(page: Page, selector: str, limit: int = 15) -> None:
    """Press Tab until ``selector`` has the focus, as a keyboard-only customer does."""
    target = page.locator(selector)
    for _ in range(limit):
        await page.keyboard.press("Tab")
        if await target.evaluate("element => element === document.activeElement"):
            return
    pytest.fail(f"{selector} never got the focus in {limit} Tab presses")


async def test_italian_keyboard_only_sign_in(
    stack: Stack,
    shop: PortalBusiness,
    shop_sdk: AsyncDodoPayments,
    mailbox: Mailbox,
    page: Page,
) -> None:
    email = await create_customer(shop_sdk, "tastiera", name="Ada Lovelace")

    await page.goto(f"{stack.portal_urls.test}/login/{shop.business_id}?lang=it")
    assert await heading(page) == f"Accedi a {shop.name}"
    assert await page.locator("html").get_attribute("lang") == "it"
    assert await page.locator("label[for=email]").count() == 1
    await focus_by_tab(page, "input#email")
    await page.keyboard.type(email)
    async with page.expect_response(lambda r: r.request.method == "POST"):
        await page.keyboard.press("Enter")
    await page.wait_for_load_state()

    assert await heading(page) == "Controlla la tua email"
    message = await mailbox.wait_for(email)
    assert message.subject == f"Il tuo link di accesso a {shop.name}"
    link = message_link(message, f"{stack.portal_urls.test}/link/cpt_")
    await page.goto(link)
    assert await heading(page) == "Accedi al tuo portale"
    await focus_by_tab(page, "button#confirm-link")
    await page.keyboard.press("Enter")
    await page.wait_for_url(portal_home(stack, shop))
    assert await heading(page) == "Benvenuto"
