"""Customer billing emails on the real stack: a renewal declines, the subscription
goes on hold, and the customer gets one email whose one-time link opens the
update-payment-method page of that subscription, once; a payment gets one receipt
with its invoice PDF attached.
"""

from __future__ import annotations

import asyncio
import io
import uuid
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from devstack import Mailbox, Stack, message_link
from devstack.browser import heading, open_and_confirm_link
from devstack.portal import PortalBusiness, unique_email
from dodopayments import AsyncDodoPayments
from playwright.async_api import BrowserContext, Page, expect
from pypdf import PdfReader

from .conftest import merchant_sdk
from .test_invoices_issued import _customer, _pay_on_the_hosted_page, fresh_shop, stubs
from .test_portal_subscriptions import (
    BILLING,
    MONTHLY,
    advance_clock,
    card_ids,
    fill_card,
    sign_in_at,
)

pytestmark = pytest.mark.e2e


async def test_on_hold_email_links_once_to_the_subscriptions_payment_method_page(
    stack: Stack,
    shop: PortalBusiness,
    shop_sdk: AsyncDodoPayments,
    page: Page,
    context: BrowserContext,
    mailbox: Mailbox,
) -> None:
    address = unique_email("onhold")
    customer = await shop_sdk.customers.create(email=address, name="Ada Lovelace")
    plan_name = f"Pro plan {uuid.uuid4().hex[:4]}"
    plan = await shop_sdk.products.create(
        name=plan_name,
        tax_category="saas",
        price=MONTHLY,  # type: ignore[arg-type]
    )
    base = f"/b/{shop.business_id}"

    # A card that pays for the purchase and declines every later charge.
    await sign_in_at(page, stack, shop, shop_sdk, customer.customer_id, f"{base}/payment-methods")
    await page.locator("#add-card").click()
    await fill_card(page, "4000000000000341")
    await page.wait_for_url(f"**{base}/payment-methods?done=added")
    declining = (await card_ids(shop_sdk, customer.customer_id))["0341"]
    sub = await shop_sdk.subscriptions.create(
        billing=BILLING,  # type: ignore[arg-type]
        customer={"customer_id": customer.customer_id},
        product_id=plan.product_id,
        quantity=1,
        extra_body={"payment_method_id": declining},
    )
    sub_id = sub.subscription_id
    # A fresh browser: the link alone must get the customer in.
    await context.clear_cookies()

    await advance_clock(stack, shop, 32 * 24 * 3600)

    message = await mailbox.wait_for(address, subject_contains="payment failed", within_seconds=60)
    text = message.message.get_body(preferencelist=("plain",))
    assert text is not None
    body = str(text.get_content())  # type: ignore[attr-defined]
    assert "Amount due: €19.99" in body
    assert f"Subscription: {plan_name}" in body
    link = message_link(message, f"{stack.portal_urls.test}/link/")

    # The link: confirm page, then straight to this subscription's payment-method page.
    await open_and_confirm_link(page, link)
    await page.wait_for_url(f"{stack.portal_urls.test}{base}/subscriptions/{sub_id}/payment-method")
    assert await heading(page) == "Update payment method"
    await expect(page.locator("#dues-amount")).to_have_text("€19.99")

    # Used once: the second opening says so and signs nobody in.
    await context.clear_cookies()
    await page.goto(link)
    await expect(page.locator("#page-title")).to_have_attribute("data-state", "used")

    # One email for the one on_hold event, however the events were delivered.
    on_hold = [m for m in await mailbox.messages_to(address) if "payment failed" in m.subject]
    assert len(on_hold) == 1
    await mailbox.assert_nothing_new(
        address, skip=len(await mailbox.messages_to(address)), seconds=3
    )


__all__ = ["fresh_shop", "stubs"]  # fixtures shared with test_invoices_issued


async def test_a_payment_gets_one_receipt_with_its_invoice_pdf(
    stack: Stack,
    fresh_shop: PortalBusiness,
    stubs: tuple[Any, Any],
    page: Page,
    mailbox: Mailbox,
) -> None:
    payments, _ = stubs
    async with merchant_sdk(stack, fresh_shop) as sdk:
        customer_id = await _customer(sdk, "Ada Lovelace", "it")
        address = (await sdk.customers.retrieve(customer_id)).email
    await _pay_on_the_hosted_page(page, stack, fresh_shop, payments, customer_id, amount=35620)

    message = await mailbox.wait_for(address, subject_contains="ricevuta", within_seconds=60)
    assert message.subject == f"La tua ricevuta INV-000001 da {fresh_shop.name}"
    text = message.message.get_body(preferencelist=("plain",))
    assert text is not None
    body = str(text.get_content())  # type: ignore[attr-defined]
    assert "Abbiamo ricevuto il tuo pagamento di 356,20\xa0€" in body
    [attachment] = list(message.message.iter_attachments())  # type: ignore[attr-defined]
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename() == "invoice-INV-000001.pdf"
    pdf = PdfReader(io.BytesIO(attachment.get_content()))
    pdf_text = "\n".join(p.extract_text() for p in pdf.pages)
    assert "INV-000001" in pdf_text and "356,20 €" in pdf_text

    # One payment, one receipt.
    await mailbox.assert_nothing_new(address, skip=await mailbox.count(address), seconds=3)
    receipts = [m for m in await mailbox.messages_to(address) if "ricevuta" in m.subject]
    assert len(receipts) == 1


async def test_renewal_reminder_arrives_once_three_days_before_on_the_test_clock(
    stack: Stack,
    shop: PortalBusiness,
    shop_sdk: AsyncDodoPayments,
    page: Page,
    mailbox: Mailbox,
) -> None:
    address = unique_email("reminder")
    customer = await shop_sdk.customers.create(email=address, name="Grace Hopper")
    plan = await shop_sdk.products.create(
        name=f"Reminder plan {uuid.uuid4().hex[:4]}",
        tax_category="saas",
        price=MONTHLY,  # type: ignore[arg-type]
    )
    base = f"/b/{shop.business_id}"
    await sign_in_at(page, stack, shop, shop_sdk, customer.customer_id, f"{base}/payment-methods")
    await page.locator("#add-card").click()
    await fill_card(page, "4242424242424242")
    await page.wait_for_url(f"**{base}/payment-methods?done=added")
    card = (await card_ids(shop_sdk, customer.customer_id))["4242"]
    sub = await shop_sdk.subscriptions.create(
        billing=BILLING,  # type: ignore[arg-type]
        customer={"customer_id": customer.customer_id},
        product_id=plan.product_id,
        quantity=1,
        extra_body={"payment_method_id": card},
    )
    renews = (await shop_sdk.subscriptions.retrieve(sub.subscription_id)).next_billing_date
    assert renews is not None
    # Two days before the renewal on the business's test clock (default: three days' notice).
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{stack.gateway_url}/test-helpers/clock/advance",
            json={"to": (renews - timedelta(days=2)).isoformat()},
            headers={"Authorization": f"Bearer {shop.key('test')}"},
        ) as resp:
            assert resp.status == 200, await resp.text()

    message = await mailbox.wait_for(address, subject_contains="renews on", within_seconds=60)
    text = message.message.get_body(preferencelist=("plain",))
    assert text is not None
    assert "will be charged €19.99" in str(text.get_content())  # type: ignore[attr-defined]
    # A second reminder would arrive about now. Other mail may (the first payment's
    # receipt can land after the reminder), so count reminders only.
    await asyncio.sleep(3)
    reminders = [m for m in await mailbox.messages_to(address) if "renews on" in m.subject]
    assert len(reminders) == 1
