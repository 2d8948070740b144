"""Change plan and seats in the portal, end to end: a real browser, the whole stack, the SDK.

Issue 14's journeys: a customer on "Basic" opens Change plan, picks "Pro", sees the
preview (charged now, then each period, from when), confirms, passes 3-D Secure (a card
that challenges every charge) and lands on the confirmation; the subscription page then
shows Pro and its next renewal amount. And seats from 1 to 5 mid-period, whose charge
(read back through the official SDK) is exactly the amount the preview showed; and an
add-on from none to two the same way, its page checked by axe and by keyboard.

The products join one plan group through the merchant API's extension field
``plan_group`` (with ``max_quantity``), sent by the SDK as extra body fields.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from billing_kit.testing import eventually
from devstack import Stack
from devstack.portal import PortalBusiness, unique_email
from dodopayments import AsyncDodoPayments
from playwright.async_api import Page, expect

from .test_portal_accessibility import Findings, assert_error_tied_to_field, audit, tab_to
from .test_portal_subscriptions import sign_in_at
from .test_subscriptions_api import BILLING, Cards

pytestmark = pytest.mark.e2e

SHOTS = Path("/tmp/shots-portalplan")
WIDTHS = {"desktop": 1280, "phone": 390}


def monthly(price: int) -> dict[str, Any]:
    return {
        "type": "recurring_price",
        "currency": "EUR",
        "price": price,
        "discount": 0,
        "purchasing_power_parity": False,
        "payment_frequency_count": 1,
        "payment_frequency_interval": "Month",
        "subscription_period_count": 1,
        "subscription_period_interval": "Year",
    }


@pytest_asyncio.fixture(loop_scope="session")
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def plan_group(sdk: AsyncDodoPayments, **prices: int) -> dict[str, str]:
    """Products named after ``prices`` (minor units a month) in one plan group, through the
    SDK with our extension fields ``plan_group`` and ``max_quantity``: name → id."""
    group = f"team-{uuid.uuid4().hex[:6]}"
    ids: dict[str, str] = {}
    for name, price in prices.items():
        product = await sdk.products.create(
            name=name,
            description=f"{name} for growing teams",
            tax_category="saas",
            price=monthly(price),  # type: ignore[arg-type]
            extra_body={"plan_group": group, "max_quantity": 10},
        )
        ids[name] = product.product_id
    return ids


async def subscribe(sdk: AsyncDodoPayments, customer_id: str, product_id: str, card: str) -> str:
    sub = await sdk.subscriptions.create(
        billing=BILLING,  # type: ignore[arg-type]
        customer={"customer_id": customer_id},
        product_id=product_id,
        quantity=1,
        extra_body={"payment_method_id": card},
    )
    assert (await sdk.subscriptions.retrieve(sub.subscription_id)).status == "active"
    return sub.subscription_id


async def shoot(page: Page, name: str) -> None:
    """The page at desktop and phone widths, for a person to look at."""
    await asyncio.to_thread(SHOTS.mkdir, parents=True, exist_ok=True)
    for label, width in WIDTHS.items():
        await page.set_viewport_size({"width": width, "height": 900})
        await page.screenshot(path=str(SHOTS / f"{name}-{label}.png"), full_page=True)
    await page.set_viewport_size({"width": 1280, "height": 900})


def minor_units(text: str) -> int:
    """``€15.00`` → 1500 (the euro pages)."""
    digits = re.sub(r"[^0-9]", "", text)
    return int(digits)


async def plan_change_payments(sdk: AsyncDodoPayments, sub_id: str) -> list[Any]:
    """The subscription's succeeded payments after the first one (oldest first)."""
    paid = [p async for p in sdk.payments.list(subscription_id=sub_id) if p.status == "succeeded"]
    paid.sort(key=lambda p: p.created_at)
    return paid[1:]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
