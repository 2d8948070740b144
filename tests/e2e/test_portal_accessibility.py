"""The portal pages pass an automated WCAG 2.2 AA check, in both languages, on desktop and phone.

axe-core (the copy shipped inside the ``axe-playwright-python`` wheel, injected
into the page, so nothing is downloaded) runs on every page state a customer
meets on the way in: the static link page, its error state, the link confirm
page, the used-link page, the portal home, the profile (also with a phone
error shown), the billing pages (payment methods with and without a card,
removing a card in use, subscriptions, one subscription, update payment
method, cancel with an error, invoice history, one invoice), the unified login
and the unified portal's subscriptions, payments and invoices pages. Any
violation of impact serious or critical fails the test, and all of them are
printed together, page by page.

axe cannot judge everything, so Playwright checks two things a keyboard or
screen-reader user depends on: the focused control shows a visible focus
indicator, and a field error is tied to its field (``aria-describedby``) and
reached without a mouse.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from axe_playwright_python.async_playwright import Axe
from billing.auth.v1 import auth_pb2
from devstack import Mailbox, Stack, message_link
from devstack.browser import open_and_confirm_link, request_sign_in_link
from devstack.portal import PortalBusiness, create_portal_business, unique_email
from dodopayments import AsyncDodoPayments
from playwright.async_api import Browser, BrowserContext, Page

from .test_unified_billing import purchase

pytestmark = pytest.mark.e2e

WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
FAILING_IMPACTS = frozenset({"serious", "critical"})
VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 375, "height": 740}}
LANGUAGES = ("en", "it")
# A light brand colour (pale yellow): the accent as text or as a button
# background fails contrast unless the gateway adapts the colours to it.
LIGHT_ACCENT = "#FFD43B"
# As tests/e2e/conftest.py: generous for one page step on a loaded machine.
PAGE_TIMEOUT_MS = 15_000

AXE = Axe()


@dataclass
class Findings:
    """Every serious/critical violation seen, by page state, for one readable failure."""

    lines: list[str] = field(default_factory=list)
    checked: int = 0

    def add(self, where: str, violations: list[dict[str, Any]]) -> None:
        """Record one axe run's violations (only the impacts that fail the check)."""
        self.checked += 1
        for violation in violations:
            if violation.get("impact") not in FAILING_IMPACTS:
                continue
            self.lines.append(
                f"[{where}] {violation['id']} ({violation['impact']}): {violation['help']}"
            )
            for node in violation["nodes"][:5]:
                target = ", ".join(str(t) for t in node["target"])
                self.lines.append(f"    at {target}: {node.get('failureSummary', '').strip()}")
                self.lines.append(f"       {' '.join(str(node.get('html', '')).split())[:200]}")


async def audit(page: Page, where: str, findings: Findings, lang: str | None = None) -> None:
    """Run axe on the page as shown, at desktop and at phone width (in ``lang`` if given)."""
    if lang is not None:
        assert await page.locator("html").get_attribute("lang") == lang, f"{where}: not in {lang}"
    for width, size in VIEWPORTS.items():
        await page.set_viewport_size(size)  # type: ignore[arg-type]
        results = await AXE.run(
            page,
            options={
                "runOnly": {"type": "tag", "values": WCAG_TAGS},
                "resultTypes": ["violations"],
            },
        )
        findings.add(f"{where} @ {width}", results.response["violations"])
    await page.set_viewport_size(VIEWPORTS["desktop"])  # type: ignore[arg-type]


FOCUS_STYLES_JS = """el => {
    const style = getComputedStyle(el);
    return {
        outline: `${style.outlineStyle} ${style.outlineWidth} ${style.outlineColor}`,
        boxShadow: style.boxShadow,
    };
}"""


@dataclass(frozen=True)
class FocusStyles:
    """What draws a focus indicator: the outline and the box-shadow of one element."""

    outline: str
    box_shadow: str

    @property
    def draws_outline(self) -> bool:
        """True when a non-transparent outline of some width is drawn."""
        style, width, *_ = self.outline.split(" ")
        return (
            style not in ("none", "hidden")
            and width != "0px"
            and not self.outline.endswith("rgba(0, 0, 0, 0)")
        )


async def focus_styles(page: Page, selector: str) -> FocusStyles:
    """The element's current outline and box-shadow."""
    found: dict[str, str] = await page.locator(selector).evaluate(FOCUS_STYLES_JS)
    return FocusStyles(outline=found["outline"], box_shadow=found["boxShadow"])


