"""Change plan and seats in the portal, through the real gateway app against in-memory
backends: the buttons, the plans with their prices, the preview, Confirm, 3-D Secure and
declines, scheduled downgrades and their cancellation, what the business allows, double
submits, bad input, another customer's subscription, the unified portal and Italian.

The fake prorates as "half the period left": an upgrade charges half the difference."""

from __future__ import annotations

import re
from typing import Any

import pytest
from billing.auth.v1 import auth_pb2
from billing.common.v1 import common_pb2
from billing.payments.v1 import payments_pb2
from billing.subscriptions.v1 import subscriptions_pb2 as subs
from gateway.keys import BUSINESSES

from .test_billing_pages import World, world
from .test_portal_pages import cookie_header
from .test_unified_handoff import unified_sign_in

__all__ = ["world"]  # the fixture, shared with the billing pages' tests

SHOWN = re.compile(r'name="shown" value="([^"]+)"')
RETRY = re.compile(r'name="retry_of" value="([^"]+)"')


def plans(world: World, sub_id: str | None = None) -> None:
    """Basic (current, €19.99), Pro (€49.99) and Lite (€9.99), up to 5 seats."""
    billing = world.billing
    billing.add_plan("pdt_1", "Basic", 1999, max_quantity=5)
    billing.add_plan("pdt_pro", "Pro", 4999, max_quantity=5)
    billing.add_plan("pdt_lite", "Lite", 999, max_quantity=5)
    sub = billing.subscriptions[sub_id or world.sub]
    sub.product_name, sub.quantity = "Basic", 1


def settings(world: World, **allowed: Any) -> None:
    business = world.auth.businesses[world.business_id]
    business.portal_settings.CopyFrom(auth_pb2.PortalSettings(**allowed))
    world.client.app[BUSINESSES]._cache.clear()  # the gateway caches businesses briefly


async def preview(world: World, product_id: str, quantity: int, **more: str) -> tuple[int, str]:
    query = "&".join(
        f"{k}={v}" for k, v in {"product_id": product_id, "quantity": quantity, **more}.items()
    )
    status, html, _ = await world.get(f"subscriptions/{world.sub}/change-plan/preview?{query}")
    return status, html


async def confirm(world: World, html: str, product_id: str, quantity: int, **more: str) -> Any:
    data = {"product_id": product_id, "quantity": str(quantity), "shown": SHOWN.search(html)[1]}  # type: ignore[index]
    retry = RETRY.search(html)
    if retry:
        data["retry_of"] = retry[1]
    return await world.post(f"subscriptions/{world.sub}/change-plan", {**data, **more})


async def test_the_detail_page_offers_change_plan_and_seats(world: World) -> None:
    _, html, _ = await world.get(f"subscriptions/{world.sub}")
    # No other plan in the product's group: no Change plan, but seats can change.
    assert 'id="change-plan"' not in html and 'id="change-seats"' in html
    plans(world)
    _, html, _ = await world.get(f"subscriptions/{world.sub}")
    assert f'id="change-plan" href="{world.path(f"subscriptions/{world.sub}/change-plan")}"' in html
    assert f'id="change-seats" href="{world.path(f"subscriptions/{world.sub}/seats")}"' in html


