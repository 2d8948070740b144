"""Add-ons in the portal's Change seats / Change plan pages (issue 14, item 3), through the
real gateway app against in-memory backends: the subscription's add-ons and the action to
change them, the quantity fields, the preview's add-on lines, Confirm sending the add-ons
the customer keeps, scheduled changes with their add-ons, bad quantities, a changed add-on
price, what the business allows, another customer's subscription, the unified portal and
Italian.

The fake prorates as "half the period left": every line (the old plan and add-ons
credited, the new ones charged) is half its period, rounded half up."""

from __future__ import annotations

import re
from typing import Any

import pytest
from billing.common.v1 import common_pb2
from billing.payments.v1 import payments_pb2
from billing.subscriptions.v1 import subscriptions_pb2 as subs

from .test_billing_pages import World, world
from .test_plan_change_pages import SHOWN, plans, settings
from .test_portal_pages import cookie_header
from .test_unified_handoff import unified_sign_in

__all__ = ["world"]  # the fixture, shared with the billing pages' tests

HIDDEN_ADDON = re.compile(r'type="hidden" name="(addon_[^"]+)" value="([^"]*)"')


def addons(world: World, sub_id: str | None = None) -> None:
    """Basic, Pro and Lite (see ``plans``); Extra storage (€2.00, up to 3) on Basic and
    Pro, Priority support (€5.00, no limit) on Pro only, none on Lite."""
    plans(world, sub_id)
    billing = world.billing
    for product_id in ("pdt_1", "pdt_pro"):
        billing.add_addon(product_id, "adn_storage", "Extra storage", 200, max_quantity=3)
    billing.add_addon("pdt_pro", "adn_support", "Priority support", 500)


def give(world: World, addon_id: str, name: str, unit_price: int, quantity: int) -> None:
    """The subscription already pays for ``quantity`` of an add-on."""
    sub = world.billing.subscriptions[world.sub]
    sub.addons.append(
        subs.SubscriptionAddon(
            addon_id=addon_id, name=name, quantity=quantity, unit_price=unit_price
        )
    )
    sub.recurring_pre_tax_amount += unit_price * quantity


async def preview(world: World, **query: Any) -> tuple[int, str]:
    pairs = "&".join(f"{k}={v}" for k, v in query.items())
    status, html, _ = await world.get(f"subscriptions/{world.sub}/change-plan/preview?{pairs}")
    return status, html


