"""Subscriptions in the portal, end to end: a real browser, the whole stack, the official SDK.

The journey of issue 11: a subscription paid with a card that pays for the
purchase and declines every later charge; the business's test clock passes the
renewal, so the subscription goes on hold; in the portal the customer presses
Edit, is told what is owed, adds a new card that the hosted page declines (the
reason in plain words, still on hold), retries there with a card that asks
for 3-D Secure, confirms, completes the challenge and lands on the
confirmation page: active again with its next renewal date, and exactly one
successful dues charge.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import aiohttp
import pytest
from billing_kit.testing import eventually
from devstack import Stack
from devstack.browser import heading, open_and_confirm_link
from devstack.portal import PortalBusiness, PortalHttp, business_cookie, unique_email
from dodopayments import AsyncDodoPayments
from playwright.async_api import Page, expect

pytestmark = pytest.mark.e2e

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
BILLING = {
    "country": "IT",
    "city": "Milano",
    "state": "MI",
    "street": "Via Roma 1",
    "zipcode": "20100",
}


async def sign_in_at(
    page: Page,
    stack: Stack,
    shop: PortalBusiness,
    sdk: AsyncDodoPayments,
    customer_id: str,
    path: str,
) -> None:
    """A magic link deep-linked to ``path`` of the business's portal, confirmed here."""
    link = (
        await sdk.customers.customer_portal.create(customer_id, extra_query={"next": path})
    ).link
    await open_and_confirm_link(page, link)
    await page.wait_for_url(f"{stack.portal_urls.test}{path}")


async def fill_card(page: Page, number: str) -> None:
    """The hosted payment page's form (payments' own listener)."""
    await page.get_by_label("Name on card").fill("Ada Lovelace")
    await page.get_by_label("Card number").fill(number)
    await page.get_by_label("Expiry date (MM/YY)").fill("12/34")
    await page.get_by_label("Security code (CVC)").fill("123")
    await page.locator("#submit").click()


async def advance_clock(stack: Stack, shop: PortalBusiness, seconds: int) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{stack.gateway_url}/test-helpers/clock/advance",
            json={"seconds": seconds},
            headers={"Authorization": f"Bearer {shop.key('test')}"},
        ) as resp:
            assert resp.status == 200, await resp.text()


async def test_an_on_hold_subscription_is_reactivated_in_the_portal(
    stack: Stack, shop: PortalBusiness, shop_sdk: AsyncDodoPayments, page: Page
) -> None:
    customer = await shop_sdk.customers.create(
        email=unique_email("reactivate"), name="Ada Lovelace"
    )
    plan = await shop_sdk.products.create(
        name=f"Pro plan {uuid.uuid4().hex[:4]}",
        tax_category="saas",
        price=MONTHLY,  # type: ignore[arg-type]
    )
    base = f"/b/{shop.business_id}"

    # The customer saves a card that pays for the purchase and declines every later charge.
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
    assert (await shop_sdk.subscriptions.retrieve(sub_id)).status == "active"

    # Past the renewal: the saved card declines, the subscription goes on hold.
    await advance_clock(stack, shop, 32 * 24 * 3600)

    async def on_hold() -> bool:
        return (await shop_sdk.subscriptions.retrieve(sub_id)).status == "on_hold"

    await eventually(on_hold, within=30, message="the renewal did not put it on hold")

    await page.goto(f"{stack.portal_urls.test}{base}/subscriptions")
    row = page.locator(f'li[data-subscription-id="{sub_id}"]')
    await expect(row.locator('[data-status="on_hold"]')).to_be_visible()
    await expect(row).to_contain_text("Visa •••• 0341")
    await row.locator(f"#edit-{sub_id}").click()
    assert await heading(page) == "Update payment method"
    await expect(page.locator("#dues-amount")).to_have_text("€19.99")

    # A new card that the hosted page refuses: the reason in plain words, still on hold.
    await page.locator("#add-card").click()
    await fill_card(page, "4000000000000002")
    await expect(page.locator("#form-error")).to_have_text("Your card was declined.")
    assert (await shop_sdk.subscriptions.retrieve(sub_id)).status == "on_hold"
    assert set(await card_ids(shop_sdk, customer.customer_id)) == {"0341"}

    # Retried with a card that asks for 3-D Secure on every charge: added, then confirmed.
    await fill_card(page, "4000002760003184")
    await page.wait_for_url(f"**{base}/subscriptions/{sub_id}/payment-method?chosen=*")
    chosen = page.locator('input[name="payment_method_id"]:checked')
    await expect(chosen).to_have_count(1)
    await page.locator("#confirm-changes").click()
    await expect(page.get_by_role("heading", name="Confirm your payment")).to_be_visible()
    await page.get_by_role("button", name="Complete").click()

    await page.wait_for_url(f"**{base}/subscriptions/{sub_id}/payment-method/done?**")

    async def confirmed() -> bool:
        await page.reload()
        return await page.locator('#result[data-state="active"]').count() == 1

    await eventually(confirmed, within=30, message="the confirmation page never said active")
    await expect(page.locator("#next-renewal")).to_contain_text("Next renewal")
    after = await shop_sdk.subscriptions.retrieve(sub_id)
    assert after.status == "active" and after.next_billing_date is not None

    payments = (await shop_sdk.payments.list(subscription_id=sub_id)).items
    succeeded = [p for p in payments if p.status == "succeeded"]
    # The purchase on the 0341 card and exactly one dues charge, on the card that passed 3-D Secure.
    assert sorted(p.card_last_four for p in succeeded) == ["0341", "3184"], [
        (p.status, p.card_last_four) for p in payments
    ]


