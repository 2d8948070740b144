"""Plan changes through the official SDK against the whole stack.

Each test has a business of its own, so its test clock moves only for it. An upgrade
mid-period with ``prorated_immediately`` charges what the documented rule gives at the
instant of the change (the README's one rounding rule, recomputed here from the
subscription's dates) and what the preview said at its instant; the payment is a
``plan_change`` payment and gets an invoice. A downgrade at the next billing date is
shown as ``scheduled_change``, can be cancelled, and otherwise renews at the new price.
A declined upgrade with ``prevent_change`` changes nothing; with ``apply_change`` the
subscription goes on hold on the new plan. Bad input is a 4xx and changes nothing.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from billing_kit.testing import eventually
from devstack import Stack
from devstack.portal import PortalBusiness, create_portal_business
from dodopayments import (
    AsyncDodoPayments,
    ConflictError,
    NotFoundError,
    UnprocessableEntityError,
)

from .conftest import merchant_sdk
from .test_subscriptions_api import BILLING, Cards

pytestmark = pytest.mark.e2e
DAY = 86_400


def _price(currency: str, amount: int, interval: str) -> Any:
    return {
        "type": "recurring_price",
        "currency": currency,
        "price": amount,
        "payment_frequency_count": 1,
        "payment_frequency_interval": interval,
        "subscription_period_count": 10,
        "subscription_period_interval": "Year",
    }


def _prorate(amount: int, left: int, period: int) -> int:
    """The README's rule: round half up of amount x left / period, integers only."""
    return (2 * amount * left + period) // (2 * period)


def _expected(old: int, new: int, start: datetime, end: datetime, at: datetime) -> int:
    period = int((end - start).total_seconds())
    left = min(max(0, int((end - at).total_seconds())), period)
    return max(0, _prorate(new, left, period) - _prorate(old, left, period))


@dataclass
class Shop:
    """A business of one test: its SDK, card saver and raw HTTP."""

    business: PortalBusiness
    sdk: AsyncDodoPayments
    cards: Cards
    http: aiohttp.ClientSession
    stack: Stack

    async def advance(self, seconds: int) -> None:
        async with self.http.post(
            f"{self.stack.gateway_url}/test-helpers/clock/advance",
            json={"seconds": seconds},
            headers={"Authorization": f"Bearer {self.business.key('test')}"},
        ) as reply:
            assert reply.status == 200, await reply.text()

    async def product(self, currency: str, amount: int, interval: str = "Month", **ext: Any) -> str:
        created = await self.sdk.products.create(
            name=f"Plan {amount} {uuid.uuid4().hex[:4]}",
            tax_category="saas",
            price=_price(currency, amount, interval),
            extra_body={"plan_group": "tiers", **ext},
        )
        return created.product_id

    async def subscriber(self, product_id: str, quantity: int = 1) -> tuple[str, str]:
        """A new customer with a 4242 card, subscribed to product_id: (subscription, customer)."""
        customer = await self.sdk.customers.create(
            email=f"plan-{uuid.uuid4().hex[:8]}@example.com", name="Ada"
        )
        card = await self.cards.save(customer.customer_id, "4242424242424242")
        created = await self.sdk.subscriptions.create(
            billing=BILLING,
            customer={"customer_id": customer.customer_id},
            product_id=product_id,
            quantity=quantity,
            payment_method_id=card,
        )
        return created.subscription_id, customer.customer_id

    async def invoiced(self, payment_id: str) -> None:
        async def ready() -> bool:
            async with self.http.get(
                f"{self.stack.gateway_url}/invoices/payments/{payment_id}",
                headers={"Authorization": f"Bearer {self.business.key('test')}"},
            ) as reply:
                return reply.status == 200 and (await reply.read()).startswith(b"%PDF")

        await eventually(ready, within=30, message="no invoice for the plan-change payment")


