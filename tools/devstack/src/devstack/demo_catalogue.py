"""The demo business's catalogue and subscribers, made through the public surfaces only.

Products and the add-on go through the merchant API (the demo test key), cards
through payments' hosted page (as a customer's browser would post it), and the
subscriptions through the merchant API again — so `make run` leaves something to
click in the portal: a plan group to change plan within, seats, an add-on, and a
subscription whose card will fail its renewal (advance the test clock to see
``on_hold`` and the reactivation flow).

Idempotent: products and the add-on are found again by name, and a customer who
already has a subscription is left alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import aiohttp
import grpc
from billing.payments.v1 import payments_pb2, payments_pb2_grpc
from billing_kit.scoping import Mode, mode_to_proto
from yarl import URL

RPC_TIMEOUT_SECONDS = 10.0
PLAN_GROUP = "plans"
ADDON_NAME = "Extra storage (100 GB)"
# name, monthly price in euro cents, offers the add-on
PLANS: tuple[tuple[str, int, bool], ...] = (
    ("Starter", 900, False),
    ("Pro", 2900, True),
    ("Team", 7900, True),
)
# email -> (plan, seats, test card): Grace's card saves but declines every later charge.
SUBSCRIBERS: dict[str, tuple[str, int, str]] = {
    "ada@example.com": ("Pro", 1, "4242424242424242"),
    "grace@example.com": ("Starter", 1, "4000000000000341"),
}
DEMO_BILLING = {"country": "IT", "city": "Milano", "state": "MI", "street": "Via Roma 1"}
_CSRF = re.compile(r'name="csrf_token"\s+value="([^"]+)"')


class SeedError(RuntimeError):
    """The stack refused a demo request (the message says which and why)."""


async def save_test_card(
    http: aiohttp.ClientSession,
    payments_target: str,
    business_id: str,
    customer_id: str,
    number: str,
    *,
    mode: Mode = "test",
    holder: str = "Ada Lovelace",
) -> str:
    """Save a card for a customer through payments' hosted page, as a browser posts it.

    Returns the new ``pm_…`` id; a refused card raises :class:`SeedError`.
    """
    async with grpc.aio.insecure_channel(payments_target) as channel:
        session = await payments_pb2_grpc.PaymentsServiceStub(channel).CreatePaymentSession(
            payments_pb2.CreatePaymentSessionRequest(
                business_id=business_id,
                mode=mode_to_proto(mode),
                customer_id=customer_id,
                purpose=payments_pb2.PAYMENT_SESSION_PURPOSE_SAVE_METHOD,
                return_url="https://shop.example/back",
            ),
            timeout=RPC_TIMEOUT_SECONDS,
        )
    async with http.get(session.url) as page:
        token = _CSRF.search(await page.text())
    if token is None:
        raise SeedError("the hosted payment page showed no CSRF token")
    form = {
        "csrf_token": token.group(1),
        "cc-name": holder,
        "cc-number": number,
        "cc-exp": "12/34",
        "cc-csc": "987",
    }
    async with http.post(session.url, data=form, allow_redirects=False) as reply:
        if reply.status != 303:
            raise SeedError(f"the hosted payment page refused the card ({reply.status})")
        return dict(URL(reply.headers["Location"]).query)["payment_method_id"]


@dataclass
class _Api:
    http: aiohttp.ClientSession
    base_url: str
    api_key: str

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        async with self.http.request(
            method,
            f"{self.base_url}{path}",
            json=body,
            headers={"Authorization": f"Bearer {self.api_key}"},
        ) as reply:
            if reply.status >= 300:
                raise SeedError(f"{method} {path}: {reply.status} {await reply.text()}")
            return await reply.json()

    async def by_name(self, path: str) -> dict[str, dict[str, Any]]:
        page = await self.call("GET", f"{path}?page_size=100")
        return {item["name"]: item for item in page["items"]}


async def _addon(api: _Api) -> str:
    existing = (await api.by_name("/addons")).get(ADDON_NAME)
    if existing is not None:
        return str(existing["id"])
    created = await api.call(
        "POST",
        "/addons",
        {
            "name": ADDON_NAME,
            "price": 500,
            "currency": "EUR",
            "tax_category": "saas",
            "max_quantity": 5,
        },
    )
    return str(created["id"])


async def _plans(api: _Api, addon_id: str) -> dict[str, str]:
    existing = await api.by_name("/products")
    ids: dict[str, str] = {}
    for name, price, offers_addon in PLANS:
        found = existing.get(name)
        if found is None:
            found = await api.call(
                "POST",
                "/products",
                {
                    "name": name,
                    "tax_category": "saas",
                    "price": {
                        "type": "recurring_price",
                        "currency": "EUR",
                        "price": price,
                        "discount": 0,
                        "purchasing_power_parity": False,
                        "payment_frequency_count": 1,
                        "payment_frequency_interval": "Month",
                        "subscription_period_count": 10,
                        "subscription_period_interval": "Year",
                    },
                    "plan_group": PLAN_GROUP,
                    "max_quantity": 10,
                    "addons": [addon_id] if offers_addon else [],
                },
            )
        ids[name] = str(found["product_id"])
    return ids


async def seed_catalogue(
    http: aiohttp.ClientSession,
    *,
    gateway_url: str,
    payments_target: str,
    business_id: str,
    api_key: str,
    customers: dict[str, str],
) -> None:
    """Create (or find) the demo plans and add-on, and subscribe the demo customers.

    ``customers`` maps the demo customers' emails to their ids.
    """
    api = _Api(http, gateway_url, api_key)
    plans = await _plans(api, await _addon(api))
    for email, (plan, seats, card) in SUBSCRIBERS.items():
        customer_id = customers.get(email)
        if customer_id is None:
            continue
        held = await api.call("GET", f"/subscriptions?customer_id={customer_id}&page_size=1")
        if held["items"]:
            continue
        method = await save_test_card(http, payments_target, business_id, customer_id, card)
        await api.call(
            "POST",
            "/subscriptions",
            {
                "billing": DEMO_BILLING,
                "customer": {"customer_id": customer_id},
                "product_id": plans[plan],
                "quantity": seats,
                "payment_method_id": method,
            },
        )