async def tab_to(page: Page, selector: str, max_tabs: int = 25) -> None:
    """Press Tab until ``selector`` has focus (as a keyboard user would).

    On the way, assert that focusing it draws a visible indicator: an outline,
    or a box-shadow that differs from its unfocused one (a drop shadow that is
    always there is no focus indicator).
    """
    target = page.locator(selector)
    unfocused = await focus_styles(page, selector)
    for _ in range(max_tabs):
        await page.keyboard.press("Tab")
        if await target.evaluate("el => el === document.activeElement"):
            focused = await focus_styles(page, selector)
            assert focused.draws_outline or (
                focused.box_shadow not in ("none", "")
                and focused.box_shadow != unfocused.box_shadow
            ), f"no visible keyboard focus on {selector}: {focused} (unfocused: {unfocused})"
            return
    raise AssertionError(f"{selector} never got keyboard focus within {max_tabs} Tab presses")


async def assert_error_tied_to_field(page: Page, field_id: str) -> None:
    """The field is marked invalid and names its error message, which is announced."""
    field_input = page.locator(f"input#{field_id}")
    error = page.locator(f"#{field_id}-error")
    assert await error.is_visible(), f"no visible error for #{field_id}"
    assert await error.get_attribute("role") == "alert"
    assert await field_input.get_attribute("aria-invalid") == "true"
    described_by = (await field_input.get_attribute("aria-describedby") or "").split()
    assert f"{field_id}-error" in described_by, (
        f"#{field_id} aria-describedby={described_by} does not name its error"
    )


def merchant_sdk(stack: Stack, business: PortalBusiness) -> AsyncDodoPayments:
    """The official SDK as this merchant in test mode (``async with`` it)."""
    return AsyncDodoPayments(
        bearer_token=business.key("test"), base_url=stack.gateway_url, max_retries=0
    )


async def new_context(browser: Browser) -> BrowserContext:
    """A fresh browser profile with the e2e timeouts."""
    ctx = await browser.new_context(locale="en-US", viewport=VIEWPORTS["desktop"])  # type: ignore[arg-type]
    ctx.set_default_timeout(PAGE_TIMEOUT_MS)
    return ctx


async def submit(page: Page, key_or_button: str) -> None:
    """Submit a form (Enter in a field, or a button click) and wait until the answer loaded.

    Waiting for the navigation (not the POST's response) matters: the answer
    page may still be loading when its response arrives.
    """
    async with page.expect_navigation():
        if key_or_button == "Enter":
            await page.keyboard.press("Enter")
        else:
            await page.locator(key_or_button).click()


async def walk_the_portal(
    browser: Browser, stack: Stack, shop: PortalBusiness, lang: str, findings: Findings
) -> None:
    """Every page state of the per-business portal and the unified login, in one language."""
    ctx = await new_context(browser)
    try:
        page = await ctx.new_page()
        login_url = f"{stack.portal_urls.test}/login/{shop.business_id}?lang={lang}"
        await page.goto(login_url)
        await audit(page, f"{lang} static login", findings, lang)

        # Keyboard only: the skip link, the language switch and the button show focus.
        await tab_to(page, "a.skip-link")
        await tab_to(page, f"nav.lang-switch a[hreflang='{lang}']")
        await tab_to(page, "button#send-link")

        # Keyboard only: reach the field, type a bad address, press Enter.
        await page.goto(login_url)
        await tab_to(page, "input#email")
        await page.keyboard.type("not-an-email")
        await submit(page, "Enter")
        await assert_error_tied_to_field(page, "email")
        await audit(page, f"{lang} login with an email error", findings, lang)

        # The merchant's magic link (no mailbox round trip needed for the pages).
        async with merchant_sdk(stack, shop) as sdk:
            customer = await sdk.customers.create(email=unique_email(f"a11y-{lang}"), name="Ada")
            session = await sdk.customers.customer_portal.create(customer.customer_id)
        await page.goto(session.link)
        await audit(page, f"{lang} link confirm", findings, lang)
        await tab_to(page, "button#confirm-link")
        await page.keyboard.press("Enter")
        await page.wait_for_url(f"{stack.portal_urls.test}/b/{shop.business_id}/")
        await audit(page, f"{lang} portal home", findings, lang)
        await tab_to(page, "a#nav-profile")
        await page.keyboard.press("Enter")
        await page.wait_for_url(f"{stack.portal_urls.test}/b/{shop.business_id}/profile")
        await audit(page, f"{lang} profile", findings, lang)

        # The current page's nav link keeps its focus ring over its "current" marker;
        # a wrong phone number typed and sent with the keyboard alone.
        await tab_to(page, "a#nav-profile")
        await tab_to(page, "input#phone_number")
        await page.keyboard.type("12ab")
        await submit(page, "Enter")
        await assert_error_tied_to_field(page, "phone_number")
        # The hint stays announced next to the error.
        described_by = await page.locator("input#phone_number").get_attribute("aria-describedby")
        assert "phone_number-hint" in (described_by or "").split()
        await audit(page, f"{lang} profile with a phone error", findings, lang)

        await walk_the_billing_pages(page, stack, shop, lang, customer.customer_id, findings)

        used = await page.goto(session.link)
        assert used is not None and used.status == 410
        await audit(page, f"{lang} used link", findings, lang)

        await page.goto(f"{stack.portal_urls.unified}/login?lang={lang}")
        await audit(page, f"{lang} unified login", findings, lang)
    finally:
        await ctx.close()