async def test_upgrade_with_preview_confirm_and_confirmation(world: World) -> None:
    plans(world)
    status, html, _ = await world.get(f"subscriptions/{world.sub}/change-plan")
    assert status == 200, html
    assert "€49.99 per seat per month" in html and "€9.99 per seat per month" in html
    assert "Pro, for teams" in html
    assert re.search(r'value="pdt_1" id="plan-pdt_1" checked>.*?Current plan', html, re.S)
    assert world.billing.count("ChangePlan") == 0 and world.billing.count("PreviewChangePlan") == 0

    status, html = await preview(world, "pdt_pro", 1)
    assert status == 200, html
    # Half the period left: (49.99 - 19.99) / 2 charged now, then 49.99 a month from today.
    assert 'id="charged-now">€15.00<' in html
    assert 'id="then-each-period">€49.99 per month<' in html
    assert 'id="effective-from">Today<' in html and "Visa •••• 4242" in html
    asked = next(r for n, r in world.billing.calls if n == "PreviewChangePlan")
    assert asked.effective_at == subs.PLAN_CHANGE_EFFECTIVE_AT_IMMEDIATELY
    assert asked.proration_billing_mode == subs.PRORATION_BILLING_MODE_PRORATED_IMMEDIATELY
    assert asked.on_payment_failure == subs.ON_PAYMENT_FAILURE_PREVENT_CHANGE
    assert asked.customer_id == world.customer_id
    assert world.billing.count("ChangePlan") == 0

    resp = await confirm(world, html, "pdt_pro", 1)
    assert resp.status == 303, await resp.text()
    done = resp.headers["Location"]
    assert done.startswith(world.path(f"subscriptions/{world.sub}/change-plan/done?"))
    changed = next(r for n, r in world.billing.calls if n == "ChangePlan")
    assert changed.customer_present and changed.idempotency_key
    assert changed.return_url.endswith(
        f"/subscriptions/{world.sub}/change-plan/done?product_id=pdt_pro&quantity=1"
    )
    resp = await world.client.get(done, headers=cookie_header(world.cookies))
    page = await resp.text()
    assert 'data-state="changed"' in page and "Your plan is now Pro \u00d7 1 seat" in page
    assert "We received your payment of €15.00" in page
    assert "Next renewal: Jan 6, 2027, €49.99 per month." in page
    paid = [
        p
        for p in world.billing.payments.values()
        if p.status == payments_pb2.PAYMENT_STATUS_SUCCEEDED
    ]
    assert [p.total_amount for p in paid] == [1500]

    # A double click, a second tab, back + resubmit: the same result, no second charge.
    again = await confirm(world, html, "pdt_pro", 1)
    assert again.status == 303 and "/change-plan/done?" in again.headers["Location"]
    assert len(world.billing.payments) == 1
    _, detail, _ = await world.get(f"subscriptions/{world.sub}")
    assert ">Pro<" in detail and "€49.99 per month" in detail


async def test_two_confirms_racing_share_one_idempotency_key(world: World) -> None:
    plans(world)
    _, html = await preview(world, "pdt_pro", 2)
    # Both tabs submit before either sees the change: the service gets one key.
    world.billing.payments.clear()
    sub = world.billing.subscriptions[world.sub]
    before = subs.Subscription()
    before.CopyFrom(sub)
    await confirm(world, html, "pdt_pro", 2)
    sub.CopyFrom(before)  # as the second tab saw it
    await confirm(world, html, "pdt_pro", 2)
    keys = {r.idempotency_key for n, r in world.billing.calls if n == "ChangePlan"}
    assert len(keys) == 1 and len(world.billing.payments) == 1


async def test_seats_from_one_to_five_with_preview_and_charge(world: World) -> None:
    plans(world)
    status, html, _ = await world.get(f"subscriptions/{world.sub}/seats")
    assert status == 200 and 'name="quantity"' in html and 'max="5"' in html
    assert 'name="from" value="seats"' in html and 'id="plan-options"' not in html
    status, html = await preview(world, "pdt_1", 5, **{"from": "seats"})
    assert status == 200, html
    # (5 x 19.99 - 19.99) / 2 = 39.98 now.
    assert 'id="charged-now">€39.98<' in html and "€99.95 per month" in html
    assert "Basic \u00d7 5 seats" in html
    resp = await confirm(world, html, "pdt_1", 5)
    assert resp.status == 303
    sub = world.billing.subscriptions[world.sub]
    assert sub.quantity == 5 and sub.recurring_pre_tax_amount == 9995
    assert [p.total_amount for p in world.billing.payments.values()] == [3998]
    _, detail, _ = await world.get(f"subscriptions/{world.sub}")
    assert 'id="sub-quantity">5<' in detail


