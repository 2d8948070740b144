"""What a business lets its customers do in the portal: the merchant API's ``GET``/``PATCH
/business`` (extension) and the portal applying it — actions hidden, their routes
refused with a 403 page, undo of a scheduled cancellation and resume always
allowed — through the real gateway app against in-memory backends."""

from __future__ import annotations

from typing import Any

import pytest
from billing.auth.v1 import auth_pb2
from billing.common.v1 import common_pb2
from billing.subscriptions.v1 import subscriptions_pb2 as subs
from gateway.web.portal_settings import (
    DEFAULT_PORTAL_SETTINGS,
    PortalSettingsView,
    portal_settings_of,
)

from .test_billing_pages import World, world
from .test_portal_pages import cookie_header
from .test_unified_handoff import unified_sign_in

__all__ = ["world"]  # the fixture, shared with the billing pages' tests


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def patch_business(world: World, body: Any, key: str | None = None) -> Any:
    key = key or world.auth.add_key(world.business_id)
    return await world.client.patch("/business", json=body, headers=bearer(key))


async def disallow(world: World, **settings: Any) -> None:
    resp = await patch_business(world, {"portal_settings": settings})
    assert resp.status == 200, await resp.text()


# --- the settings' reading ------------------------------------------------------------------


def test_an_unset_message_reads_as_the_defaults() -> None:
    assert portal_settings_of(auth_pb2.Business(business_id="bus_1")) == DEFAULT_PORTAL_SETTINGS
    assert portal_settings_of(None) == DEFAULT_PORTAL_SETTINGS
    assert DEFAULT_PORTAL_SETTINGS == PortalSettingsView(
        allow_cancel=True,
        allow_pause=True,
        allow_plan_change=True,
        allow_quantity_change=True,
        ask_cancel_reason=True,
        downgrades_at_next_billing_date=True,
    )


def test_a_set_message_is_read_field_by_field() -> None:
    business = auth_pb2.Business(
        portal_settings=auth_pb2.PortalSettings(
            allow_cancel=False,
            allow_pause=True,
            allow_plan_change=False,
            allow_quantity_change=True,
            ask_cancel_reason=False,
            downgrade_timing=auth_pb2.DOWNGRADE_TIMING_IMMEDIATELY,
        )
    )
    assert portal_settings_of(business) == PortalSettingsView(
        allow_cancel=False,
        allow_pause=True,
        allow_plan_change=False,
        allow_quantity_change=True,
        ask_cancel_reason=False,
        downgrades_at_next_billing_date=False,
    )


# --- merchant API ---------------------------------------------------------------------------


async def test_get_business_answers_the_defaults_for_a_business_that_never_chose(
    world: World,
) -> None:
    key = world.auth.add_key(world.business_id)
    resp = await world.client.get("/business", headers=bearer(key))
    assert resp.status == 200
    body = await resp.json()
    assert body["business_id"] == world.business_id and body["name"] == "Acme Italia"
    assert body["portal_settings"] == {
        "allow_cancel": True,
        "allow_pause": True,
        "allow_plan_change": True,
        "allow_quantity_change": True,
        "ask_cancel_reason": True,
        "downgrade_timing": "next_billing_date",
    }


async def test_patch_changes_only_what_is_sent_and_names_the_key(world: World) -> None:
    key = world.auth.add_key(world.business_id, mode=common_pb2.MODE_LIVE)
    resp = await patch_business(
        world,
        {
            "portal_settings": {"allow_plan_change": False, "downgrade_timing": "immediately"},
            "renewal_reminder_days": 7,
        },
        key,
    )
    assert resp.status == 200
    body = await resp.json()
    assert body["portal_settings"]["allow_plan_change"] is False
    assert body["portal_settings"]["downgrade_timing"] == "immediately"
    assert body["portal_settings"]["allow_cancel"] is True
    assert body["renewal_reminder_days"] == 7
    assert world.auth.update_actors == [world.auth.keys[key].key_id]
    # GET answers the same; an empty PATCH changes nothing and asks auth nothing.
    again = await world.client.get("/business", headers=bearer(key))
    assert await again.json() == body
    resp = await patch_business(world, {}, key)
    assert resp.status == 200 and await resp.json() == body
    assert world.auth.calls.get("UpdateBusiness") == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"portal_settings": {"allow_cancel": "no"}}, "portal_settings.allow_cancel"),
        ({"portal_settings": {"allow_pause": None}}, "portal_settings.allow_pause"),
        ({"portal_settings": {"downgrade_timing": "later"}}, "portal_settings.downgrade_timing"),
        ({"portal_settings": {"allow_refunds": True}}, "portal_settings.allow_refunds"),
        ({"renewal_reminder_days": 0}, "renewal_reminder_days"),
        ({"renewal_reminder_days": "3"}, "renewal_reminder_days"),
        ({"license_grace_days": 366}, "license_grace_days"),
        ({"name": "Renamed"}, "name"),
    ],
)
async def test_a_bad_or_unknown_field_is_a_422_naming_it_and_changes_nothing(
    world: World, body: dict[str, Any], field: str
) -> None:
    resp = await patch_business(world, body)
    assert resp.status == 422
    assert resp.headers["x-should-retry"] == "false"
    problem = await resp.json()
    assert field in [e["field"] for e in problem["errors"]], problem
    assert world.auth.calls.get("UpdateBusiness") is None