async def add_cards(page: Page, base: str, *numbers: str) -> None:
    """Add cards from the portal's payment methods page (each through the hosted page)."""
    for number in numbers:
        await page.locator("#add-card").click()
        await fill_card(page, number)
        await page.wait_for_url(f"**{base}/payment-methods?done=added")


async def subscribed(sdk: AsyncDodoPayments, customer_id: str, payment_method_id: str) -> str:
    plan = await sdk.products.create(
        name=f"Plan {uuid.uuid4().hex[:4]}",
        tax_category="saas",
        price=MONTHLY,  # type: ignore[arg-type]
    )
    sub = await sdk.subscriptions.create(
        billing=BILLING,  # type: ignore[arg-type]
        customer={"customer_id": customer_id},
        product_id=plan.product_id,
        quantity=1,
        extra_body={"payment_method_id": payment_method_id},
    )
    return sub.subscription_id


async def card_ids(sdk: AsyncDodoPayments, customer_id: str) -> dict[str, str]:
    methods = (await sdk.customers.retrieve_payment_methods(customer_id)).items
    return {m.card.last4_digits: m.payment_method_id for m in methods if m.card}


async def test_cancel_at_period_end_undo_renewal_and_cancel_now_in_the_portal(
    stack: Stack, shop: PortalBusiness, shop_sdk: AsyncDodoPayments, page: Page
) -> None:
    customer = await shop_sdk.customers.create(email=unique_email("cancel"), name="Ada Lovelace")
    base = f"/b/{shop.business_id}"
    await sign_in_at(page, stack, shop, shop_sdk, customer.customer_id, f"{base}/payment-methods")
    await add_cards(page, base, "4242424242424242")
    card = (await card_ids(shop_sdk, customer.customer_id))["4242"]
    sub_id = await subscribed(shop_sdk, customer.customer_id, card)
    detail = f"{stack.portal_urls.test}{base}/subscriptions/{sub_id}"

    # At the end of the period, with a reason and a comment.
    await page.goto(detail)
    await page.locator("#cancel-subscription").click()
    await page.locator("#when-period-end").check()
    await page.locator("#feedback").select_option("too_expensive")
    await page.locator("#comment").fill("Cheaper elsewhere")
    await page.locator("#confirm").check()
    await page.locator("#confirm-cancel").click()
    await page.wait_for_url(f"{detail}?done=scheduled")
    await expect(page.locator("#notice")).to_contain_text("will end on")
    scheduled = await shop_sdk.subscriptions.retrieve(sub_id)
    assert scheduled.cancel_at_next_billing_date is True
    assert scheduled.cancellation_feedback == "too_expensive"

    # Undo, then the renewal still happens.
    await page.locator("#undo-cancel").click()
    await page.wait_for_url(f"{detail}?done=undone")
    kept = await shop_sdk.subscriptions.retrieve(sub_id)
    assert kept.cancel_at_next_billing_date is False and kept.status == "active"
    await advance_clock(stack, shop, 32 * 24 * 3600)

    async def renewed() -> bool:
        now = await shop_sdk.subscriptions.retrieve(sub_id)
        return now.status == "active" and now.next_billing_date > kept.next_billing_date

    await eventually(renewed, within=30, message="the kept subscription did not renew")

    # Now: ends at once, shown under Past.
    await page.goto(f"{detail}/cancel")
    await page.locator("#when-now").check()
    await page.locator("#confirm").check()
    await page.locator("#confirm-cancel").click()
    await page.wait_for_url(f"{detail}?done=cancelled")
    assert (await shop_sdk.subscriptions.retrieve(sub_id)).status == "cancelled"
    await page.goto(f"{stack.portal_urls.test}{base}/subscriptions")
    await expect(
        page.locator(f'#past-subscriptions li[data-subscription-id="{sub_id}"]')
    ).to_be_visible()