async def test_change_plan_with_preview_confirm_three_d_secure_and_confirmation(
    stack: Stack,
    shop: PortalBusiness,
    shop_sdk: AsyncDodoPayments,
    page: Page,
    http: aiohttp.ClientSession,
) -> None:
    sdk = shop_sdk
    tag = uuid.uuid4().hex[:4]
    plans = await plan_group(sdk, **{f"Basic {tag}": 1999, f"Pro {tag}": 4999})
    basic, pro = plans[f"Basic {tag}"], plans[f"Pro {tag}"]
    customer = await sdk.customers.create(email=unique_email("upgrade"), name="Ada Lovelace")
    cards = Cards(stack, shop.business_id, http)
    first = await cards.save(customer.customer_id, "4242424242424242")
    sub_id = await subscribe(sdk, customer.customer_id, basic, first)
    # Then a card whose every charge with the customer present asks for 3-D Secure.
    challenging = await cards.save(customer.customer_id, "4000002760003184")
    await sdk.subscriptions.update_payment_method(
        sub_id, payment_method={"type": "existing", "payment_method_id": challenging}
    )
    detail = f"/b/{shop.business_id}/subscriptions/{sub_id}"

    await sign_in_at(page, stack, shop, sdk, customer.customer_id, detail)
    await expect(page.locator("#page-title")).to_have_text(f"Basic {tag}")
    await page.locator("#change-plan").click()
    await page.wait_for_url(f"**{detail}/change-plan")
    options = page.locator("#plan-options")
    await expect(options).to_contain_text(f"Pro {tag}")
    await expect(options).to_contain_text("€49.99 per seat per month")
    await expect(options).to_contain_text("Pro " + tag + " for growing teams")
    await expect(page.locator(f"#plan-{basic}")).to_be_checked()
    await shoot(page, "change-plan")

    await page.locator(f"#plan-{pro}").check()
    await page.locator("#see-preview").click()
    await page.wait_for_url(f"**{detail}/change-plan/preview?**")
    charged_now = (await page.locator("#charged-now").inner_text()).strip()
    assert 0 < minor_units(charged_now) <= 3000, charged_now  # at most the full difference
    await expect(page.locator("#then-each-period")).to_have_text("€49.99 per month")
    await expect(page.locator("#effective-from")).to_have_text("Today")
    await shoot(page, "preview")
    # Nothing has changed before Confirm.
    assert (await sdk.subscriptions.retrieve(sub_id)).product_id == basic

    await page.locator("#confirm-change").click()
    await expect(page.get_by_role("heading", name="Confirm your payment")).to_be_visible()
    await page.get_by_role("button", name="Complete").click()
    await page.wait_for_url(f"**{detail}/change-plan/done?**")

    async def changed() -> bool:
        await page.reload()
        return await page.locator('#result[data-state="changed"]').count() == 1

    await eventually(changed, within=30, message="the confirmation never said the plan changed")
    await expect(page.locator("#page-title")).to_have_text(
        f"Your plan is now Pro {tag} \u00d7 1 seat"
    )
    await expect(page.locator("#next-renewal")).to_contain_text("€49.99 per month")
    await shoot(page, "confirmation")

    await page.locator("#back-to-subscription").click()
    await expect(page.locator("#page-title")).to_have_text(f"Pro {tag}")
    await expect(page.locator(".sub-price")).to_have_text("€49.99 per month")
    await expect(page.locator("#sub-date")).not_to_be_empty()
    after = await sdk.subscriptions.retrieve(sub_id)
    assert after.product_id == pro and after.recurring_pre_tax_amount == 4999
    # Exactly one plan-change charge, of the amount the preview showed.
    extra = await plan_change_payments(sdk, sub_id)
    assert [p.total_amount for p in extra] == [minor_units(charged_now)]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