MONTHLY: dict[str, Any] = {
    "type": "recurring_price",
    "currency": "EUR",
    "price": 1999,
    "discount": 0,
    "purchasing_power_parity": False,
    "payment_frequency_count": 1,
    "payment_frequency_interval": "Month",
    "subscription_period_count": 1,
    "subscription_period_interval": "Year",
}


async def walk_the_billing_pages(
    page: Page, stack: Stack, shop: PortalBusiness, lang: str, customer_id: str, findings: Findings
) -> None:
    """Payment methods, a card added on the hosted page, a subscription's pages (7 states)."""
    base = f"{stack.portal_urls.test}/b/{shop.business_id}"
    await page.goto(f"{base}/payment-methods")
    await audit(page, f"{lang} payment methods, none yet", findings, lang)
    await tab_to(page, "button#add-card")
    await submit(page, "Enter")
    # The hosted page is payments' own (its own checks are in its tests).
    await page.locator("#cc-name").fill("Ada Lovelace")
    await page.locator("#cc-number").fill("4242424242424242")
    await page.locator("#cc-exp").fill("12/34")
    await page.locator("#cc-csc").fill("123")
    await page.locator("#submit").click()
    await page.wait_for_url(f"{base}/payment-methods?done=added")
    await audit(page, f"{lang} payment methods with a card", findings, lang)
    async with merchant_sdk(stack, shop) as sdk:
        card = (await sdk.customers.retrieve_payment_methods(customer_id)).items[0]
        plan = await sdk.products.create(name="Pro plan", tax_category="saas", price=MONTHLY)  # type: ignore[arg-type]
        sub = await sdk.subscriptions.create(
            billing={
                "country": "IT",
                "city": "Milano",
                "state": "MI",
                "street": "Via Roma 1",
                "zipcode": "20100",
            },
            customer={"customer_id": customer_id},
            product_id=plan.product_id,
            quantity=1,
            extra_body={"payment_method_id": card.payment_method_id},
        )
    await page.goto(f"{base}/payment-methods/{card.payment_method_id}/remove")
    await audit(page, f"{lang} remove a card in use", findings, lang)
    await page.goto(f"{base}/subscriptions")
    await audit(page, f"{lang} subscriptions", findings, lang)
    await tab_to(page, f"a#edit-{sub.subscription_id}")
    await page.goto(f"{base}/subscriptions/{sub.subscription_id}")
    await audit(page, f"{lang} subscription", findings, lang)
    await page.goto(f"{base}/subscriptions/{sub.subscription_id}/payment-method")
    await audit(page, f"{lang} update payment method", findings, lang)
    # The cancel form, sent without its confirmation box: the error is tied to it.
    await page.goto(f"{base}/subscriptions/{sub.subscription_id}/cancel")
    await tab_to(page, "button#confirm-cancel")
    await submit(page, "Enter")
    await assert_error_tied_to_field(page, "confirm")
    await audit(page, f"{lang} cancel with an error", findings, lang)
    # The subscription's first charge is a row of the invoice history, with a detail page.
    await page.goto(f"{base}/invoices")
    row = page.locator("#invoice-history tbody tr").first
    payment_id = await row.get_attribute("data-payment-id")
    await audit(page, f"{lang} invoice history", findings, lang)
    await page.goto(f"{base}/invoices/{payment_id}")
    await audit(page, f"{lang} invoice detail", findings, lang)