@pytest_asyncio.fixture(loop_scope="session")
async def own_shop(stack: Stack) -> AsyncIterator[Shop]:
    async with stack.auth_admin() as admin:
        business = await create_portal_business(admin, f"Piani {uuid.uuid4().hex[:6]}")
    async with merchant_sdk(stack, business) as sdk, aiohttp.ClientSession() as http:
        yield Shop(business, sdk, Cards(stack, business.business_id, http), http, stack)


# (currency, interval, old price, new price, old quantity, new quantity, seconds into the period)
CASES = [
    ("USD", "Month", 1000, 2500, 1, 1, 11 * DAY + 7 * 3600 + 13),
    ("JPY", "Year", 9800, 19800, 1, 1, 200 * DAY + 55),
    ("EUR", "Month", 1500, 1500, 1, 5, 15 * DAY + 1),  # seats 1 -> 5 on the same plan
]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-{c[1]}-{c[4]}to{c[5]}" for c in CASES])
async def test_an_upgrade_mid_period_charges_what_the_preview_said(
    own_shop: Shop, case: tuple[str, str, int, int, int, int, int]
) -> None:
    currency, interval, old_price, new_price, old_qty, new_qty, into = case
    shop, sdk = own_shop, own_shop.sdk
    old = await shop.product(currency, old_price, interval)
    new = old if old_qty != new_qty else await shop.product(currency, new_price, interval)
    sid, _ = await shop.subscriber(old, old_qty)
    await shop.advance(into)
    before = await sdk.subscriptions.retrieve(sid)
    start, end = before.previous_billing_date, before.next_billing_date
    assert start is not None and end is not None

    preview = await sdk.subscriptions.preview_change_plan(
        sid, product_id=new, quantity=new_qty, proration_billing_mode="prorated_immediately"
    )
    total = preview.immediate_charge.summary.total_amount
    old_amount, new_amount = old_price * old_qty, new_price * new_qty
    assert total == _expected(
        old_amount, new_amount, start, end, preview.immediate_charge.effective_at
    )
    assert 0 < total < new_amount
    assert preview.immediate_charge.summary.currency == currency
    assert {line.type for line in preview.immediate_charge.line_items} == {"subscription"}
    assert preview.new_plan.product_id == new and preview.new_plan.quantity == new_qty
    assert preview.new_plan.recurring_pre_tax_amount == new_amount
    assert (await sdk.subscriptions.retrieve(sid)).product_id == old  # the preview wrote nothing

    changed = await sdk.subscriptions.change_plan(
        sid, product_id=new, quantity=new_qty, proration_billing_mode="prorated_immediately"
    )
    assert changed.payment_id
    after = await sdk.subscriptions.retrieve(sid)
    assert (after.product_id, after.quantity, after.recurring_pre_tax_amount) == (
        new,
        new_qty,
        new_amount,
    )
    at = after.previous_billing_date  # the cycle restarted at the change
    assert at is not None and at >= preview.immediate_charge.effective_at
    payment = await sdk.payments.retrieve(changed.payment_id)
    assert payment.status == "succeeded" and payment.currency == currency
    # Exactly the rule at the change's instant; the preview is the same rule at its own
    # instant, so the two agree whenever the whole seconds left agree (nearly always).
    assert payment.total_amount == _expected(old_amount, new_amount, start, end, at)
    if int((end - at).total_seconds()) == int(
        (end - preview.immediate_charge.effective_at).total_seconds()
    ):
        assert payment.total_amount == total
    assert abs(payment.total_amount - total) <= 1
    assert getattr(payment, "charge_type", "plan_change") == "plan_change"
    await shop.invoiced(changed.payment_id)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
