"""Pause and resume in the portal, through the real gateway app against in-memory backends:
the buttons a customer sees, the confirmation step, CSRF, the notices, repeats, Italian,
and that another customer's subscription is a 404."""

from __future__ import annotations

import pytest
from billing.subscriptions.v1 import subscriptions_pb2 as subs

from .test_billing_pages import World, world

__all__ = ["world"]  # the fixture, shared with the billing pages' tests


async def test_pause_then_resume_with_a_confirmation_each(world: World) -> None:
    status, html, _ = await world.get(f"subscriptions/{world.sub}")
    assert status == 200 and 'id="pause-subscription"' in html
    assert 'id="resume-subscription"' not in html

    status, html, _ = await world.get(f"subscriptions/{world.sub}/pause")
    assert status == 200 and "Nothing is charged while the subscription is paused." in html
    assert 'id="confirm-pause"' in html
    assert world.billing.count("UpdateSubscription") == 0  # the page itself changes nothing

    resp = await world.post(f"subscriptions/{world.sub}/pause", {})
    assert resp.status == 303
    assert resp.headers["Location"] == world.path(f"subscriptions/{world.sub}?done=paused")
    asked = next(r for n, r in world.billing.calls if n == "UpdateSubscription")
    assert asked.pause and not asked.resume and asked.customer_id == world.customer_id
    assert world.billing.subscriptions[world.sub].status == subs.SUBSCRIPTION_STATUS_PAUSED

    status, html, _ = await world.get(f"subscriptions/{world.sub}?done=paused")
    assert "Your subscription is paused." in html and ">Paused<" in html
    assert "Paused since" in html and 'id="resume-subscription"' in html
    assert 'id="pause-subscription"' not in html

    # A double click lands on the same page without a second change.
    again = await world.post(f"subscriptions/{world.sub}/pause", {})
    assert again.status == 303 and world.billing.count("UpdateSubscription") == 1

    status, html, _ = await world.get(f"subscriptions/{world.sub}/resume")
    assert status == 200 and 'id="confirm-resume"' in html
    assert "You have 30 days left of the period you paid for." in html
    resp = await world.post(f"subscriptions/{world.sub}/resume", {})
    assert resp.status == 303 and resp.headers["Location"].endswith("?done=resumed")
    assert world.billing.subscriptions[world.sub].status == subs.SUBSCRIPTION_STATUS_ACTIVE
    _, html, _ = await world.get(f"subscriptions/{world.sub}?done=resumed")
    assert "Your subscription has been resumed." in html and "Renews on" in html


async def test_pause_needs_the_csrf_token(world: World) -> None:
    resp = await world.post(f"subscriptions/{world.sub}/pause", {}, csrf=False)
    assert resp.status == 400
    assert world.billing.count("UpdateSubscription") == 0
    assert world.billing.subscriptions[world.sub].status == subs.SUBSCRIPTION_STATUS_ACTIVE


async def test_an_on_hold_subscription_offers_no_pause_and_the_post_is_refused(
    world: World,
) -> None:
    held = world.billing.add_subscription(
        world.business_id, world.customer_id, status=subs.SUBSCRIPTION_STATUS_ON_HOLD
    )
    _, html, _ = await world.get(f"subscriptions/{held}")
    assert 'id="pause-subscription"' not in html and 'id="resume-subscription"' not in html
    status, html, _ = await world.get(f"subscriptions/{held}/pause")
    assert status == 200 and 'id="not-possible"' in html and 'id="confirm-pause"' not in html
    resp = await world.post(f"subscriptions/{held}/pause", {})
    assert resp.status == 409
    assert world.billing.subscriptions[held].status == subs.SUBSCRIPTION_STATUS_ON_HOLD


@pytest.mark.parametrize("action", ["pause", "resume"])
async def test_another_customers_subscription_is_a_404(world: World, action: str) -> None:
    stranger = world.auth.add_customer(world.business_id, "eve@example.com")
    theirs = world.billing.add_subscription(world.business_id, stranger)
    status, _, _ = await world.get(f"subscriptions/{theirs}/{action}")
    assert status == 404
    resp = await world.post(f"subscriptions/{theirs}/{action}", {})
    assert resp.status == 404
    assert world.billing.subscriptions[theirs].status == subs.SUBSCRIPTION_STATUS_ACTIVE


async def test_the_pause_page_reads_italian(world: World) -> None:
    status, html, _ = await world.get(f"subscriptions/{world.sub}/pause?lang=it")
    assert status == 200 and "Metti in pausa la sottoscrizione</button>" in html