async def test_seats_from_one_to_five_charge_what_the_preview_said(
    stack: Stack,
    shop: PortalBusiness,
    shop_sdk: AsyncDodoPayments,
    page: Page,
    http: aiohttp.ClientSession,
) -> None:
    sdk = shop_sdk
    tag = uuid.uuid4().hex[:4]
    plans = await plan_group(sdk, **{f"Seats {tag}": 1000})
    customer = await sdk.customers.create(email=unique_email("seats"), name="Ada Lovelace")
    card = await Cards(stack, shop.business_id, http).save(customer.customer_id, "4242424242424242")
    sub_id = await subscribe(sdk, customer.customer_id, plans[f"Seats {tag}"], card)
    detail = f"/b/{shop.business_id}/subscriptions/{sub_id}"

    await sign_in_at(page, stack, shop, sdk, customer.customer_id, detail)
    # The only plan of its group: seats can change, the plan cannot.
    await expect(page.locator("#change-plan")).to_have_count(0)
    await page.locator("#change-seats").click()
    await page.wait_for_url(f"**{detail}/seats")
    await expect(page.locator("#quantity")).to_have_value("1")
    await page.locator("#quantity").fill("11")
    await page.locator("#see-preview").click()
    await expect(page.locator("#quantity-error")).to_have_text(
        "Enter a whole number of seats from 1 to 10."
    )
    await page.locator("#quantity").fill("5")
    await page.locator("#see-preview").click()
    await page.wait_for_url(f"**{detail}/change-plan/preview?**")
    await expect(page.locator("#summary-title")).to_have_text(f"Seats {tag} \u00d7 5 seats")
    await expect(page.locator("#then-each-period")).to_have_text("€50.00 per month")
    charged_now = (await page.locator("#charged-now").inner_text()).strip()
    assert 0 < minor_units(charged_now) <= 4000, charged_now

    await page.locator("#confirm-change").click()
    await page.wait_for_url(f"**{detail}/change-plan/done?**")

    async def changed() -> bool:
        if await page.locator('#result[data-state="changed"]').count() == 1:
            return True
        await page.reload()
        return False

    await eventually(changed, within=30, message="the seats never changed")
    title = page.locator("#page-title")
    await expect(title).to_have_text(f"Your plan is now Seats {tag} \u00d7 5 seats")
    after = await sdk.subscriptions.retrieve(sub_id)
    assert after.quantity == 5 and after.recurring_pre_tax_amount == 5000
    extra = await plan_change_payments(sdk, sub_id)
    assert [p.total_amount for p in extra] == [minor_units(charged_now)]
    await page.goto(f"{stack.portal_urls.test}{detail}")
    await expect(page.locator("#sub-quantity")).to_have_text("5")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
async def test_a_downgrade_waits_for_the_renewal_is_shown_and_can_be_cancelled(
    stack: Stack,
    shop: PortalBusiness,
    shop_sdk: AsyncDodoPayments,
    page: Page,
    http: aiohttp.ClientSession,
) -> None:
    sdk = shop_sdk
    tag = uuid.uuid4().hex[:4]
    plans = await plan_group(sdk, **{f"Lite {tag}": 999, f"Team {tag}": 2999})
    customer = await sdk.customers.create(email=unique_email("downgrade"), name="Ada Lovelace")
    card = await Cards(stack, shop.business_id, http).save(customer.customer_id, "4242424242424242")
    sub_id = await subscribe(sdk, customer.customer_id, plans[f"Team {tag}"], card)
    detail = f"/b/{shop.business_id}/subscriptions/{sub_id}"
    renews = (await sdk.subscriptions.retrieve(sub_id)).next_billing_date

    await sign_in_at(page, stack, shop, sdk, customer.customer_id, detail)
    await page.locator("#change-plan").click()
    await page.locator(f"#plan-{plans[f'Lite {tag}']}").check()
    await page.locator("#see-preview").click()
    await page.wait_for_url(f"**{detail}/change-plan/preview?**")
    await expect(page.locator("#charged-now")).to_have_text("€0.00")
    await expect(page.locator("#then-each-period")).to_have_text("€9.99 per month")
    await expect(page.locator("#preview")).to_contain_text("Nothing changes or is charged until")
    await page.locator("#confirm-change").click()
    await page.wait_for_url(f"**{detail}/change-plan/done?**")
    await expect(page.locator("#result")).to_have_attribute("data-state", "scheduled")

    await page.locator("#back-to-subscription").click()
    scheduled = page.locator("#scheduled-change")
    await expect(scheduled).to_contain_text(f"Changes to Lite {tag} \u00d7 1 seat on")
    await expect(scheduled).to_contain_text("then €9.99 per month")
    await expect(page.locator("#page-title")).to_have_text(f"Team {tag}")
    await shoot(page, "scheduled-detail")
    after = await sdk.subscriptions.retrieve(sub_id)
    assert after.product_id == plans[f"Team {tag}"] and after.next_billing_date == renews
    assert await plan_change_payments(sdk, sub_id) == []

    await page.locator("#cancel-scheduled-change").click()
    await page.wait_for_url(f"**{detail}?done=change_cancelled")
    await expect(page.locator("#notice")).to_contain_text(
        "scheduled plan change has been cancelled"
    )
    await expect(page.locator("#scheduled-change")).to_have_count(0)
    assert (await sdk.subscriptions.retrieve(sub_id)).product_id == plans[f"Team {tag}"]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
