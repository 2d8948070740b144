"""Add-ons on subscriptions through the official SDK against the whole stack (issue 14).

A subscription created with an add-on costs plan + add-on each period: the first charge
and the renewal (test clock past the billing date) are each exactly that, and the
renewal's invoice PDF names the add-on. Changing the add-on's quantity mid-period charges
what the preview said, computed by the README's one rounding rule for each line. What
the catalogue refuses (an add-on the product does not offer, more units than its
max_quantity) is a 409 and changes nothing.
"""

from __future__ import annotations

import io
import uuid
from datetime import datetime

import pytest
from billing_kit.testing import eventually
from dodopayments import ConflictError, UnprocessableEntityError
from pypdf import PdfReader

# own_shop is that module's fixture (a business of each test's own, with its test clock).
from .test_plan_change_api import DAY, Shop, own_shop  # noqa: F401
from .test_subscriptions_api import BILLING

pytestmark = pytest.mark.e2e


def _prorate(amount: int, left: int, period: int) -> int:
    """The README's rule: round half up of amount x left / period, integers only."""
    return (2 * amount * left + period) // (2 * period)


async def _addon(shop: Shop, name: str, price: int, max_quantity: int = 0) -> str:
    created = await shop.sdk.addons.create(
        name=name,
        price=price,
        currency="EUR",
        tax_category="saas",
        extra_body={"max_quantity": max_quantity},
    )
    return created.id


async def _customer_with_card(shop: Shop) -> tuple[str, str]:
    customer = await shop.sdk.customers.create(
        email=f"addons-{uuid.uuid4().hex[:8]}@example.com", name="Grace"
    )
    card = await shop.cards.save(customer.customer_id, "4242424242424242")
    return customer.customer_id, card


async def _succeeded(shop: Shop, sid: str) -> list[tuple[str, int]]:
    return [
        (p.payment_id, p.total_amount)
        async for p in shop.sdk.payments.list(subscription_id=sid)
        if p.status == "succeeded"
    ]


async def _invoice_text(shop: Shop, payment_id: str) -> str:
    url = f"{shop.stack.gateway_url}/invoices/payments/{payment_id}"
    headers = {"Authorization": f"Bearer {shop.business.key('test')}"}
    found: list[bytes] = []

    async def ready() -> bool:
        async with shop.http.get(url, headers=headers) as reply:
            body = await reply.read()
            if reply.status == 200 and body.startswith(b"%PDF"):
                found.append(body)
                return True
            return False

    await eventually(ready, within=30, message="no invoice for the payment")
    reader = PdfReader(io.BytesIO(found[-1]))
    return "\n".join(page.extract_text() for page in reader.pages)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
async def test_an_addon_is_paid_with_the_first_period_and_every_renewal_and_invoiced(
    own_shop: Shop,  # noqa: F811 (the imported fixture)
) -> None:
    shop, sdk = own_shop, own_shop.sdk
    seat = await _addon(shop, "Posto in più", 450, max_quantity=10)
    plan = await shop.product("EUR", 2000, addons=[seat])
    customer_id, card = await _customer_with_card(shop)

    created = await sdk.subscriptions.create(
        billing=BILLING,
        customer={"customer_id": customer_id},
        product_id=plan,
        quantity=1,
        payment_method_id=card,
        addons=[{"addon_id": seat, "quantity": 3}],
    )
    assert created.recurring_pre_tax_amount == 2000 + 3 * 450
    assert [(a.addon_id, a.quantity) for a in created.addons] == [(seat, 3)]
    sub = await sdk.subscriptions.retrieve(created.subscription_id)
    assert sub.status == "active" and sub.recurring_pre_tax_amount == 3350
    assert [(a.addon_id, a.quantity) for a in sub.addons] == [(seat, 3)]
    first = await sdk.payments.retrieve(created.payment_id)
    assert (first.status, first.total_amount) == ("succeeded", 3350)

    due = sub.next_billing_date
    assert due is not None
    await shop.advance(31 * DAY + 120)

    async def renewed() -> bool:
        return len(await _succeeded(shop, created.subscription_id)) >= 2

    await eventually(renewed, within=30, message="the subscription did not renew")

    async def period_moved() -> bool:
        return (
            await sdk.subscriptions.retrieve(created.subscription_id)
        ).previous_billing_date == due

    await eventually(period_moved, within=30, message="the renewed period never started")
    paid = await _succeeded(shop, created.subscription_id)
    assert sorted(amount for _, amount in paid) == [3350, 3350]  # exactly one renewal
    (renewal_id,) = [pid for pid, _ in paid if pid != created.payment_id]
    text = await _invoice_text(shop, renewal_id)
    assert "Posto in più" in text  # the add-on's own line on the renewal's invoice
    after = await sdk.subscriptions.retrieve(created.subscription_id)
    assert [(a.addon_id, a.quantity) for a in after.addons] == [(seat, 3)]


