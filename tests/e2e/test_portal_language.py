"""A browser that reads Italian gets the portal in Italian without picking a language.

The business speaks English (its locale is ``en``) and the customer has no
``preferred_locale``: the browser's ``Accept-Language`` decides, on the sign-in
page, in the email's link pages and in the signed-in portal.
"""

from __future__ import annotations

import pytest
from devstack import Mailbox, Stack, message_link
from devstack.browser import heading, open_and_confirm_link, request_sign_in_link
from devstack.portal import PortalBusiness, unique_email
from dodopayments import AsyncDodoPayments
from playwright.async_api import Browser

pytestmark = pytest.mark.e2e

# As tests/e2e/conftest.py: generous for one page step on a loaded machine.
PAGE_TIMEOUT_MS = 15_000


async def test_an_italian_browser_gets_the_sign_in_page_and_portal_in_italian(
    stack: Stack,
    shop: PortalBusiness,
    shop_sdk: AsyncDodoPayments,
    mailbox: Mailbox,
    browser: Browser,
) -> None:
    email = unique_email("italiano")
    await shop_sdk.customers.create(email=email, name="Ada Lovelace")
    context = await browser.new_context(
        locale="it-IT", extra_http_headers={"Accept-Language": "it"}
    )
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    try:
        page = await context.new_page()
        login_url = f"{stack.portal_urls.test}/login/{shop.business_id}"
        await page.goto(login_url)
        assert await page.locator("html").get_attribute("lang") == "it"
        assert await heading(page) == f"Accedi a {shop.name}"

        await request_sign_in_link(page, login_url, email)
        assert await heading(page) == "Controlla la tua email"
        link = message_link(await mailbox.wait_for(email), f"{stack.portal_urls.test}/link/cpt_")
        await page.goto(link)
        assert await heading(page) == "Accedi al tuo portale"
        await open_and_confirm_link(page, link)

        await page.wait_for_url(f"{stack.portal_urls.test}/b/{shop.business_id}/")
        assert await heading(page) == "Benvenuto"
        assert await page.locator("a#nav-profile").inner_text() == "Profilo"
        await page.locator("a#nav-profile").click()
        assert await heading(page) == "Profilo"
        assert await page.locator("button#save-profile").inner_text() == "Conferma Modifiche"
        # No language was picked: the browser decided, no switcher cookie was set.
        assert "cp_lang" not in {cookie["name"] for cookie in await context.cookies()}
    finally:
        await context.close()