async def test_a_declined_upgrade_says_why_and_leaves_the_plan_as_it_was(
    stack: Stack,
    shop: PortalBusiness,
    shop_sdk: AsyncDodoPayments,
    page: Page,
    http: aiohttp.ClientSession,
) -> None:
    sdk = shop_sdk
    tag = uuid.uuid4().hex[:4]
    plans = await plan_group(sdk, **{f"Solo {tag}": 1500, f"Studio {tag}": 3500})
    customer = await sdk.customers.create(email=unique_email("declined"), name="Ada Lovelace")
    # Pays for the purchase, declines every later charge.
    card = await Cards(stack, shop.business_id, http).save(customer.customer_id, "4000000000000341")
    sub_id = await subscribe(sdk, customer.customer_id, plans[f"Solo {tag}"], card)
    detail = f"/b/{shop.business_id}/subscriptions/{sub_id}"

    await sign_in_at(page, stack, shop, sdk, customer.customer_id, f"{detail}/change-plan")
    await page.locator(f"#plan-{plans[f'Studio {tag}']}").check()
    await page.locator("#see-preview").click()
    await page.wait_for_url(f"**{detail}/change-plan/preview?**")
    await page.locator("#confirm-change").click()
    await page.wait_for_url(f"**{detail}/change-plan/preview?**declined=*")
    await expect(page.locator("#decline")).to_contain_text("Your card was declined.")
    await expect(page.locator("#decline")).to_contain_text("Your plan has not changed.")
    await expect(page.locator("#confirm-change")).to_be_visible()  # another try is offered
    after = await sdk.subscriptions.retrieve(sub_id)
    assert after.product_id == plans[f"Solo {tag}"] and after.recurring_pre_tax_amount == 1500
    assert after.status == "active"
    assert await plan_change_payments(sdk, sub_id) == []


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
async def test_an_add_on_from_none_to_two_charges_what_the_preview_said(
    stack: Stack,
    shop: PortalBusiness,
    shop_sdk: AsyncDodoPayments,
    page: Page,
    http: aiohttp.ClientSession,
) -> None:
    sdk = shop_sdk
    tag = uuid.uuid4().hex[:4]
    storage = await sdk.addons.create(
        name=f"Storage {tag}",
        description="100 GB more",
        price=300,
        currency="EUR",
        tax_category="saas",
        extra_body={"max_quantity": 5},
    )
    product = await sdk.products.create(
        name=f"Cloud {tag}",
        tax_category="saas",
        price=monthly(1000),  # type: ignore[arg-type]
        addons=[storage.id],
        extra_body={"plan_group": f"cloud-{tag}", "max_quantity": 10},
    )
    customer = await sdk.customers.create(email=unique_email("addons"), name="Ada Lovelace")
    card = await Cards(stack, shop.business_id, http).save(customer.customer_id, "4242424242424242")
    sub_id = await subscribe(sdk, customer.customer_id, product.product_id, card)
    detail = f"/b/{shop.business_id}/subscriptions/{sub_id}"
    field = f"#addon-{storage.id}"

    await sign_in_at(page, stack, shop, sdk, customer.customer_id, detail)
    # The plan offers an add-on the subscription does not have yet.
    await expect(page.locator("#sub-addons")).to_have_text("None")
    await page.locator("#change-addons").click()
    await page.wait_for_url(f"**{detail}/seats*")
    await expect(page.locator("#page-title")).to_have_text("Change seats and add-ons")
    await expect(page.locator(field)).to_have_value("0")
    await expect(page.locator(f"{field}-hint")).to_contain_text("€3.00 each per month")
    # Over the business's limit: said next to the field, nothing previewed.
    await page.locator(field).fill("6")
    await page.locator("#see-preview").click()
    await expect(page.locator(f"{field}-error")).to_have_text(
        "Enter a whole number from 0 to 5 (0 for none)."
    )
    # Accessible as the other pages: the error is tied to its field, the field is
    # reached by keyboard with a visible focus, and axe finds nothing serious.
    await assert_error_tied_to_field(page, field.removeprefix("#"))
    findings = Findings()
    await audit(page, "add-ons with an error", findings)
    await tab_to(page, field)
    await shoot(page, "addons-error")
    await page.locator(field).fill("2")
    await page.locator("#see-preview").click()
    await page.wait_for_url(f"**{detail}/change-plan/preview?**")
    await expect(page.locator("#new-addons")).to_have_text(f"With add-ons: Storage {tag} \u00d7 2")
    await expect(page.locator("#then-each-period")).to_have_text("€16.00 per month")
    addon_line = page.locator('#preview-lines tr[data-kind="addon"]')
    await expect(addon_line).to_contain_text(f"Storage {tag} \u00d7 2")
    charged_now = (await page.locator("#charged-now").inner_text()).strip()
    # The rest of the period of 2 x €3.00, prorated to the second.
    assert 0 < minor_units(charged_now) <= 600, charged_now
    await shoot(page, "addons-preview")
    await audit(page, "add-ons preview", findings)
    assert not (await sdk.subscriptions.retrieve(sub_id)).addons  # nothing before Confirm

    await page.locator("#confirm-change").click()
    await page.wait_for_url(f"**{detail}/change-plan/done?**")

    async def changed() -> bool:
        if await page.locator('#result[data-state="changed"]').count() == 1:
            return True
        await page.reload()
        return False

    await eventually(changed, within=30, message="the add-on never changed")
    await expect(page.locator("#addons-now")).to_have_text(f"Add-ons: Storage {tag} \u00d7 2")
    after = await sdk.subscriptions.retrieve(sub_id)
    assert [(a.addon_id, a.quantity) for a in after.addons] == [(storage.id, 2)]
    assert after.recurring_pre_tax_amount == 1600
    # Exactly one charge for it, of the amount the preview showed.
    extra = await plan_change_payments(sdk, sub_id)
    assert [p.total_amount for p in extra] == [minor_units(charged_now)]

    await page.locator("#back-to-subscription").click()
    await expect(page.locator(f"#sub-addon-{storage.id}")).to_have_text(
        f"Storage {tag} \u00d7 2 €6.00 per month"
    )
    await expect(page.locator(".sub-price")).to_have_text("€16.00 per month")
    await shoot(page, "addons-detail")
    await audit(page, "subscription with add-ons", findings)
    await page.goto(f"{stack.portal_urls.test}{detail}/seats?lang=it")
    await expect(page.locator("#page-title")).to_have_text(
        "Cambia postazioni e componenti aggiuntivi"
    )
    await audit(page, "add-ons in Italian", findings, lang="it")
    assert findings.checked == 8 and not findings.lines, "\n".join(findings.lines)