async def confirm(world: World, html: str) -> Any:
    """Submit the preview's Confirm form as a browser would: every hidden field it has."""
    data = dict(re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', html))
    data.pop("csrf_token", None)
    assert SHOWN.search(html)
    return await world.post(f"subscriptions/{world.sub}/change-plan", data)


def sent(world: World, name: str) -> list[Any]:
    return [r for n, r in world.billing.calls if n == name]


def addons_of(request: Any) -> dict[str, int]:
    return {a.addon_id: a.quantity for a in request.addons}


async def test_the_detail_page_lists_the_add_ons_and_offers_to_change_them(
    world: World,
) -> None:
    plans(world)
    _, html, _ = await world.get(f"subscriptions/{world.sub}")
    # The plan offers no add-on and the subscription has none: nothing to show.
    assert 'id="sub-addons"' not in html and 'id="change-addons"' not in html

    addons(world)
    give(world, "adn_storage", "Extra storage", 200, 2)
    _, html, _ = await world.get(f"subscriptions/{world.sub}")
    assert re.search(
        r'id="sub-addon-adn_storage"><span>Extra storage \u00d7 2</span>'
        r' <span class="muted addon-price">€4.00 per month</span>',
        html,
    )
    seats = world.path(f"subscriptions/{world.sub}/seats")
    assert f'id="change-addons" href="{seats}#addons"' in html
    assert "€23.99 per month" in html  # the plan and its add-ons

    # Quantities are not the customer's to change here: the add-ons stay listed, no action.
    settings(world, allow_plan_change=True)
    _, html, _ = await world.get(f"subscriptions/{world.sub}")
    assert 'id="sub-addon-adn_storage"' in html and 'id="change-addons"' not in html

    # The plan stops offering add-ons: still listed (it is paid for), no action.
    settings(world, allow_plan_change=True, allow_quantity_change=True)
    world.billing.plans["pdt_1"].ClearField("addons")
    _, html, _ = await world.get(f"subscriptions/{world.sub}")
    assert 'id="sub-addon-adn_storage"' in html and 'id="change-addons"' not in html


async def test_the_seats_page_offers_each_add_on_prefilled(world: World) -> None:
    addons(world)
    give(world, "adn_storage", "Extra storage", 200, 1)
    status, html, _ = await world.get(f"subscriptions/{world.sub}/seats")
    assert status == 200, html
    assert '<h1 id="page-title">Change seats and add-ons</h1>' in html
    field = re.search(r'<input id="addon-adn_storage"[^>]*>', html)
    assert field is not None
    assert 'name="addon_adn_storage"' in field[0] and 'type="number"' in field[0]
    assert 'min="0"' in field[0] and 'max="3"' in field[0] and 'value="1"' in field[0]
    assert 'aria-describedby="addon-adn_storage-hint"' in field[0]
    assert '<label for="addon-adn_storage" class="addon-name">Extra storage</label>' in html
    assert "€2.00 each per month · up to 3" in html
    # Only the current plan's add-ons: Priority support comes with Pro.
    assert "addon_adn_support" not in html

    # The plan page offers every plan's add-ons, naming the plans of the ones not on all.
    _, html, _ = await world.get(f"subscriptions/{world.sub}/change-plan")
    assert 'name="addon_adn_support"' in html and "with Pro only" in html
    support = re.search(r'<input id="addon-adn_support"[^>]*>', html)
    assert support is not None and 'value="0"' in support[0] and "max=" not in support[0]


async def test_adding_an_add_on_previews_its_line_and_charges_what_was_shown(
    world: World,
) -> None:
    addons(world)
    status, html = await preview(
        world, product_id="pdt_1", quantity=1, addon_adn_storage=2, **{"from": "seats"}
    )
    assert status == 200, html
    asked = sent(world, "PreviewChangePlan")[-1]
    assert addons_of(asked) == {"adn_storage": 2}
    # Adding costs more per period: at once, prorated (half of 2 x €2.00).
    assert asked.effective_at == subs.PLAN_CHANGE_EFFECTIVE_AT_IMMEDIATELY
    assert 'id="charged-now">€2.00<' in html
    assert 'id="then-each-period">€23.99 per month<' in html
    assert 'id="new-addons">With add-ons: Extra storage \u00d7 2<' in html
    lines = re.findall(
        r'<tr class="line-(\w+)( line-credit)?" data-kind="\w+">\s*<td[^>]*><div>([^<]+)<br>'
        r'<span class="muted small">([^<]+)</span></div></td>\s*<td[^>]*><div>([^<]+)</div>',
        html,
    )
    assert [(kind, bool(credit), item, amount) for kind, credit, item, _, amount in lines] == [
        ("subscription", True, "Basic \u00d7 1", "€10.00 credit"),
        ("subscription", False, "Basic \u00d7 1", "€10.00"),
        ("addon", False, "Extra storage \u00d7 2", "€2.00"),
    ]
    assert HIDDEN_ADDON.findall(html) == [("addon_adn_storage", "2")]
    assert world.billing.count("ChangePlan") == 0
    # "Choose again" brings the choice back into the fields.
    back = re.search(r'href="([^"]+)" id="choose-again"', html)
    assert back is not None
    resp = await world.client.get(
        back[1].replace("&amp;", "&"), headers=cookie_header(world.cookies)
    )
    again = await resp.text()
    assert resp.status == 200 and re.search(r'<input id="addon-adn_storage"[^>]*value="2"', again)

    resp = await confirm(world, html)
    assert resp.status == 303, await resp.text()
    changed = sent(world, "ChangePlan")[-1]
    assert addons_of(changed) == {"adn_storage": 2} and changed.quantity == 1
    assert "addon_adn_storage=2" in changed.return_url
    paid = [p.total_amount for p in world.billing.payments.values()]
    assert paid == [200]  # exactly the preview's amount
    page = await (
        await world.client.get(resp.headers["Location"], headers=cookie_header(world.cookies))
    ).text()
    assert 'data-state="changed"' in page
    assert 'id="addons-now">Add-ons: Extra storage \u00d7 2<' in page
    assert "Next renewal: Jan 6, 2027, €23.99 per month." in page

    # Back + resubmit, a second tab: the same result page, no second charge.
    again = await confirm(world, html)
    assert again.status == 303 and "/change-plan/done?" in again.headers["Location"]
    assert len(world.billing.payments) == 1
    _, detail, _ = await world.get(f"subscriptions/{world.sub}")
    assert "Extra storage \u00d7 2" in detail and "€4.00 per month" in detail


async def test_a_seat_change_keeps_the_add_ons(world: World) -> None:
    addons(world)
    give(world, "adn_storage", "Extra storage", 200, 1)
    _, html, _ = await world.get(f"subscriptions/{world.sub}/seats")
    # The browser sends the form as shown: seats changed, the add-on left at 1.
    status, html = await preview(
        world, product_id="pdt_1", quantity=3, addon_adn_storage=1, **{"from": "seats"}
    )
    assert status == 200, html
    # -10.00 - 1.00 (credits) + 29.99 + 1.00 (half of 3 x 19.99, half of 2.00).
    assert 'id="charged-now">€19.99<' in html
    resp = await confirm(world, html)
    assert resp.status == 303
    changed = sent(world, "ChangePlan")[-1]
    # Dodo's rule: add-ons left out are removed, so the kept one is always sent.
    assert addons_of(changed) == {"adn_storage": 1} and changed.quantity == 3
    sub = world.billing.subscriptions[world.sub]
    assert sub.quantity == 3 and [(a.addon_id, a.quantity) for a in sub.addons] == [
        ("adn_storage", 1)
    ]
    # A form that shows no add-on field (an old link) keeps them too.
    await preview(world, product_id="pdt_1", quantity=4, **{"from": "seats"})
    assert addons_of(sent(world, "PreviewChangePlan")[-1]) == {"adn_storage": 1}


async def test_switching_plan_with_a_new_add_on(world: World) -> None:
    addons(world)
    status, html = await preview(
        world, product_id="pdt_pro", quantity=1, addon_adn_storage=0, addon_adn_support=1
    )
    assert status == 200, html
    # -10.00 + 25.00 + 2.50.
    assert 'id="charged-now">€17.50<' in html and "€54.99 per month" in html
    assert 'id="new-addons">With add-ons: Priority support \u00d7 1<' in html
    resp = await confirm(world, html)
    assert resp.status == 303
    assert addons_of(sent(world, "ChangePlan")[-1]) == {"adn_support": 1}
    assert [p.total_amount for p in world.billing.payments.values()] == [1750]


async def test_removing_an_add_on_waits_for_the_renewal_and_shows_it(world: World) -> None:
    addons(world)
    give(world, "adn_storage", "Extra storage", 200, 2)
    status, html = await preview(
        world, product_id="pdt_1", quantity=1, addon_adn_storage=0, **{"from": "seats"}
    )
    assert status == 200, html
    asked = sent(world, "PreviewChangePlan")[-1]
    assert asked.effective_at == subs.PLAN_CHANGE_EFFECTIVE_AT_NEXT_BILLING_DATE
    assert addons_of(asked) == {}
    assert 'id="new-addons">Without add-ons<' in html and "(with Extra storage \u00d7 2)" in html
    assert HIDDEN_ADDON.findall(html) == [("addon_adn_storage", "0")]
    resp = await confirm(world, html)
    assert resp.status == 303 and not world.billing.payments
    assert "addon_adn_storage=0" in resp.headers["Location"]
    page = await (
        await world.client.get(resp.headers["Location"], headers=cookie_header(world.cookies))
    ).text()
    assert 'data-state="scheduled"' in page
    assert 'id="scheduled-addons">No add-ons from then.<' in page
    _, detail, _ = await world.get(f"subscriptions/{world.sub}")
    assert "Changes to Basic \u00d7 1 seat on Jan 6, 2027, then €19.99 per month." in detail
    assert 'id="scheduled-addons">No add-ons from then.<' in detail
    assert 'id="sub-addon-adn_storage"' in detail  # still paid for until then


async def test_a_scheduled_change_names_its_new_add_ons(world: World) -> None:
    addons(world)
    world.billing.subscriptions[world.sub].quantity = 2
    world.billing.subscriptions[world.sub].recurring_pre_tax_amount = 3998
    # Two seats → one seat and two Extra storage: cheaper, so at the renewal.
    _, html = await preview(
        world, product_id="pdt_1", quantity=1, addon_adn_storage=2, **{"from": "seats"}
    )
    resp = await confirm(world, html)
    assert resp.status == 303
    change = world.billing.subscriptions[world.sub].scheduled_change
    assert [(a.addon_id, a.quantity) for a in change.addons] == [("adn_storage", 2)]
    page = await (
        await world.client.get(resp.headers["Location"], headers=cookie_header(world.cookies))
    ).text()
    assert 'id="scheduled-addons">Add-ons from then: Extra storage \u00d7 2<' in page
    _, detail, _ = await world.get(f"subscriptions/{world.sub}")
    assert 'id="scheduled-addons">Add-ons from then: Extra storage \u00d7 2<' in detail
    assert "then €23.99 per month" in detail


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("addon_adn_storage=4", "addon-adn_storage", "Enter a whole number from 0 to 3"),
        ("addon_adn_storage=-1", "addon-adn_storage", "Enter a whole number from 0 to 3"),
        ("addon_adn_storage=two", "addon-adn_storage", "Enter a whole number from 0 to 3"),
        ("addon_adn_storage=1.5", "addon-adn_storage", "Enter a whole number from 0 to 3"),
        ("addon_adn_bogus=1", "addons", "Choose only the add-ons offered with your plan."),
        # Priority support comes with Pro, not with the seats page's Basic.
        ("addon_adn_support=1", "addons", "Choose only the add-ons offered with your plan."),
        ("addon_adn_storage=1", "quantity", "That is your current plan."),
    ],
)
async def test_bad_add_on_quantities_are_explained_next_to_the_field_and_change_nothing(
    world: World, query: str, field: str, message: str
) -> None:
    addons(world)
    give(world, "adn_storage", "Extra storage", 200, 1)
    status, html, _ = await world.get(
        f"subscriptions/{world.sub}/change-plan/preview?from=seats&product_id=pdt_1&quantity=1&{query}"
    )
    assert status == 422 and message in html
    assert re.search(rf'id="{field}-error" role="alert">[^<]*{re.escape(message)}', html)
    if field.startswith("addon-"):
        assert re.search(rf'<input id="{field}"[^>]*aria-invalid="true"', html)
    data = dict(pair.split("=") for pair in query.split("&"))
    resp = await world.post(
        f"subscriptions/{world.sub}/change-plan",
        {"from": "seats", "product_id": "pdt_1", "quantity": "1", "shown": "x", **data},
    )
    # Posting what the subscription already has is a repeat of a change that went through.
    assert resp.status == (303 if field == "quantity" else 422)
    assert world.billing.count("PreviewChangePlan") == 0 and world.billing.count("ChangePlan") == 0


