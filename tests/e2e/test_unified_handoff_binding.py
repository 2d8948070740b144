"""Login CSRF through the unified portal's hand-off, tried in real browsers.

An attacker signs in to the unified portal with their own email, presses
"Open" on a business, stops at the redirect to the live site and sends that
hand-off link to a victim. Opened in the victim's browser it must not sign
the victim in to the attacker's account: the hand-off is bound to the browser
that pressed "Open".
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from devstack import Mailbox, Stack, message_link
from devstack.browser import heading, open_and_confirm_link, request_sign_in_link
from devstack.portal import PortalBusiness, business_cookie, create_portal_business, unique_email
from dodopayments import AsyncDodoPayments
from playwright.async_api import BrowserContext, Page

pytestmark = pytest.mark.e2e

BrowserContextFactory = Callable[[], Awaitable[BrowserContext]]


async def sign_in_unified(stack: Stack, mailbox: Mailbox, page: Page, email: str) -> None:
    """The unified portal's sign-in, as a customer does it, up to the accounts page."""
    await request_sign_in_link(page, f"{stack.portal_urls.unified}/login", email)
    link = message_link(await mailbox.wait_for(email), f"{stack.portal_urls.unified}/link/cpt_")
    await open_and_confirm_link(page, link)
    await page.wait_for_url(f"{stack.portal_urls.unified}/")


async def live_session_cookies(context: BrowserContext) -> list[str]:
    return [c["name"] for c in await context.cookies() if c["name"].startswith("__Host-cp_live")]


async def test_a_handoff_link_opened_in_another_browser_does_not_sign_it_in(
    stack: Stack, mailbox: Mailbox, browser_context_factory: BrowserContextFactory
) -> None:
    async with stack.auth_admin() as admin:
        shop: PortalBusiness = await create_portal_business(admin, "Handoff Trap")
    attacker_email, victim_email = unique_email("mallory"), unique_email("victim")
    async with AsyncDodoPayments(
        bearer_token=shop.live_key, base_url=stack.gateway_url, max_retries=0
    ) as sdk:
        await sdk.customers.create(email=attacker_email, name="Mallory")
        await sdk.customers.create(email=victim_email, name="Victim")
    attacker_context = await browser_context_factory()
    victim_context = await browser_context_factory()
    attacker, victim = await attacker_context.new_page(), await victim_context.new_page()
    await sign_in_unified(stack, mailbox, attacker, attacker_email)
    # The victim is a customer too, signed in to the unified portal as themself.
    await sign_in_unified(stack, mailbox, victim, victim_email)

    # The attacker presses Open but stops at the redirect to the live site, keeping
    # the hand-off link. Their browser profile makes the requests (its cookies, its
    # binding); redirects are read instead of followed.
    form = attacker.locator(f"form:has(button#open-{shop.business_id})")
    csrf = await form.locator("input[name=csrf_token]").input_value()
    action = f"{stack.portal_urls.unified}/open/{shop.business_id}"
    step = await attacker_context.request.post(action, form={"csrf_token": csrf}, max_redirects=0)
    for _ in range(2):  # the live site's binding step, then the unified site's hand-off
        assert step.status == 303, step.url
        step = await attacker_context.request.get(step.headers["location"], max_redirects=0)
    assert step.status == 303
    link = step.headers["location"]
    assert link.startswith(f"{stack.portal_urls.live}/handoff/cpt_")

    # The victim opens it: a clear "not valid" page, and no session at the business.
    await victim.goto(link)
    assert await victim.locator("h1#page-title").get_attribute("data-state") == "unknown"
    assert await victim.locator("a#back-to-unified").is_visible()
    assert await live_session_cookies(victim_context) == []
    await victim.goto(f"{stack.portal_urls.live}/b/{shop.business_id}/")
    assert victim.url.startswith(f"{stack.portal_urls.live}/login/{shop.business_id}")

    # The normal way still works: each browser opens its own account.
    for page, name in ((attacker, "Mallory"), (victim, "Victim")):
        await page.goto(f"{stack.portal_urls.unified}/")
        await page.locator(f"button#open-{shop.business_id}").click()
        await page.wait_for_url(f"{stack.portal_urls.live}/b/{shop.business_id}/")
        assert await heading(page) == "Welcome"
        await page.goto(f"{stack.portal_urls.live}/b/{shop.business_id}/profile")
        assert await page.locator("input#name").input_value() == name
    assert await live_session_cookies(victim_context) == [business_cookie("live", shop.business_id)]