def _left(end: datetime, at: datetime, start: datetime) -> tuple[int, int]:
    period = int((end - start).total_seconds())
    return min(max(0, int((end - at).total_seconds())), period), period


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
async def test_changing_addon_quantity_mid_period_charges_exactly_the_preview(
    own_shop: Shop,  # noqa: F811 (the imported fixture)
) -> None:
    shop, sdk = own_shop, own_shop.sdk
    seat = await _addon(shop, "Seat", 333, max_quantity=8)
    plan = await shop.product("EUR", 1500, addons=[seat])
    sid, _ = await shop.subscriber(plan)
    # The subscriber has no add-on yet: add two mid-period, then go to five.
    await shop.advance(9 * DAY + 4 * 3600 + 7)
    before = await sdk.subscriptions.retrieve(sid)
    start, end = before.previous_billing_date, before.next_billing_date
    assert start is not None and end is not None and before.addons == []

    preview = await sdk.subscriptions.preview_change_plan(
        sid,
        product_id=plan,
        quantity=1,
        proration_billing_mode="prorated_immediately",
        addons=[{"addon_id": seat, "quantity": 2}],
    )
    charge = preview.immediate_charge
    left, period = _left(end, charge.effective_at, start)
    assert charge.summary.total_amount == _prorate(666, left, period)
    addon_lines = [line for line in charge.line_items if line.type == "addon"]
    assert [(line.id, line.quantity, line.unit_price) for line in addon_lines] == [(seat, 2, 333)]
    assert preview.new_plan.recurring_pre_tax_amount == 1500 + 666
    assert [(a.addon_id, a.quantity) for a in preview.new_plan.addons] == [(seat, 2)]
    assert (await sdk.subscriptions.retrieve(sid)).addons == []  # the preview wrote nothing

    changed = await sdk.subscriptions.change_plan(
        sid,
        product_id=plan,
        quantity=1,
        proration_billing_mode="prorated_immediately",
        addons=[{"addon_id": seat, "quantity": 2}],
    )
    assert changed.payment_id
    after = await sdk.subscriptions.retrieve(sid)
    assert after.recurring_pre_tax_amount == 2166
    assert [(a.addon_id, a.quantity) for a in after.addons] == [(seat, 2)]
    at = after.previous_billing_date  # the cycle restarted at the change
    assert at is not None
    left_at, _ = _left(end, at, start)
    paid = dict(await _succeeded(shop, sid))
    assert paid[changed.payment_id] == _prorate(666, left_at, period)
    if left_at == left:  # the same whole second: the preview's amount to the minor unit
        assert paid[changed.payment_id] == charge.summary.total_amount

    # Two -> five seats with keep_cycle: the same rule over the new cycle's dates.
    await shop.advance(5 * DAY + 11)
    now = await sdk.subscriptions.retrieve(sid)
    start, end = now.previous_billing_date, now.next_billing_date
    assert start is not None and end is not None
    request = {
        "product_id": plan,
        "quantity": 1,
        "proration_billing_mode": "prorated_immediately_keep_cycle",
        "addons": [{"addon_id": seat, "quantity": 5}],
    }
    preview = await sdk.subscriptions.preview_change_plan(sid, **request)  # type: ignore[arg-type]
    left, period = _left(end, preview.immediate_charge.effective_at, start)
    expected = _prorate(5 * 333, left, period) - _prorate(2 * 333, left, period)
    assert preview.immediate_charge.summary.total_amount == expected
    changed = await sdk.subscriptions.change_plan(sid, **request)  # type: ignore[arg-type]
    assert changed.payment_id
    paid = dict(await _succeeded(shop, sid))
    moved = int((end - preview.immediate_charge.effective_at).total_seconds())
    assert abs(paid[changed.payment_id] - expected) <= 1
    if moved == left:
        assert paid[changed.payment_id] == expected
    final = await sdk.subscriptions.retrieve(sid)
    assert final.next_billing_date == end  # keep_cycle
    assert final.recurring_pre_tax_amount == 1500 + 5 * 333

    # Back to one seat at the next billing date: scheduled with its add-ons, nothing charged.
    scheduled = await sdk.subscriptions.change_plan(
        sid,
        product_id=plan,
        quantity=1,
        proration_billing_mode="prorated_immediately",
        effective_at="next_billing_date",
        addons=[{"addon_id": seat, "quantity": 1}],
    )
    assert scheduled.payment_id is None
    shown = await sdk.subscriptions.retrieve(sid)
    assert shown.scheduled_change is not None
    assert [(a.addon_id, a.name, a.quantity) for a in shown.scheduled_change.addons] == [
        (seat, "Seat", 1)
    ]
    assert shown.recurring_pre_tax_amount == 1500 + 5 * 333


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
async def test_addons_the_catalogue_refuses_change_nothing(
    own_shop: Shop,  # noqa: F811 (the imported fixture)
) -> None:
    shop, sdk = own_shop, own_shop.sdk
    seat = await _addon(shop, "Seat", 500, max_quantity=3)
    other = await _addon(shop, "Not offered", 100)
    plan = await shop.product("EUR", 1000, addons=[seat])
    customer_id, card = await _customer_with_card(shop)

    async def create(addons: list[dict[str, object]]) -> None:
        await sdk.subscriptions.create(
            billing=BILLING,
            customer={"customer_id": customer_id},
            product_id=plan,
            quantity=1,
            payment_method_id=card,
            addons=addons,  # type: ignore[arg-type]
        )

    for refused in (
        [{"addon_id": other, "quantity": 1}],  # the product does not offer it
        [{"addon_id": seat, "quantity": 4}],  # over max_quantity
        [{"addon_id": "adn_nope", "quantity": 1}],
    ):
        with pytest.raises(ConflictError) as conflict:
            await create(refused)
        assert conflict.value.response.headers["x-should-retry"] == "false"
    with pytest.raises(UnprocessableEntityError):
        await create([{"addon_id": seat, "quantity": 0}])
    listed = [s async for s in sdk.subscriptions.list(customer_id=customer_id)]
    assert listed == []
    assert [p async for p in sdk.payments.list(customer_id=customer_id)] == []

    sid, _ = await shop.subscriber(plan)
    before = await sdk.subscriptions.retrieve(sid)
    payments_before = await _succeeded(shop, sid)
    for refused in (
        [{"addon_id": other, "quantity": 1}],
        [{"addon_id": seat, "quantity": 4}],
    ):
        for call in (sdk.subscriptions.preview_change_plan, sdk.subscriptions.change_plan):
            with pytest.raises(ConflictError):
                await call(  # type: ignore[operator]
                    sid,
                    product_id=plan,
                    quantity=1,
                    proration_billing_mode="prorated_immediately",
                    addons=refused,
                )
    with pytest.raises(UnprocessableEntityError):
        await sdk.subscriptions.change_plan(
            sid,
            product_id=plan,
            quantity=1,
            proration_billing_mode="prorated_immediately",
            addons=[{"addon_id": seat, "quantity": 0}],
        )
    after = await sdk.subscriptions.retrieve(sid)
    assert after.model_dump() == before.model_dump()
    assert await _succeeded(shop, sid) == payments_before