async def test_a_downgrade_is_scheduled_shown_and_can_be_cancelled(world: World) -> None:
    plans(world)
    status, html = await preview(world, "pdt_lite", 1)
    assert status == 200
    assert (
        'id="charged-now">€0.00<' in html
        and "Nothing changes or is charged until Jan 6, 2027" in html
    )
    asked = next(r for n, r in world.billing.calls if n == "PreviewChangePlan")
    assert asked.effective_at == subs.PLAN_CHANGE_EFFECTIVE_AT_NEXT_BILLING_DATE
    resp = await confirm(world, html, "pdt_lite", 1)
    assert resp.status == 303
    page = await (
        await world.client.get(resp.headers["Location"], headers=cookie_header(world.cookies))
    ).text()
    assert 'data-state="scheduled"' in page
    assert not world.billing.payments
    _, detail, _ = await world.get(f"subscriptions/{world.sub}")
    assert "Changes to Lite \u00d7 1 seat on Jan 6, 2027, then €9.99 per month." in detail
    assert ">Basic<" in detail and 'id="cancel-scheduled-change"' in detail

    resp = await world.post(f"subscriptions/{world.sub}/change-plan/cancel-scheduled", {})
    assert resp.status == 303 and resp.headers["Location"].endswith("?done=change_cancelled")
    assert not world.billing.subscriptions[world.sub].HasField("scheduled_change")
    _, detail, _ = await world.get(f"subscriptions/{world.sub}?done=change_cancelled")
    assert "The scheduled plan change has been cancelled." in detail
    assert 'id="scheduled-change"' not in detail
    # A second click (second tab) lands on the same page.
    again = await world.post(f"subscriptions/{world.sub}/change-plan/cancel-scheduled", {})
    assert again.status == 303 and world.billing.count("CancelScheduledChange") == 1


async def test_a_business_that_downgrades_at_once_gets_an_immediate_change(world: World) -> None:
    plans(world)
    settings(
        world,
        allow_plan_change=True,
        allow_quantity_change=True,
        downgrade_timing=auth_pb2.DOWNGRADE_TIMING_IMMEDIATELY,
    )
    _, html = await preview(world, "pdt_lite", 1)
    assert 'id="charged-now">€0.00<' in html and "Nothing to pay now." in html
    await confirm(world, html, "pdt_lite", 1)
    assert world.billing.subscriptions[world.sub].product_id == "pdt_lite"


async def test_three_d_secure_then_the_change_completes_on_the_payment(world: World) -> None:
    plans(world)
    sub = world.billing.subscriptions[world.sub]
    sub.payment_method_id = world.billing.add_method(world.business_id, world.customer_id, "3184")
    _, html = await preview(world, "pdt_pro", 1)
    resp = await confirm(world, html, "pdt_pro", 1)
    assert resp.status == 303 and resp.headers["Location"].startswith("https://pay.example/3ds/")
    assert sub.product_id == "pdt_1"  # nothing changes before the bank says yes
    payment_id = resp.headers["Location"].rsplit("/", 1)[1]
    back = (
        f"subscriptions/{world.sub}/change-plan/done"
        f"?product_id=pdt_pro&quantity=1&payment_id={payment_id}"
    )
    _, page, _ = await world.get(back)
    assert 'data-state="challenge"' in page and 'id="continue-challenge"' in page
    world.billing.finish_challenge(payment_id, passed=True)
    _, page, _ = await world.get(back)
    assert 'data-state="changed"' in page and "Your plan is now Pro \u00d7 1 seat" in page


async def test_a_failed_challenge_or_decline_shows_the_reason_and_keeps_the_plan(
    world: World,
) -> None:
    plans(world)
    sub = world.billing.subscriptions[world.sub]
    sub.payment_method_id = world.billing.add_method(world.business_id, world.customer_id, "3184")
    _, html = await preview(world, "pdt_pro", 1)
    resp = await confirm(world, html, "pdt_pro", 1)
    payment_id = resp.headers["Location"].rsplit("/", 1)[1]
    world.billing.finish_challenge(payment_id, passed=False)
    status, _, resp = await world.get(
        f"subscriptions/{world.sub}/change-plan/done?product_id=pdt_pro&quantity=1&payment_id={payment_id}"
    )
    assert status == 303 and f"declined={payment_id}" in resp.headers["Location"]
    _, html = await preview(world, "pdt_pro", 1, declined=payment_id)
    assert 'id="decline"' in html and "Your bank could not confirm this payment." in html
    assert "Your plan has not changed." in html and sub.product_id == "pdt_1"

    # Retried with a card that declines: a new attempt (a new key), refused, plan kept.
    sub.payment_method_id = world.billing.add_method(world.business_id, world.customer_id, "0002")
    _, html = await preview(world, "pdt_pro", 1, declined=payment_id)
    resp = await confirm(world, html, "pdt_pro", 1)
    assert resp.status == 303 and "/change-plan/preview?" in resp.headers["Location"]
    assert "declined=" in resp.headers["Location"]
    keys = [r.idempotency_key for n, r in world.billing.calls if n == "ChangePlan"]
    assert len(set(keys)) == 2
    status, html, _ = await world.get(resp.headers["Location"].removeprefix(world.path("")))
    assert "Your card was declined. Try another card." in html
    assert sub.product_id == "pdt_1" and sub.recurring_pre_tax_amount == 1999