async def test_the_business_api_needs_a_key(world: World) -> None:
    resp = await world.client.get("/business")
    assert resp.status == 401
    resp = await world.client.patch("/business", json={"license_grace_days": 3})
    assert resp.status == 401 and world.auth.calls.get("UpdateBusiness") is None


# --- the portal applies them ----------------------------------------------------------------


async def test_cancel_disallowed_hides_the_action_and_refuses_its_routes(world: World) -> None:
    _, html, _ = await world.get(f"subscriptions/{world.sub}")
    assert 'id="cancel-subscription"' in html  # cached business: allowed so far
    await disallow(world, allow_cancel=False)
    # This gateway forgot its cached copy: the change shows at once.
    status, html, _ = await world.get(f"subscriptions/{world.sub}")
    assert status == 200 and 'id="cancel-subscription"' not in html
    assert 'id="pause-subscription"' in html  # only cancel was disallowed
    status, html, _ = await world.get(f"subscriptions/{world.sub}/cancel")
    assert status == 403 and 'id="not-offered"' in html and 'id="confirm-cancel"' not in html
    resp = await world.post(
        f"subscriptions/{world.sub}/cancel", {"when": "period_end", "confirm": "yes"}
    )
    assert resp.status == 403
    assert world.billing.count("CancelSubscription") == 0
    sub = world.billing.subscriptions[world.sub]
    assert sub.status == subs.SUBSCRIPTION_STATUS_ACTIVE and not sub.cancel_at_next_billing_date


async def test_undoing_a_scheduled_cancellation_is_always_allowed(world: World) -> None:
    world.billing.subscriptions[world.sub].cancel_at_next_billing_date = True
    await disallow(world, allow_cancel=False, allow_pause=False)
    status, html, _ = await world.get(f"subscriptions/{world.sub}")
    assert status == 200 and 'id="undo-cancel"' in html
    # The cancel page of a scheduled cancellation only offers its undo: still shown.
    status, html, _ = await world.get(f"subscriptions/{world.sub}/cancel")
    assert status == 200 and 'id="undo-cancel"' in html
    resp = await world.post(f"subscriptions/{world.sub}/undo-cancel", {})
    assert resp.status == 303 and resp.headers["Location"].endswith("?done=undone")
    assert not world.billing.subscriptions[world.sub].cancel_at_next_billing_date
    _, html, _ = await world.get(f"subscriptions/{world.sub}?done=undone")
    assert "Your subscription will continue and renew as usual." in html
    assert 'id="cancel-subscription"' not in html