async def test_an_add_on_the_new_plan_does_not_offer_must_be_set_to_zero(world: World) -> None:
    addons(world)
    give(world, "adn_storage", "Extra storage", 200, 1)
    # Lite offers no add-on; the form left Extra storage at 1.
    status, html = await preview(world, product_id="pdt_lite", quantity=1, addon_adn_storage=1)
    assert status == 422
    assert "Lite does not offer this add-on: set it to 0 to switch." in html
    assert world.billing.count("PreviewChangePlan") == 0
    status, html = await preview(world, product_id="pdt_lite", quantity=1, addon_adn_storage=0)
    assert status == 200, html
    assert addons_of(sent(world, "PreviewChangePlan")[-1]) == {}


async def test_a_changed_add_on_price_is_not_charged_unseen(world: World) -> None:
    addons(world)
    _, html = await preview(
        world, product_id="pdt_1", quantity=1, addon_adn_storage=2, **{"from": "seats"}
    )
    world.billing.plans["pdt_1"].addons[0].unit_price = 300
    resp = await confirm(world, html)
    assert resp.status == 409
    page = await resp.text()
    assert "The price has changed." in page and 'id="charged-now">€3.00<' in page
    assert world.billing.count("ChangePlan") == 0


async def test_a_changed_add_on_price_is_caught_on_a_scheduled_change_too(world: World) -> None:
    addons(world)
    sub = world.billing.subscriptions[world.sub]
    sub.quantity, sub.recurring_pre_tax_amount = 2, 3998
    _, html = await preview(
        world, product_id="pdt_1", quantity=1, addon_adn_storage=1, **{"from": "seats"}
    )
    assert 'id="charged-now">€0.00<' in html  # scheduled: nothing now
    world.billing.plans["pdt_1"].addons[0].unit_price = 250
    resp = await confirm(world, html)
    assert resp.status == 409 and world.billing.count("ChangePlan") == 0