async def test_a_price_the_customer_did_not_see_is_not_charged(world: World) -> None:
    plans(world)
    _, html = await preview(world, "pdt_pro", 1)
    world.billing.plans["pdt_pro"].unit_price = 5999
    resp = await confirm(world, html, "pdt_pro", 1)
    assert resp.status == 409
    page = await resp.text()
    assert "The price has changed." in page and 'id="charged-now">€20.00<' in page
    assert world.billing.count("ChangePlan") == 0


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("product_id=pdt_pro&quantity=0", "Enter a whole number of seats from 1 to 5."),
        ("product_id=pdt_pro&quantity=6", "Enter a whole number of seats from 1 to 5."),
        ("product_id=pdt_pro&quantity=two", "Enter a whole number of seats from 1 to 5."),
        ("product_id=pdt_nope&quantity=1", "Choose one of the plans."),
        ("product_id=pdt_1&quantity=1", "That is your current plan."),
    ],
)
async def test_bad_choices_are_explained_and_change_nothing(
    world: World, query: str, message: str
) -> None:
    plans(world)
    status, html, _ = await world.get(f"subscriptions/{world.sub}/change-plan/preview?{query}")
    assert status == 422 and message in html
    resp = await world.post(
        f"subscriptions/{world.sub}/change-plan",
        dict(pair.split("=") for pair in query.split("&")) | {"shown": "0-EUR-0"},
    )
    # Posting the plan it already has is a repeat of a change that went through.
    assert resp.status == (303 if query.startswith("product_id=pdt_1&") else 422)
    assert world.billing.count("ChangePlan") == 0 and world.billing.count("PreviewChangePlan") == 0


async def test_confirm_needs_the_csrf_token(world: World) -> None:
    plans(world)
    _, html = await preview(world, "pdt_pro", 1)
    data = {"product_id": "pdt_pro", "quantity": "1", "shown": SHOWN.search(html)[1]}  # type: ignore[index]
    resp = await world.post(f"subscriptions/{world.sub}/change-plan", data, csrf=False)
    assert resp.status == 400
    resp = await world.post(
        f"subscriptions/{world.sub}/change-plan/cancel-scheduled", {}, csrf=False
    )
    assert resp.status == 400
    assert (
        world.billing.count("ChangePlan") == 0 and world.billing.count("CancelScheduledChange") == 0
    )


async def test_what_the_business_disallows_is_neither_shown_nor_accepted(world: World) -> None:
    plans(world)
    settings(world, allow_cancel=True)  # present: plan and seat changes off
    _, html, _ = await world.get(f"subscriptions/{world.sub}")
    assert 'id="change-plan"' not in html and 'id="change-seats"' not in html
    assert world.billing.count("ListPlanOptions") == 0
    for rest in ("change-plan", "seats", "change-plan/preview?product_id=pdt_pro&quantity=1"):
        status, page, _ = await world.get(f"subscriptions/{world.sub}/{rest}")
        assert status == 403 and "This action is not available in the portal." in page, rest
    resp = await world.post(
        f"subscriptions/{world.sub}/change-plan",
        {"product_id": "pdt_pro", "quantity": "1", "shown": "1500-EUR-0"},
    )
    assert resp.status == 403 and world.billing.count("ChangePlan") == 0

    # Seats only: the plan page and a plan switch are refused, seats are fine.
    settings(world, allow_quantity_change=True)
    _, html, _ = await world.get(f"subscriptions/{world.sub}")
    assert 'id="change-plan"' not in html and 'id="change-seats"' in html
    status, _ = await preview(world, "pdt_pro", 1)
    assert status == 403
    status, _ = await preview(world, "pdt_1", 3, **{"from": "seats"})
    assert status == 200

    # Plan only: a seat change smuggled into the plan form is refused.
    settings(world, allow_plan_change=True)
    _, html, _ = await world.get(f"subscriptions/{world.sub}/change-plan")
    assert 'name="quantity" value="1"' in html and 'type="number"' not in html
    status, _ = await preview(world, "pdt_pro", 3)
    assert status == 403
    status, _ = await preview(world, "pdt_pro", 1)
    assert status == 200