async def test_pause_disallowed_hides_pause_but_a_paused_one_can_resume(world: World) -> None:
    await disallow(world, allow_pause=False)
    status, html, _ = await world.get(f"subscriptions/{world.sub}")
    assert status == 200 and 'id="pause-subscription"' not in html
    assert 'id="cancel-subscription"' in html
    status, html, _ = await world.get(f"subscriptions/{world.sub}/pause")
    assert status == 403 and 'id="confirm-pause"' not in html
    resp = await world.post(f"subscriptions/{world.sub}/pause", {})
    assert resp.status == 403
    assert world.billing.count("UpdateSubscription") == 0
    assert world.billing.subscriptions[world.sub].status == subs.SUBSCRIPTION_STATUS_ACTIVE

    paused = world.billing.add_subscription(
        world.business_id, world.customer_id, status=subs.SUBSCRIPTION_STATUS_PAUSED
    )
    _, html, _ = await world.get(f"subscriptions/{paused}")
    assert 'id="resume-subscription"' in html
    status, html, _ = await world.get(f"subscriptions/{paused}/resume")
    assert status == 200 and 'id="confirm-resume"' in html
    resp = await world.post(f"subscriptions/{paused}/resume", {})
    assert resp.status == 303 and resp.headers["Location"].endswith("?done=resumed")
    assert world.billing.subscriptions[paused].status == subs.SUBSCRIPTION_STATUS_ACTIVE


async def test_reasons_not_asked_are_neither_shown_nor_recorded(world: World) -> None:
    _, html, _ = await world.get(f"subscriptions/{world.sub}/cancel")
    assert 'id="feedback"' in html and 'id="comment"' in html
    await disallow(world, ask_cancel_reason=False)
    status, html, _ = await world.get(f"subscriptions/{world.sub}/cancel")
    assert status == 200 and 'id="confirm-cancel"' in html
    assert 'id="feedback"' not in html and 'id="comment"' not in html
    # A crafted form's reason (even an invalid one) is ignored, not refused or recorded.
    resp = await world.post(
        f"subscriptions/{world.sub}/cancel",
        {"when": "period_end", "confirm": "yes", "feedback": "bogus", "comment": "secret"},
    )
    assert resp.status == 303
    asked = next(r for n, r in world.billing.calls if n == "CancelSubscription")
    assert asked.cancellation_feedback == subs.CANCELLATION_FEEDBACK_UNSPECIFIED
    assert asked.cancellation_comment == ""


async def test_the_403_page_reads_italian(world: World) -> None:
    await disallow(world, allow_pause=False)
    status, html, _ = await world.get(f"subscriptions/{world.sub}/pause?lang=it")
    assert status == 403 and "Non disponibile" in html


async def test_unified_portal_offers_pause_and_resume_as_each_business_allows(
    world: World,
) -> None:
    shops = {name: world.auth.add_business(name) for name in ("Open Shop", "Strict Shop")}
    subs_of: dict[str, str] = {}
    for name, business_id in shops.items():
        customer = world.auth.add_customer(
            business_id, "grace@example.com", mode=common_pb2.MODE_LIVE
        )
        subs_of[name] = world.billing.add_subscription(
            business_id, customer, mode=common_pb2.MODE_LIVE, product_name=f"{name} plan"
        )
    strict = shops["Strict Shop"]
    key = world.auth.add_key(strict, mode=common_pb2.MODE_LIVE)
    resp = await world.client.patch(
        "/business",
        json={"portal_settings": {"allow_pause": False, "allow_cancel": False}},
        headers=bearer(key),
    )
    assert resp.status == 200
    cookies = await unified_sign_in(world.client, world.auth, "grace@example.com")

    async def page(path: str) -> tuple[int, str]:
        resp = await world.client.get(path, headers=cookie_header(cookies))
        return resp.status, await resp.text()

    open_detail = f"/all/b/{shops['Open Shop']}/subscriptions/{subs_of['Open Shop']}"
    status, html = await page(open_detail)
    assert status == 200, html
    assert f'href="{open_detail}/pause"' in html and 'id="cancel-subscription"' in html
    resp = await world.client.post(
        f"{open_detail}/pause",
        data={"csrf_token": _unified_csrf(world)},
        headers=cookie_header(cookies),
        allow_redirects=False,
    )
    assert resp.status == 303 and resp.headers["Location"] == f"{open_detail}?done=paused"
    status, html = await page(f"{open_detail}?done=paused")
    assert f'href="{open_detail}/resume"' in html

    strict_detail = f"/all/b/{strict}/subscriptions/{subs_of['Strict Shop']}"
    status, html = await page(strict_detail)
    assert status == 200
    assert 'id="pause-subscription"' not in html and 'id="cancel-subscription"' not in html
    status, _ = await page(f"{strict_detail}/pause")
    assert status == 403


def _unified_csrf(world: World) -> str:
    session = next(s for s in world.auth.portal.sessions.values() if s.email and not s.customer_id)
    return str(session.csrf_token)