async def test_a_downgrade_at_the_next_billing_date_is_scheduled_cancellable_and_renews_new(
    own_shop: Shop,
) -> None:
    shop, sdk = own_shop, own_shop.sdk
    pro = await shop.product("EUR", 3000)
    basic = await shop.product("EUR", 1000)
    sid, _ = await shop.subscriber(pro)

    async def schedule() -> None:
        reply = await sdk.subscriptions.change_plan(
            sid,
            product_id=basic,
            quantity=1,
            proration_billing_mode="prorated_immediately",
            effective_at="next_billing_date",
        )
        assert reply.payment_id is None  # nothing charged now

    await schedule()
    shown = await sdk.subscriptions.retrieve(sid)
    assert shown.scheduled_change is not None
    assert shown.scheduled_change.product_id == basic and shown.scheduled_change.quantity == 1
    assert shown.scheduled_change.effective_at == shown.next_billing_date
    assert shown.product_id == pro and shown.recurring_pre_tax_amount == 3000

    # A second change while one is scheduled is refused, unless it replaces it.
    with pytest.raises(ConflictError) as again:
        await sdk.subscriptions.change_plan(
            sid, product_id=basic, quantity=2, proration_billing_mode="do_not_bill"
        )
    assert again.value.response.headers["x-should-retry"] == "false"

    await sdk.subscriptions.cancel_change_plan(sid)
    assert (await sdk.subscriptions.retrieve(sid)).scheduled_change is None
    with pytest.raises(ConflictError):
        await sdk.subscriptions.cancel_change_plan(sid)

    await schedule()
    due = (await sdk.subscriptions.retrieve(sid)).next_billing_date
    assert due is not None
    await shop.advance(31 * DAY + 120)

    async def renewed() -> bool:
        paid = [p async for p in sdk.payments.list(subscription_id=sid) if p.status == "succeeded"]
        return len(paid) == 2

    await eventually(renewed, within=30, message="the scheduled change did not renew")

    # The renewal's payment is recorded before the scheduler writes the new period.
    async def period_moved() -> bool:
        return (await sdk.subscriptions.retrieve(sid)).previous_billing_date == due

    await eventually(period_moved, within=30, message="the renewed period never started")
    after = await sdk.subscriptions.retrieve(sid)
    assert (after.product_id, after.recurring_pre_tax_amount) == (basic, 1000)
    assert after.scheduled_change is None and after.status == "active"
    assert after.previous_billing_date == due
    paid = [p async for p in sdk.payments.list(subscription_id=sid) if p.status == "succeeded"]
    assert sorted(p.total_amount for p in paid) == [1000, 3000]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
async def test_a_declined_upgrade_prevent_change_keeps_the_plan_apply_change_holds(
    own_shop: Shop,
) -> None:
    shop, sdk = own_shop, own_shop.sdk
    basic = await shop.product("EUR", 1000)
    pro = await shop.product("EUR", 2500)
    sid, customer = await shop.subscriber(basic)
    declining = await shop.cards.save(customer, "4000000000000341")
    await sdk.subscriptions.update_payment_method(
        sid, payment_method={"type": "existing", "payment_method_id": declining}
    )
    await shop.advance(10 * DAY)
    before = await sdk.subscriptions.retrieve(sid)
    assert before.payment_method_id == declining

    refused = await sdk.subscriptions.change_plan(
        sid,
        product_id=pro,
        quantity=1,
        proration_billing_mode="prorated_immediately",
        on_payment_failure="prevent_change",
    )
    assert refused.payment_id
    assert (await sdk.payments.retrieve(refused.payment_id)).status == "failed"
    kept = await sdk.subscriptions.retrieve(sid)
    assert (kept.status, kept.product_id, kept.quantity, kept.recurring_pre_tax_amount) == (
        "active",
        basic,
        1,
        1000,
    )
    assert kept.next_billing_date == before.next_billing_date

    await sdk.subscriptions.change_plan(
        sid,
        product_id=pro,
        quantity=1,
        proration_billing_mode="prorated_immediately",
        on_payment_failure="apply_change",
    )
    held = await sdk.subscriptions.retrieve(sid)
    # The documented rule: the new plan applies and the subscription is on hold for one
    # period of it, collected by the usual reactivation.
    assert (held.status, held.product_id, held.amount_due) == ("on_hold", pro, 2500)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
