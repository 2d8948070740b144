"""Billing pages through the real gateway app, against in-memory auth, subscriptions and payments.

What a customer would notice: what the pages show, that another customer's
ids are a 404, that forms need their CSRF token and answer with a redirect,
that repeating a confirmation never charges twice, and that the unified pages
ask each service one question for every business of the email.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from billing.common.v1 import common_pb2
from billing.payments.v1 import payments_pb2
from billing.subscriptions.v1 import subscriptions_pb2 as subs
from gateway.app import create_app

from .billing_fakes import FakeBilling, start_fake_billing
from .conftest import settings_for
from .test_portal_pages import cookie_header, sign_in
from .test_unified_handoff import unified_sign_in

Client = TestClient[Any, Any]
CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')
DUES_INPUT = re.compile(r'name="dues" value="([^"]+)"')


class World:
    """A signed-in customer of one business with a card and a subscription."""

    def __init__(self, client: Client, auth: Any, billing: FakeBilling) -> None:
        self.client, self.auth, self.billing = client, auth, billing
        self.business_id = auth.add_business("Acme Italia")
        self.customer_id = auth.add_customer(self.business_id, "ada@example.com")
        self.card = billing.add_method(self.business_id, self.customer_id, "4242")
        self.sub = billing.add_subscription(
            self.business_id, self.customer_id, payment_method_id=self.card
        )
        self.cookies: dict[str, str] = {}

    def path(self, rest: str) -> str:
        return f"/test/b/{self.business_id}/{rest}"

    async def sign_in(self) -> None:
        _, self.cookies = await sign_in(self.client, self.auth, self.business_id, self.customer_id)

    async def get(self, rest: str) -> tuple[int, str, Any]:
        resp = await self.client.get(
            self.path(rest), headers=cookie_header(self.cookies), allow_redirects=False
        )
        return resp.status, await resp.text(), resp

    async def post(self, rest: str, data: dict[str, str], csrf: bool = True) -> Any:
        if csrf:
            data = {"csrf_token": self.csrf(), **data}
        return await self.client.post(
            self.path(rest), data=data, headers=cookie_header(self.cookies), allow_redirects=False
        )

    def csrf(self) -> str:
        session = next(iter(s for s in self.auth.portal.sessions.values() if s.customer_id))
        return str(session.csrf_token)


@pytest.fixture
async def world(fake_auth: tuple[Any, int]) -> AsyncIterator[World]:
    auth, auth_port = fake_auth
    billing, server, port = await start_fake_billing()
    settings = settings_for(
        auth_port,
        subscriptions_target=f"127.0.0.1:{port}",
        payments_target=f"127.0.0.1:{port}",
        payments_page_url="https://pay.example",
    )
    try:
        async with TestClient(TestServer(create_app(settings))) as client:
            w = World(client, auth, billing)
            await w.sign_in()
            yield w
    finally:
        await server.stop(None)


async def test_subscriptions_list_shows_price_renewal_card_and_edit(world: World) -> None:
    status, html, resp = await world.get("subscriptions")
    assert status == 200, html
    assert "Pro plan" in html and "€19.99 per month" in html
    assert "Renews on" in html and "Jan 6, 2027" in html
    assert "Visa •••• 4242" in html
    assert (
        f'id="edit-{world.sub}" href="{world.path(f"subscriptions/{world.sub}/payment-method")}"'
        in html
    )
    assert "form-action 'self'" in resp.headers["Content-Security-Policy"]
    assert "https://pay.example" in resp.headers["Content-Security-Policy"]
    # One question to each service for the whole page.
    assert world.billing.count("ListSubscriptions") == 1
    assert world.billing.count("ListPaymentMethods") == 1


async def test_detail_shows_the_card_edit_cancel_and_no_payments_yet(world: World) -> None:
    status, html, _ = await world.get(f"subscriptions/{world.sub}")
    assert status == 200, html
    assert 'id="sub-card">Visa •••• 4242' in html and 'id="edit-payment-method"' in html
    assert 'id="cancel-subscription"' in html and 'id="no-payments"' in html
    asked = next(r for n, r in world.billing.calls if n == "ListPayments")
    assert list(asked.customer_ids) == [world.customer_id] and asked.subscription_id == world.sub


async def test_the_list_reads_italian_with_modifica(world: World) -> None:
    status, html, _ = await world.get("subscriptions?lang=it")
    assert status == 200
    assert "19,99\xa0€ al mese" in html and ">Modifica<" in html and "Si rinnova il" in html


async def test_another_customers_subscription_is_the_same_404(world: World) -> None:
    stranger = world.auth.add_customer(world.business_id, "eve@example.com")
    theirs = world.billing.add_subscription(world.business_id, stranger)
    for rest in (
        f"subscriptions/{theirs}",
        f"subscriptions/{theirs}/cancel",
        f"subscriptions/{theirs}/payment-method",
        "subscriptions/sub_nope",
        "subscriptions/%3Cscript%3E",
    ):
        status, html, _ = await world.get(rest)
        assert status == 404, rest
        assert "Page not found" in html
    resp = await world.post(f"subscriptions/{theirs}/cancel", {"when": "now", "confirm": "yes"})
    assert resp.status == 404
    assert world.billing.subscriptions[theirs].status == subs.SUBSCRIPTION_STATUS_ACTIVE


async def test_cancel_at_period_end_then_undo(world: World) -> None:
    status, html, _ = await world.get(f"subscriptions/{world.sub}/cancel")
    assert status == 200 and 'value="too_expensive"' in html
    resp = await world.post(
        f"subscriptions/{world.sub}/cancel",
        {
            "when": "period_end",
            "feedback": "too_expensive",
            "comment": "Too much",
            "confirm": "yes",
        },
    )
    assert resp.status == 303
    assert resp.headers["Location"] == world.path(f"subscriptions/{world.sub}?done=scheduled")
    cancel = next(r for n, r in world.billing.calls if n == "CancelSubscription")
    assert cancel.at_period_end and cancel.cancellation_comment == "Too much"
    assert cancel.cancellation_feedback == subs.CANCELLATION_FEEDBACK_TOO_EXPENSIVE
    assert cancel.customer_id == world.customer_id
    status, html, _ = await world.get(f"subscriptions/{world.sub}?done=scheduled")
    assert "Ends on" in html and 'id="undo-cancel"' in html
    # Double click: the second POST lands on the same page without a second cancel.
    again = await world.post(
        f"subscriptions/{world.sub}/cancel", {"when": "period_end", "confirm": "yes"}
    )
    assert again.status == 303 and world.billing.count("CancelSubscription") == 1
    resp = await world.post(f"subscriptions/{world.sub}/undo-cancel", {})
    assert resp.status == 303 and resp.headers["Location"].endswith("?done=undone")
    assert not world.billing.subscriptions[world.sub].cancel_at_next_billing_date


async def test_cancel_now_needs_csrf_and_the_confirmation(world: World) -> None:
    resp = await world.post(
        f"subscriptions/{world.sub}/cancel", {"when": "now", "confirm": "yes"}, csrf=False
    )
    assert resp.status == 400
    resp = await world.post(f"subscriptions/{world.sub}/cancel", {"when": "now"})
    assert resp.status == 422 and "Tick the box" in await resp.text()
    assert world.billing.count("CancelSubscription") == 0
    resp = await world.post(f"subscriptions/{world.sub}/cancel", {"when": "now", "confirm": "yes"})
    assert resp.status == 303
    assert world.billing.subscriptions[world.sub].status == subs.SUBSCRIPTION_STATUS_CANCELLED
    _, html, _ = await world.get("subscriptions")
    assert 'id="past-subscriptions"' in html and "Ended on" in html


async def test_switching_the_card_of_an_active_subscription_charges_nothing(world: World) -> None:
    other = world.billing.add_method(world.business_id, world.customer_id, "1881")
    status, html, _ = await world.get(f"subscriptions/{world.sub}/payment-method")
    assert status == 200 and 'id="confirm-changes"' in html and "Confirm changes" in html
    resp = await world.post(
        f"subscriptions/{world.sub}/payment-method", {"payment_method_id": other}
    )
    assert resp.status == 303 and resp.headers["Location"].endswith("?done=switched")
    assert world.billing.subscriptions[world.sub].payment_method_id == other
    assert not world.billing.payments


async def test_another_customers_card_cannot_be_chosen(world: World) -> None:
    stranger = world.auth.add_customer(world.business_id, "eve@example.com")
    theirs = world.billing.add_method(world.business_id, stranger, "1111")
    resp = await world.post(
        f"subscriptions/{world.sub}/payment-method", {"payment_method_id": theirs}
    )
    assert resp.status == 422 and "not available" in await resp.text()
    assert world.billing.count("UpdatePaymentMethod") == 0


async def on_hold(world: World) -> str:
    return world.billing.add_subscription(
        world.business_id,
        world.customer_id,
        status=subs.SUBSCRIPTION_STATUS_ON_HOLD,
        payment_method_id=world.card,
        product_name="Team plan",
    )


async def test_reactivation_shows_dues_declines_in_plain_words_then_succeeds_once(
    world: World,
) -> None:
    sub = await on_hold(world)
    declining = world.billing.add_method(world.business_id, world.customer_id, "0002")
    status, html, _ = await world.get(f"subscriptions/{sub}/payment-method")
    assert status == 200 and "Amount due now" in html and "€19.99" in html
    dues = DUES_INPUT.search(html)
    assert dues
    resp = await world.post(
        f"subscriptions/{sub}/payment-method",
        {"payment_method_id": declining, "dues": dues.group(1)},
    )
    assert resp.status == 303 and "?declined=pay_" in resp.headers["Location"]
    status, html, _ = await world.get(resp.headers["Location"].split(f"/b/{world.business_id}/")[1])
    assert "Your card was declined. Try another card." in html and "still on hold" in html
    assert world.billing.subscriptions[sub].status == subs.SUBSCRIPTION_STATUS_ON_HOLD
    # Retry with a good card; a double click sends the same form twice.
    form = {"payment_method_id": world.card, "dues": dues.group(1)}
    first = await world.post(f"subscriptions/{sub}/payment-method", form)
    assert (
        first.status == 303 and "/payment-method/done?payment_id=pay_" in first.headers["Location"]
    )
    status, html, _ = await world.get(
        first.headers["Location"].split(f"/b/{world.business_id}/")[1]
    )
    assert "Your subscription is active again" in html and "Next renewal" in html
    second = await world.post(f"subscriptions/{sub}/payment-method", form)
    assert second.status == 303
    succeeded = [
        p
        for p in world.billing.payments.values()
        if p.status == payments_pb2.PAYMENT_STATUS_SUCCEEDED
    ]
    assert len(succeeded) == 1


async def test_a_stale_confirmation_with_other_dues_charges_nothing(world: World) -> None:
    sub = await on_hold(world)
    resp = await world.post(
        f"subscriptions/{sub}/payment-method",
        {"payment_method_id": world.card, "dues": "999-EUR"},
    )
    assert resp.status == 409 and "amount due has changed" in await resp.text()
    assert world.billing.count("UpdatePaymentMethod") == 0


async def test_a_card_that_needs_3ds_goes_to_the_challenge_page(world: World) -> None:
    sub = await on_hold(world)
    challenge_card = world.billing.add_method(world.business_id, world.customer_id, "3184")
    _, html, _ = await world.get(f"subscriptions/{sub}/payment-method")
    dues = DUES_INPUT.search(html)
    assert dues
    resp = await world.post(
        f"subscriptions/{sub}/payment-method",
        {"payment_method_id": challenge_card, "dues": dues.group(1)},
    )
    assert resp.status == 303 and resp.headers["Location"].startswith("https://pay.example/3ds/")
    update = next(r for n, r in world.billing.calls if n == "UpdatePaymentMethod")
    assert update.customer_present
    assert update.return_url.endswith(
        f"/test/b/{world.business_id}/subscriptions/{sub}/payment-method/done"
    )
    # Back from the bank before the payment is confirmed: the page says so.
    status, html, _ = await world.get(f"subscriptions/{sub}/payment-method/done")
    assert status == 200 and 'data-state="challenge"' in html


async def test_add_card_goes_to_the_hosted_page_and_comes_back_preselected(world: World) -> None:
    resp = await world.post(f"subscriptions/{world.sub}/payment-method", {"action": "add_card"})
    assert resp.status == 303 and resp.headers["Location"].startswith(
        "https://pay.example/session/"
    )
    session_id = resp.headers["Location"].rsplit("/", 1)[1]
    created = next(r for n, r in world.billing.calls if n == "CreatePaymentSession")
    assert created.purpose == payments_pb2.PAYMENT_SESSION_PURPOSE_SAVE_METHOD
    assert created.customer_id == world.customer_id
    new_card = world.billing.finish_session(session_id, "5555")
    status, _, back = await world.get(
        f"subscriptions/{world.sub}/payment-method/added?payment_session_id={session_id}&status=succeeded"
    )
    assert status == 303 and back.headers["Location"].endswith(f"?chosen={new_card}")
    _, html, _ = await world.get(f"subscriptions/{world.sub}/payment-method?chosen={new_card}")
    assert f'value="{new_card}" id="method-{new_card}" checked' in html


async def test_payment_methods_default_and_remove_with_a_replacement(world: World) -> None:
    spare = world.billing.add_method(world.business_id, world.customer_id, "1881")
    status, html, _ = await world.get("payment-methods")
    assert status == 200 and "Used by: Pro plan" in html
    resp = await world.post(f"payment-methods/{spare}/default", {})
    assert resp.status == 303 and world.billing.methods[spare].is_default
    # The card the subscription uses needs a replacement first.
    resp = await world.post(f"payment-methods/{world.card}/remove", {})
    assert resp.status == 422 and "Choose the card" in await resp.text()
    assert world.card in world.billing.methods
    resp = await world.post(f"payment-methods/{world.card}/remove", {"replacement": spare})
    assert resp.status == 303 and resp.headers["Location"].endswith("?done=removed")
    assert world.card not in world.billing.methods
    assert world.billing.subscriptions[world.sub].payment_method_id == spare
    # Back + resubmit: same page, nothing else deleted.
    again = await world.post(f"payment-methods/{world.card}/remove", {"replacement": spare})
    assert again.status == 303 and world.billing.count("DeletePaymentMethod") == 1


async def test_unified_pages_ask_each_service_once_for_every_business(world: World) -> None:
    businesses = [world.auth.add_business(f"Shop {i}") for i in range(3)]
    for i, business_id in enumerate(businesses):
        customer = world.auth.add_customer(
            business_id, "grace@example.com", mode=common_pb2.MODE_LIVE
        )
        card = world.billing.add_method(business_id, customer, f"10{i}0", mode=common_pb2.MODE_LIVE)
        world.billing.add_subscription(
            business_id,
            customer,
            mode=common_pb2.MODE_LIVE,
            payment_method_id=card,
            product_name=f"Plan {i}",
        )
    # Someone else's live subscription never shows.
    eve = world.auth.add_customer(businesses[0], "eve@example.com", mode=common_pb2.MODE_LIVE)
    world.billing.add_subscription(
        businesses[0], eve, mode=common_pb2.MODE_LIVE, product_name="Eve's"
    )
    cookies = await unified_sign_in(world.client, world.auth, "grace@example.com")
    world.billing.calls.clear()
    resp = await world.client.get("/all/subscriptions", headers=cookie_header(cookies))
    html = await resp.text()
    assert resp.status == 200, html
    for i in range(3):
        assert f"Plan {i}" in html and f"Shop {i}" in html
    assert "Eve's" not in html
    assert world.billing.count("ListSubscriptions") == 1
    assert world.billing.count("ListPaymentMethods") == 1
    asked = next(r for n, r in world.billing.calls if n == "ListSubscriptions")
    assert len(asked.customer_ids) == 3
    # Its actions stay on the unified portal, and work there.
    assert f'href="/all/b/{businesses[0]}/subscriptions/' in html
    first = next(
        s.subscription_id
        for s in world.billing.subscriptions.values()
        if s.business_id == businesses[0] and s.product_name == "Plan 0"
    )
    resp = await world.client.get(
        f"/all/b/{businesses[0]}/subscriptions/{first}/payment-method",
        headers=cookie_header(cookies),
    )
    page = await resp.text()
    assert resp.status == 200, page
    assert 'id="confirm-changes"' in page and 'id="nav-accounts"' in page and "Shop 0" in page
    asked = [r for n, r in world.billing.calls if n == "GetSubscription"][-1]
    assert asked.business_id == businesses[0] and asked.mode == common_pb2.MODE_LIVE
    resp = await world.client.get("/all/payments", headers=cookie_header(cookies))
    assert resp.status == 200 and world.billing.count("ListPayments") == 1
    # A business of another email is a 404 on the unified portal too.
    resp = await world.client.get(
        f"/all/b/{world.business_id}/subscriptions/{world.sub}", headers=cookie_header(cookies)
    )
    assert resp.status == 404


async def test_every_billing_form_needs_its_csrf_token(world: World) -> None:
    spare = world.billing.add_method(world.business_id, world.customer_id, "1881")
    forms = {
        f"subscriptions/{world.sub}/cancel": {"when": "now", "confirm": "yes"},
        f"subscriptions/{world.sub}/undo-cancel": {},
        f"subscriptions/{world.sub}/payment-method": {"payment_method_id": spare},
        "payment-methods/add": {},
        f"payment-methods/{spare}/default": {},
        f"payment-methods/{spare}/remove": {},
    }
    for rest, data in forms.items():
        resp = await world.post(rest, {**data, "csrf_token": "forged"}, csrf=False)
        assert resp.status == 400, rest
    writes = {
        "CancelSubscription",
        "UpdateSubscription",
        "UpdatePaymentMethod",
        "CreatePaymentSession",
        "SetDefaultPaymentMethod",
        "DeletePaymentMethod",
    }
    assert not [name for name, _ in world.billing.calls if name in writes]