async def test_ten_concurrent_confirmations_charge_the_dues_once(
    stack: Stack, shop: PortalBusiness, shop_sdk: AsyncDodoPayments, page: Page, http: PortalHttp
) -> None:
    customer = await shop_sdk.customers.create(email=unique_email("tenfold"), name="Ada Lovelace")
    base = f"/b/{shop.business_id}"
    await sign_in_at(page, stack, shop, shop_sdk, customer.customer_id, f"{base}/payment-methods")
    await add_cards(page, base, "4242424242424242", "4000000000000341")
    cards = await card_ids(shop_sdk, customer.customer_id)
    sub_id = await subscribed(shop_sdk, customer.customer_id, cards["4242"])
    await shop_sdk.subscriptions.update_payment_method(
        sub_id, payment_method={"type": "existing", "payment_method_id": cards["0341"]}
    )
    await advance_clock(stack, shop, 32 * 24 * 3600)

    async def on_hold() -> bool:
        return (await shop_sdk.subscriptions.retrieve(sub_id)).status == "on_hold"

    await eventually(on_hold, within=30, message="the renewal did not put it on hold")

    link = (await shop_sdk.customers.customer_portal.create(customer.customer_id)).link
    secret = await http.sign_in_with_link(link, "test", shop.business_id)
    cookies = {business_cookie("test", shop.business_id): secret}
    form = await http.get(
        f"{stack.portal_urls.test}{base}/subscriptions/{sub_id}/payment-method", cookies=cookies
    )
    assert form.status == 200, form.text
    dues = re.search(r'name="dues" value="([^"]+)"', form.text)
    assert dues

    fields = {
        "csrf_token": form.csrf_token(),
        "payment_method_id": cards["4242"],
        "dues": dues.group(1),
        "action": "confirm",
    }
    replies = await asyncio.gather(
        *(http.request("POST", form.url, cookies=cookies, form=fields) for _ in range(10))
    )
    assert all(r.status == 303 for r in replies), [(r.status, r.text[:200]) for r in replies]
    assert all("/payment-method/done?payment_id=pay_" in r.location for r in replies), [
        r.location for r in replies
    ]
    # Every tab lands on the confirmation of the same payment.
    assert len({r.location for r in replies}) == 1

    async def active() -> bool:
        return (await shop_sdk.subscriptions.retrieve(sub_id)).status == "active"

    await eventually(active, within=30, message="the subscription was not reactivated")
    payments = (await shop_sdk.payments.list(subscription_id=sub_id)).items
    succeeded = [p for p in payments if p.status == "succeeded"]
    # The first period's payment and exactly one dues charge.
    assert len(succeeded) == 2, [(p.status, p.card_last_four, p.charge_type) for p in payments]


async def test_a_cancel_scheduled_in_the_portal_ends_the_subscription_at_the_period_end(
    stack: Stack, shop: PortalBusiness, shop_sdk: AsyncDodoPayments, page: Page
) -> None:
    customer = await shop_sdk.customers.create(email=unique_email("ends"), name="Ada Lovelace")
    base = f"/b/{shop.business_id}"
    await sign_in_at(page, stack, shop, shop_sdk, customer.customer_id, f"{base}/payment-methods")
    await add_cards(page, base, "4242424242424242")
    card = (await card_ids(shop_sdk, customer.customer_id))["4242"]
    sub_id = await subscribed(shop_sdk, customer.customer_id, card)
    detail = f"{stack.portal_urls.test}{base}/subscriptions/{sub_id}"

    await page.goto(f"{detail}/cancel")
    await page.locator("#when-period-end").check()
    await page.locator("#confirm").check()
    await page.locator("#confirm-cancel").click()
    await page.wait_for_url(f"{detail}?done=scheduled")
    await page.goto(f"{stack.portal_urls.test}{base}/subscriptions")
    row = page.locator(f'#current-subscriptions li[data-subscription-id="{sub_id}"]')
    await expect(row).to_contain_text("Cancels at period end")

    await advance_clock(stack, shop, 32 * 24 * 3600)

    async def ended() -> bool:
        return (await shop_sdk.subscriptions.retrieve(sub_id)).status == "cancelled"

    await eventually(ended, within=30, message="the scheduled cancel never took effect")
    await page.reload()
    past = page.locator(f'#past-subscriptions li[data-subscription-id="{sub_id}"]')
    await expect(past.locator('[data-status="cancelled"]')).to_be_visible()
    await expect(page.locator(f"#edit-{sub_id}")).to_have_count(0)
    payments = (await shop_sdk.payments.list(subscription_id=sub_id)).items
    assert [p.status for p in payments] == ["succeeded"]  # the first period only, no renewal