async def test_add_on_changes_follow_what_the_business_allows(world: World) -> None:
    addons(world)
    settings(world, allow_plan_change=True)  # quantities (seats and add-ons) off
    _, html, _ = await world.get(f"subscriptions/{world.sub}/change-plan")
    # The plan page keeps the add-ons as they are, without fields to change them.
    assert 'type="hidden" name="addon_adn_storage" value="0"' in html
    assert 'id="addon-adn_storage"' not in html
    status, _ = await preview(world, product_id="pdt_pro", quantity=1, addon_adn_support=1)
    assert status == 403
    status, _, _ = await world.get(f"subscriptions/{world.sub}/seats")
    assert status == 403
    resp = await world.post(
        f"subscriptions/{world.sub}/change-plan",
        {"product_id": "pdt_1", "quantity": "1", "addon_adn_storage": "2", "shown": "x"},
    )
    assert resp.status == 403
    assert world.billing.count("PreviewChangePlan") == 0 and world.billing.count("ChangePlan") == 0
    status, _ = await preview(world, product_id="pdt_pro", quantity=1)
    assert status == 200  # a plan switch keeping the add-ons as they are is fine

    # Keeping an add-on the new plan lacks, with no field to change it: said by the plans.
    give(world, "adn_storage", "Extra storage", 200, 1)
    status, html = await preview(world, product_id="pdt_lite", quantity=1)
    assert status == 422
    assert re.search(r'id="product_id-error" role="alert">Lite does not offer this add-on', html)
    assert world.billing.count("ChangePlan") == 0


