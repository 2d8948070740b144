"""Billing details and re-issued invoices end to end: a real browser, the whole stack.

A customer buys; in the business portal they enter their billing details (a
VAT number with a wrong check digit is refused next to the field and nothing
is saved; a valid one is saved). Their next invoice prints the company, the
address and the VAT number. The first invoice, re-issued from its page, gets a
second version under the same number whose PDF says it replaces the original;
both versions are listed, the original is still downloadable byte for byte,
and the merchant API serves the latest version.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from devstack import Stack
from devstack.browser import heading
from devstack.portal import PortalBusiness, unique_email
from dodopayments import AsyncDodoPayments
from playwright.async_api import Page, expect

from .conftest import merchant_sdk
from .test_invoice_history import issued_pdf, pdf_text
from .test_portal_subscriptions import sign_in_at
from .test_unified_billing import BILLING, MONTHLY, Purchase, purchase

pytestmark = pytest.mark.e2e

# Set it to keep screenshots of the pages and the re-issued PDF for a person to look at.
SHOTS_DIR = os.environ.get("BILLING_SHOTS_DIR", "")


async def shot(page: Page, name: str) -> None:
    if SHOTS_DIR:
        # Playwright creates the folder.
        await page.screenshot(path=str(Path(SHOTS_DIR) / name), full_page=True)


async def second_purchase(stack: Stack, bought: Purchase) -> Purchase:
    """The same customer buys another plan with the card already saved."""
    async with merchant_sdk(stack, bought.business, "test") as sdk:
        plan = await sdk.products.create(name="Add-on plan", tax_category="saas", price=MONTHLY)
        sub = await sdk.subscriptions.create(
            billing=BILLING,
            customer={"customer_id": bought.customer_id},
            product_id=plan.product_id,
            quantity=1,
            extra_body={"payment_method_id": bought.cards[0]},
        )
    assert sub.payment_id, "the second subscription was not charged at once"
    return Purchase(
        bought.business, bought.customer_id, bought.cards, sub.subscription_id, sub.payment_id
    )


async def fill_details(page: Page, tax_id: str) -> None:
    await page.locator("#country").select_option("IT")
    await page.get_by_label("Company name (optional)").fill("Lovelace S.r.l.")
    await page.get_by_label("Street address").fill("Via Dante 7")
    await page.get_by_label("Postal code").fill("20121")
    await page.get_by_label("City").fill("Milano")
    await page.get_by_label("Tax ID or VAT number (optional)").fill(tax_id)
    await page.locator("#save-billing-details").click()


async def download(page: Page, selector: str, folder: Path) -> tuple[str, bytes]:
    async with page.expect_download() as downloading:
        await page.locator(selector).click()
    done = await downloading.value
    target = folder / done.suggested_filename
    await done.save_as(target)
    return done.suggested_filename, await asyncio.to_thread(target.read_bytes)


async def test_billing_details_print_on_new_invoices_and_reissue_keeps_the_original(
    stack: Stack, shop: PortalBusiness, shop_sdk: AsyncDodoPayments, page: Page, tmp_path: Path
) -> None:
    bought = await purchase(stack, shop, unique_email("vat"), mode="test")
    original = await issued_pdf(stack, bought, "test")
    assert "IT00743110157" not in pdf_text(original)
    base = f"/b/{shop.business_id}"
    await sign_in_at(page, stack, shop, shop_sdk, bought.customer_id, f"{base}/billing-details")
    assert await heading(page) == "Billing details"
    await expect(page.locator("#country")).to_have_attribute("autocomplete", "country")

    # A VAT number with a wrong check digit: refused next to the field, nothing saved.
    await fill_details(page, "IT00743110158")
    error = page.locator("#tax_id-error")
    await expect(error).to_contain_text("not valid for the country")
    await expect(page.locator("#tax_id")).to_have_attribute("aria-invalid", "true")
    await page.set_viewport_size({"width": 1280, "height": 1000})
    await shot(page, "billing-details-error-1280.png")
    await page.goto(f"{stack.portal_urls.test}{base}/billing-details")
    await expect(page.locator("#tax_id")).to_have_value("")

    # A valid one (typed with spaces and without its prefix): saved, compact.
    await fill_details(page, "007 4311 0157")
    await expect(page.locator("#billing-details-saved")).to_be_visible()
    await expect(page.locator("#tax_id")).to_have_value("IT00743110157")
    await shot(page, "billing-details-1280.png")
    await page.set_viewport_size({"width": 390, "height": 844})
    await shot(page, "billing-details-390.png")
    await page.set_viewport_size({"width": 1280, "height": 1000})

    # The next invoice prints them: company, address, the VAT number labelled.
    later = await second_purchase(stack, bought)
    new_text = pdf_text(await issued_pdf(stack, later, "test"))
    for expected in ("Lovelace S.r.l.", "Via Dante 7", "20121 Milano", "VAT: IT00743110157"):
        assert expected in new_text, expected
    assert "Replaces" not in new_text

    # The first invoice offers a re-issue with the current details.
    await page.goto(f"{stack.portal_urls.test}{base}/invoices/{bought.payment_id}")
    number = (await page.locator("#invoice-number").inner_text()).strip()
    await page.locator("#reissue-invoice").click()
    await page.wait_for_url(f"**{base}/invoices/{bought.payment_id}?reissued=1")
    await expect(page.locator("#reissued")).to_be_visible()
    await expect(page.locator("#invoice-number")).to_have_text(number)  # same number
    await expect(page.locator("#invoice-versions li")).to_have_count(2)
    await expect(page.locator("#reissue-invoice")).to_have_count(0)
    await shot(page, "invoice-versions-1280.png")
    await page.set_viewport_size({"width": 390, "height": 844})
    await shot(page, "invoice-versions-390.png")
    await page.set_viewport_size({"width": 1280, "height": 1000})

    # Version 2 says it replaces the original and prints the new details.
    name, latest = await download(page, "#download-pdf", tmp_path)
    assert name == f"invoice-{number}-v2.pdf"
    latest_text = pdf_text(latest)
    assert f"Replaces the invoice {number} issued on" in latest_text
    assert "VAT: IT00743110157" in latest_text and "Lovelace S.r.l." in latest_text
    # Version 1 is still there, byte for byte what was first issued.
    name, first = await download(page, "#version-1 a", tmp_path)
    assert name == f"invoice-{number}.pdf" and first == original

    # The merchant API serves the latest version.
    from_sdk = await shop_sdk.invoices.payments.retrieve(bought.payment_id)
    assert await from_sdk.read() == latest

    # The history shows the invoice's latest version.
    history = await page.goto(f"{stack.portal_urls.test}{base}/invoices")
    assert history is not None and history.status == 200
    await expect(page.locator(f"#row-{bought.payment_id} .invoice-version")).to_have_text("(v2)")
    if SHOTS_DIR:
        await asyncio.to_thread((Path(SHOTS_DIR) / "invoice-v2.pdf").write_bytes, latest)