async def test_bad_plan_changes_are_refused_and_change_nothing(own_shop: Shop) -> None:
    shop, sdk = own_shop, own_shop.sdk
    basic = await shop.product("EUR", 1000, max_quantity=3)
    dollars = await shop.product("USD", 1000)
    once = await sdk.products.create(
        name="Sticker",
        tax_category="saas",
        price={"type": "one_time_price", "currency": "EUR", "price": 100},
    )
    sid, _ = await shop.subscriber(basic)
    before = await sdk.subscriptions.retrieve(sid)
    extension = (await sdk.products.retrieve(basic)).to_dict()
    assert (extension["plan_group"], extension["max_quantity"]) == ("tiers", 3)

    def body(**changes: Any) -> dict[str, Any]:
        return {
            "product_id": basic,
            "quantity": 2,
            "proration_billing_mode": "prorated_immediately",
            **changes,
        }

    refusals: list[tuple[dict[str, Any], type[Exception], str]] = [
        (body(product_id="pdt_nope"), NotFoundError, ""),
        # The catalogue refuses these well-formed bodies: 409 PLAN_UNAVAILABLE, not 422.
        (body(product_id=dollars), ConflictError, "product_id"),
        (body(product_id=once.product_id), ConflictError, "product_id"),
        (body(quantity=0), UnprocessableEntityError, "quantity"),
        (body(quantity=4), ConflictError, "quantity"),
        # An add-on the product does not offer: the catalogue refuses it (ADDON_UNAVAILABLE).
        (body(addons=[{"addon_id": "adn_1", "quantity": 1}]), ConflictError, "addons"),
        (body(collect_via_payment_link=True), UnprocessableEntityError, "collect_via_payment_link"),
        (body(discount_code="SAVE10"), UnprocessableEntityError, "discount_code"),
        (body(quantity=1), ConflictError, "product_id"),  # nothing would change
    ]
    for sent, error, field in refusals:
        for call in (sdk.subscriptions.change_plan, sdk.subscriptions.preview_change_plan):
            with pytest.raises(error) as refused:
                await call(sid, **sent)
            if field:
                problem: Any = refused.value.body
                fields = {e["field"] for e in problem.get("errors", [])}
                assert field in fields or field in problem.get("detail", ""), (sent, problem)
    with pytest.raises(NotFoundError):
        await sdk.subscriptions.change_plan("sub_missing", **body())
    with pytest.raises(ConflictError):
        await sdk.subscriptions.cancel_change_plan(sid)  # nothing scheduled

    await sdk.subscriptions.update(sid, status="cancelled")
    with pytest.raises(ConflictError) as conflict:
        await sdk.subscriptions.change_plan(sid, **body())
    assert conflict.value.response.headers["x-should-retry"] == "false"
    after = await sdk.subscriptions.retrieve(sid)
    assert (after.product_id, after.quantity, after.recurring_pre_tax_amount) == (
        before.product_id,
        before.quantity,
        before.recurring_pre_tax_amount,
    )
    paid = [p async for p in sdk.payments.list(subscription_id=sid)]
    assert len(paid) == 1  # only the first period


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
async def test_ten_identical_changes_at_once_charge_once(own_shop: Shop) -> None:
    shop, sdk = own_shop, own_shop.sdk
    basic = await shop.product("EUR", 1000)
    pro = await shop.product("EUR", 2500)
    sid, _ = await shop.subscriber(basic)
    await shop.advance(3 * DAY)

    async def change() -> str | None:
        try:
            reply = await sdk.subscriptions.change_plan(
                sid, product_id=pro, quantity=1, proration_billing_mode="prorated_immediately"
            )
        except (UnprocessableEntityError, ConflictError):
            return None  # arrived after the change: already on this plan
        return reply.payment_id

    answers = await asyncio.gather(*(change() for _ in range(10)))
    paid = {a for a in answers if a}
    assert len(paid) == 1
    payments = [p async for p in sdk.payments.list(subscription_id=sid)]
    assert len(payments) == 2  # the first period and one plan change
    assert (await sdk.subscriptions.retrieve(sid)).product_id == pro