async def test_another_customers_subscription_is_a_404(world: World) -> None:
    addons(world)
    stranger = world.auth.add_customer(world.business_id, "eve@example.com")
    theirs = world.billing.add_subscription(world.business_id, stranger)
    for rest in (
        "seats",
        "change-plan/preview?from=seats&product_id=pdt_1&quantity=1&addon_adn_storage=2",
        "change-plan/done?product_id=pdt_1&quantity=1&addon_adn_storage=2",
    ):
        status, _, _ = await world.get(f"subscriptions/{theirs}/{rest}")
        assert status == 404, rest
    resp = await world.post(
        f"subscriptions/{theirs}/change-plan",
        {"product_id": "pdt_1", "quantity": "1", "addon_adn_storage": "2", "shown": "x"},
    )
    assert resp.status == 404
    assert world.billing.count("PreviewChangePlan") == 0 and world.billing.count("ChangePlan") == 0


async def test_the_unified_portal_shows_and_changes_add_ons(world: World) -> None:
    business_id = world.auth.add_business("Shop U")
    customer = world.auth.add_customer(business_id, "grace@example.com", mode=common_pb2.MODE_LIVE)
    card = world.billing.add_method(business_id, customer, "4242", mode=common_pb2.MODE_LIVE)
    sub_id = world.billing.add_subscription(
        business_id, customer, mode=common_pb2.MODE_LIVE, payment_method_id=card
    )
    addons(world, sub_id)
    world.sub = sub_id
    give(world, "adn_storage", "Extra storage", 200, 1)
    cookies = await unified_sign_in(world.client, world.auth, "grace@example.com")
    base = f"/all/b/{business_id}/subscriptions/{sub_id}"
    resp = await world.client.get(base, headers=cookie_header(cookies))
    html = await resp.text()
    assert resp.status == 200, html
    assert (
        "Extra storage \u00d7 1" in html
        and f'id="change-addons" href="{base}/seats#addons"' in html
    )
    resp = await world.client.get(
        f"{base}/change-plan/preview?from=seats&product_id=pdt_1&quantity=1&addon_adn_storage=3",
        headers=cookie_header(cookies),
    )
    page = await resp.text()
    assert resp.status == 200, page
    assert 'id="charged-now">€2.00<' in page and f'action="{base}/change-plan"' in page
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert csrf is not None
    data = dict(re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', page))
    resp = await world.client.post(
        f"{base}/change-plan", data=data, headers=cookie_header(cookies), allow_redirects=False
    )
    assert resp.status == 303, await resp.text()
    assert addons_of(sent(world, "ChangePlan")[-1]) == {"adn_storage": 3}
    paid = [
        p.total_amount
        for p in world.billing.payments.values()
        if p.status == payments_pb2.PAYMENT_STATUS_SUCCEEDED
    ]
    assert paid == [200]


async def test_the_add_on_pages_read_italian(world: World) -> None:
    addons(world)
    give(world, "adn_storage", "Extra storage", 200, 1)
    _, html, _ = await world.get(f"subscriptions/{world.sub}?lang=it")
    assert "Componenti aggiuntivi" in html and "Cambia componenti aggiuntivi" in html
    assert "2,00\xa0€ al mese" in html
    _, html, _ = await world.get(f"subscriptions/{world.sub}/seats?lang=it")
    assert "Cambia postazioni e componenti aggiuntivi" in html
    assert "2,00\xa0€ cad. al mese · fino a 3" in html
    status, html = await preview(
        world,
        product_id="pdt_1",
        quantity=1,
        addon_adn_storage=9,
        lang="it",
        **{"from": "seats"},
    )
    assert status == 422 and "Inserisci un numero intero da 0 a 3 (0 per nessuno)." in html
    status, html = await preview(
        world, product_id="pdt_1", quantity=1, addon_adn_storage=3, lang="it", **{"from": "seats"}
    )
    assert status == 200 and "Con componenti aggiuntivi: Extra storage \u00d7 3" in html
    assert "10,00\xa0€ di credito" in html