async def test_only_an_active_subscription_offers_changes(world: World) -> None:
    plans(world)
    world.billing.subscriptions[world.sub].cancel_at_next_billing_date = True
    _, html, _ = await world.get(f"subscriptions/{world.sub}")
    assert 'id="change-plan"' not in html and 'id="change-seats"' not in html
    status, html, _ = await world.get(f"subscriptions/{world.sub}/change-plan")
    assert status == 200 and 'id="not-possible"' in html
    status, _, resp = await world.get(
        f"subscriptions/{world.sub}/change-plan/preview?product_id=pdt_pro&quantity=1"
    )
    assert status == 303 and resp.headers["Location"] == world.path(f"subscriptions/{world.sub}")
    resp = await world.post(
        f"subscriptions/{world.sub}/change-plan",
        {"product_id": "pdt_pro", "quantity": "1", "shown": "1500-EUR-0"},
    )
    assert resp.status == 409 and world.billing.count("ChangePlan") == 0


async def test_another_customers_subscription_is_a_404(world: World) -> None:
    plans(world)
    stranger = world.auth.add_customer(world.business_id, "eve@example.com")
    theirs = world.billing.add_subscription(world.business_id, stranger)
    for rest in (
        "change-plan",
        "seats",
        "change-plan/preview?product_id=pdt_pro&quantity=1",
        "change-plan/done",
    ):
        status, _, _ = await world.get(f"subscriptions/{theirs}/{rest}")
        assert status == 404, rest
    resp = await world.post(
        f"subscriptions/{theirs}/change-plan",
        {"product_id": "pdt_pro", "quantity": "1", "shown": "x"},
    )
    assert resp.status == 404 and world.billing.count("ChangePlan") == 0


async def test_the_unified_portal_offers_the_same_actions(world: World) -> None:
    business_id = world.auth.add_business("Shop U")
    customer = world.auth.add_customer(business_id, "grace@example.com", mode=common_pb2.MODE_LIVE)
    card = world.billing.add_method(business_id, customer, "4242", mode=common_pb2.MODE_LIVE)
    sub_id = world.billing.add_subscription(
        business_id, customer, mode=common_pb2.MODE_LIVE, payment_method_id=card
    )
    plans(world, sub_id)
    cookies = await unified_sign_in(world.client, world.auth, "grace@example.com")
    base = f"/all/b/{business_id}/subscriptions/{sub_id}"
    resp = await world.client.get(base, headers=cookie_header(cookies))
    html = await resp.text()
    assert resp.status == 200, html
    assert f'id="change-plan" href="{base}/change-plan"' in html
    assert f'id="change-seats" href="{base}/seats"' in html
    resp = await world.client.get(f"{base}/change-plan", headers=cookie_header(cookies))
    page = await resp.text()
    assert resp.status == 200 and f'action="{base}/change-plan/preview"' in page


async def test_the_change_plan_pages_read_italian(world: World) -> None:
    plans(world)
    status, html, _ = await world.get(f"subscriptions/{world.sub}/change-plan?lang=it")
    assert status == 200 and "Cambia piano" in html and "49,99\xa0€ per postazione al mese" in html
    status, html = await preview(world, "pdt_pro", 1, lang="it")
    assert status == 200 and "Addebitato ora" in html and "Conferma e paga 15,00\xa0€" in html


async def test_a_change_waiting_for_the_bank_offers_the_way_back_not_another_change(
    world: World,
) -> None:
    plans(world)
    sub = world.billing.subscriptions[world.sub]
    sub.payment_method_id = world.billing.add_method(world.business_id, world.customer_id, "3184")
    _, html = await preview(world, "pdt_pro", 1)
    await confirm(world, html, "pdt_pro", 1)
    sub.challenge_url = world.billing.payments[sub.pending_payment_id].challenge_url
    _, detail, _ = await world.get(f"subscriptions/{world.sub}")
    assert 'id="change-awaiting-bank"' in detail
    assert f'<a href="{sub.challenge_url}" id="continue-challenge">' in detail
    assert 'id="change-plan"' not in detail and 'id="change-seats"' not in detail
