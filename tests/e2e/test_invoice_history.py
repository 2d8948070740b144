"""Invoice history end to end: a real browser, the whole stack, the official SDK.

A customer buys a subscription with a saved card; payments charges it,
invoicing issues the invoice from ``payment.succeeded`` and stores its PDF.
In the business portal the history shows the payment with its invoice
number, the detail page opens, and the downloaded file is a PDF whose text
carries that number; the merchant's ``client.invoices.payments.retrieve``
returns the very same bytes. Another customer's payment is the 404 page.
One email that bought at two businesses sees both invoices, each with its
business's name, in the unified history after one sign-in.
"""

from __future__ import annotations

import asyncio
import io
import uuid
from pathlib import Path

import aiohttp
import pytest
from billing_kit.testing import eventually
from devstack import Mailbox, Stack, message_link
from devstack.browser import heading, open_and_confirm_link, request_sign_in_link
from devstack.portal import PortalBusiness, create_portal_business, unique_email
from dodopayments import AsyncDodoPayments, NotFoundError
from playwright.async_api import Page, expect
from pypdf import PdfReader

from .conftest import merchant_sdk
from .test_portal_subscriptions import sign_in_at
from .test_unified_billing import Purchase, purchase

pytestmark = pytest.mark.e2e


async def issued_pdf(stack: Stack, bought: Purchase, mode: str) -> bytes:
    """The invoice PDF of the purchase's payment, once invoicing has issued it (merchant API)."""
    found: list[bytes] = []

    async def ready() -> bool:
        async with aiohttp.ClientSession() as http:
            async with http.get(
                f"{stack.gateway_url}/invoices/payments/{bought.payment_id}",
                headers={"Authorization": f"Bearer {bought.business.key(mode)}"},  # type: ignore[arg-type]
            ) as reply:
                if reply.status != 200:
                    return False
                found.append(await reply.read())
                return True

    await eventually(ready, within=30, message="invoicing did not issue the invoice")
    return found[-1]


def pdf_text(content: bytes) -> str:
    """Every page's text, as pypdf extracts it."""
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


async def test_the_history_lists_opens_and_downloads_the_invoice(
    stack: Stack, shop: PortalBusiness, shop_sdk: AsyncDodoPayments, page: Page, tmp_path: Path
) -> None:
    bought = await purchase(stack, shop, unique_email("history"), mode="test")
    stranger = await purchase(stack, shop, unique_email("stranger"), mode="test")
    await issued_pdf(stack, bought, "test")
    base = f"/b/{shop.business_id}"
    await sign_in_at(page, stack, shop, shop_sdk, bought.customer_id, f"{base}/invoices")

    # The history: the payment with its status, amount and invoice number; not the stranger's.
    assert await heading(page) == "Invoice history"
    row = page.locator(f"#row-{bought.payment_id}")
    await expect(row.locator('[data-status="succeeded"]')).to_be_visible()
    await expect(row).to_contain_text("€15.00")
    number = (await row.locator(".invoice-number").inner_text()).strip()
    assert number
    assert await page.locator(f"#row-{stranger.payment_id}").count() == 0

    # The detail view: seller, number, total, the card.
    await row.locator(".invoice-number").click()
    await page.wait_for_url(f"**{base}/invoices/{bought.payment_id}")
    assert await heading(page) == f"Invoice {number}"
    await expect(page.locator("#seller")).to_contain_text(shop.name)
    await expect(page.locator("#total")).to_have_text("€15.00")
    await expect(page.locator("#payment-method")).to_have_text("Visa •••• 4242")

    # Download PDF: an attachment named after the invoice, a real PDF carrying its number.
    async with page.expect_download() as downloading:
        await page.locator("#download-pdf").click()
    download = await downloading.value
    assert download.suggested_filename == f"invoice-{number}.pdf"
    saved = tmp_path / download.suggested_filename
    await download.save_as(saved)
    content = await asyncio.to_thread(saved.read_bytes)
    assert content.startswith(b"%PDF")
    assert number in pdf_text(content)

    # The merchant's SDK gets the same bytes for the same payment.
    from_sdk = await shop_sdk.invoices.payments.retrieve(bought.payment_id)
    assert await from_sdk.read() == content

    # Another customer's invoice: the same 404 page for its detail and its download.
    for rest in (f"invoices/{stranger.payment_id}", f"invoices/{stranger.payment_id}/pdf"):
        shown = await page.goto(f"{stack.portal_urls.test}{base}/{rest}")
        assert shown is not None and shown.status == 404, rest
        assert shown.headers["content-type"].startswith("text/html")


async def test_the_merchant_api_serves_only_its_own_business(
    stack: Stack, shop: PortalBusiness
) -> None:
    bought = await purchase(stack, shop, unique_email("api"), mode="test")
    await issued_pdf(stack, bought, "test")
    async with stack.auth_admin() as admin:
        other = await create_portal_business(admin, f"Other {uuid.uuid4().hex[:4]}")
    # Another business's key, and the owner's key of the other mode: 404, as for no payment.
    for business, mode in ((other, "test"), (shop, "live")):
        async with merchant_sdk(stack, business, mode) as sdk:  # type: ignore[arg-type]
            with pytest.raises(NotFoundError):
                await sdk.invoices.payments.retrieve(bought.payment_id)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
async def test_the_unified_history_shows_both_businesses(
    stack: Stack, mailbox: Mailbox, page: Page
) -> None:
    suffix = uuid.uuid4().hex[:4]
    async with stack.auth_admin() as admin:
        first = await create_portal_business(admin, f"Alpha Prints {suffix}")
        second = await create_portal_business(admin, f"Beta Sounds {suffix}")
    email = unique_email("allinvoices")
    bought = [await purchase(stack, first, email), await purchase(stack, second, email)]
    for each in bought:
        await issued_pdf(stack, each, "live")

    unified = stack.portal_urls.unified
    await request_sign_in_link(page, f"{unified}/login", email)
    # The purchases' receipts reach the same inbox: take the sign-in email.
    signed = await mailbox.wait_for(email, subject_contains="sign-in link", within_seconds=30)
    link = message_link(signed, f"{unified}/link/cpt_")
    await open_and_confirm_link(page, link)
    await page.wait_for_url(f"{unified}/")
    await page.goto(f"{unified}/invoices")
    assert await heading(page) == "Invoice history"
    for each in bought:
        row = page.locator(f"#row-{each.payment_id}")
        await expect(row.locator(".business-tag-name")).to_have_text(each.business.name)
        await expect(row.locator(".invoice-number")).to_be_visible()
    assert await page.locator("#invoice-history tbody tr").count() == 2

    # The second business's download, from the unified portal.
    async with page.expect_download() as downloading:
        await page.locator(f"#row-{bought[1].payment_id} .download-pdf").click()
    download = await downloading.value
    assert download.suggested_filename.startswith("invoice-")
    content = await asyncio.to_thread(Path(await download.path()).read_bytes)
    assert content.startswith(b"%PDF")