async def walk_with_a_light_accent(
    browser: Browser, stack: Stack, business: PortalBusiness, findings: Findings
) -> None:
    """The brand-coloured parts stay readable when the merchant picks a pale colour."""
    ctx = await new_context(browser)
    try:
        page = await ctx.new_page()
        await page.goto(f"{stack.portal_urls.test}/login/{business.business_id}")
        accent = await page.evaluate(
            "() => getComputedStyle(document.body).getPropertyValue('--accent').trim()"
        )
        assert accent.upper() == LIGHT_ACCENT  # the brand stylesheet really applied
        await audit(page, "light accent static login", findings)
        async with merchant_sdk(stack, business) as sdk:
            customer = await sdk.customers.create(email=unique_email("a11y-light"), name="Ada")
            session = await sdk.customers.customer_portal.create(customer.customer_id)
        await page.goto(session.link)
        await submit(page, "button#confirm-link")
        await audit(page, "light accent portal home", findings)
        await page.goto(session.link)
        await audit(page, "light accent used link", findings)
    finally:
        await ctx.close()


async def walk_the_unified_billing(
    browser: Browser, stack: Stack, mailbox: Mailbox, findings: Findings
) -> None:
    """The unified subscriptions, payments and invoices pages of an email with two businesses."""
    email = unique_email("a11y-all")
    suffix = uuid.uuid4().hex[:4]
    async with stack.auth_admin() as admin:
        for name in (f"Alpha a11y {suffix}", f"Beta a11y {suffix}"):
            await purchase(stack, await create_portal_business(admin, name), email)
    ctx = await new_context(browser)
    try:
        page = await ctx.new_page()
        unified = stack.portal_urls.unified
        await request_sign_in_link(page, f"{unified}/login", email)
        # Receipts of the purchases reach the same inbox: take the sign-in email.
        signed = await mailbox.wait_for(email, subject_contains="sign-in link")
        link = message_link(signed, f"{unified}/link/cpt_")
        await open_and_confirm_link(page, link)
        await page.wait_for_url(f"{unified}/")
        for lang in LANGUAGES:
            for section in ("subscriptions", "payments", "invoices"):
                await page.goto(f"{unified}/{section}?lang={lang}")
                rows = "li[data-subscription-id], #payments tbody tr, #invoice-history tbody tr"
                assert await page.locator(rows).count()
                await audit(page, f"{lang} unified {section}", findings, lang)
    finally:
        await ctx.close()


async def light_accent_business(stack: Stack) -> PortalBusiness:
    """A business whose brand colour is pale (keys for both modes)."""
    async with stack.auth_admin() as admin:
        created = await admin.stub.CreateBusiness(
            auth_pb2.CreateBusinessRequest(
                name=f"Limone a11y {uuid.uuid4().hex[:6]}",
                support_email="support@example.com",
                locale="en",
                branding=auth_pb2.Branding(primary_color=LIGHT_ACCENT),
            ),
            timeout=10,
        )
        _tid, test_key = await admin.create_key(created.business_id, "a11y", mode="test")
        _lid, live_key = await admin.create_key(created.business_id, "a11y", mode="live")
    return PortalBusiness(created.business_id, created.name, test_key, live_key)


async def assert_axe_catches_a_known_violation(browser: Browser) -> None:
    """Guard against a silent check: axe must flag an unlabelled field as critical."""
    ctx = await new_context(browser)
    try:
        page = await ctx.new_page()
        await page.set_content('<html lang="en"><title>t</title><main><input></main></html>')
        seen = Findings()
        await audit(page, "known bad", seen)
        assert any("label (critical)" in line for line in seen.lines), seen.lines
    finally:
        await ctx.close()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
async def test_portal_pages_meet_wcag_22_aa(
    stack: Stack, shop: PortalBusiness, browser: Browser, mailbox: Mailbox
) -> None:
    findings = Findings()
    pale = await light_accent_business(stack)

    # The walks are independent browser profiles: run them side by side.
    await asyncio.gather(
        *(walk_the_portal(browser, stack, shop, lang, findings) for lang in LANGUAGES),
        walk_with_a_light_accent(browser, stack, pale, findings),
        walk_the_unified_billing(browser, stack, mailbox, findings),
        assert_axe_catches_a_known_violation(browser),
    )

    # 17 page states x 2 languages, 3 unified billing pages x 2 languages
    # and 3 with the pale accent, each at 2 widths.
    assert findings.checked == (20 * len(LANGUAGES) + 3) * len(VIEWPORTS)
    assert not findings.lines, "axe found WCAG 2.2 AA violations:\n" + "\n".join(findings.lines)
