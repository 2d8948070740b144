"""Checkout sessions and hosted-page payments over a real database (payments and pages faked)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from billing_kit.errors import DomainError
from billing_kit.events import CloudEvent
from billing_kit.mongo import ensure_indexes, run_in_transaction
from billing_kit.scoping import make_page
from subscriptions.checkouts.repository import (
    CHECKOUT_INDEXES,
    CHECKOUT_SESSIONS,
    CheckoutsRepository,
)
from subscriptions.checkouts.service import CheckoutsService, NewCheckout
from subscriptions.products.models import OneTimePrice, Product
from subscriptions.subscriptions.billing import BillingService
from subscriptions.subscriptions.models import BillingAddress
from subscriptions.subscriptions.models import SubscriptionStatus as S
from subscriptions.subscriptions.pages import HostedPages
from subscriptions.subscriptions.payments_client import PayPageRequest, SavePageRequest
from subscriptions.subscriptions.periods import first_charge_key
from subscriptions.subscriptions.repository import SubscriptionFilter
from subscriptions.subscriptions.service import NewSubscription, SubscriptionsService

from .conftest import T0, World

BACK = "https://shop.example/back"


class FakePages:
    """Payments' hosted PAY page: records what it was asked to charge."""

    def __init__(self) -> None:
        self.opened: list[PayPageRequest] = []
        self.saving: list[SavePageRequest] = []

    async def pay_page(self, request: PayPageRequest) -> str:
        self.opened.append(request)
        return f"https://pay.example/pay/ps_{len(self.opened)}"

    async def save_page(self, request: SavePageRequest) -> str:
        self.saving.append(request)
        return "https://pay.example/pay/ps_save"


def _one_time(world: World, product_id: str, *, price: int, archived: bool = False) -> None:
    world.products.products[product_id] = Product(
        product_id=product_id,
        business_id="bus_1",
        mode="test",
        name="Book",
        price=OneTimePrice(price=price, currency="EUR"),
        tax_category="saas",
        is_recurring=False,
        archived=archived,
        created_at=T0,
        updated_at=T0,
    )


def _paid(event_id: str, request: PayPageRequest, *, ok: bool = True) -> CloudEvent:
    data: dict[str, Any] = {
        "payment_id": "pay_page_1",
        "total_amount": request.amount,
        "currency": request.currency,
        "business_id": request.business_id,
        "mode": request.mode,
        "subscription_id": request.subscription_id,
        "idempotency_key": request.idempotency_key,
        "payment_method_id": "pm_page",
        "metadata": request.metadata,
    }
    return CloudEvent(
        id=event_id,
        source="payments",
        type="payment.succeeded" if ok else "payment.failed",
        time=T0,
        data=data,
    )


@pytest.fixture
async def checkouts(world: World) -> tuple[CheckoutsService, FakePages]:
    await ensure_indexes(world.db, CHECKOUT_INDEXES)
    pages = FakePages()
    service = CheckoutsService(
        CheckoutsRepository(world.db),
        world.repository,
        world.uow,
        world.clocks,
        world.products,
        pages,
    )
    return service, pages


def _cart(*lines: tuple[str, int]) -> NewCheckout:
    return NewCheckout(
        business_id="bus_1", mode="test", customer_id="cus_1", cart=list(lines), return_url=BACK
    )


async def test_the_billing_address_travels_with_the_cart_payment(
    world: World, checkouts: tuple[CheckoutsService, FakePages]
) -> None:
    service, pages = checkouts
    billing = BillingAddress(country="IT", city="Milano", street="Via Roma 1", zipcode="20121")
    checkout = await service.create_checkout(
        dataclasses.replace(_cart(("pdt_monthly", 1)), billing=billing, tax_id="IT12345678901")
    )
    [page] = pages.opened
    assert (page.billing, page.tax_id) == (billing, "IT12345678901")
    # The subscription the cart starts keeps them for its renewals' invoices.
    await run_in_transaction(
        world.uow.client,
        lambda txn: service.on_payment_event(_paid("evt_tax", page), txn),
    )
    [sub] = await _subs(world)
    assert (sub.billing, sub.tax_id) == (billing, "IT12345678901")
    assert checkout.tax_id == "IT12345678901"


async def test_a_tax_id_without_a_billing_address_is_accepted(
    world: World, checkouts: tuple[CheckoutsService, FakePages]
) -> None:
    # Dodo asks for a billing address with a tax id; our OpenAPI document cannot say
    # "required when the other is set" in a way every client honours, so both are optional.
    service, pages = checkouts
    checkout = await service.create_checkout(
        dataclasses.replace(_cart(("pdt_monthly", 1)), tax_id="X1")
    )
    assert checkout.tax_id == "X1"
    assert len(pages.opened) == 1


async def _subs(world: World) -> list[Any]:
    return await world.repository.list(
        SubscriptionFilter(business_id="bus_1", mode="test", customer_ids=("cus_1",)),
        make_page(100, 0),
    )


async def test_a_paid_cart_starts_each_subscription_once(
    world: World, checkouts: tuple[CheckoutsService, FakePages]
) -> None:
    service, pages = checkouts
    _one_time(world, "pdt_book", price=500)
    checkout = await service.create_checkout(_cart(("pdt_book", 2), ("pdt_monthly", 3)))
    [page] = pages.opened
    assert (page.amount, page.currency, checkout.total_amount) == (4000, "EUR", 4000)
    assert page.idempotency_key == f"checkout:{checkout.session_id}"
    assert checkout.checkout_url == "https://pay.example/pay/ps_1"
    # The page's payment carries the cart, so the invoice prints each product.
    assert [(x.product_id, x.product_name, x.quantity, x.unit_amount) for x in page.lines] == [
        ("pdt_book", "Book", 2, 500),
        ("pdt_monthly", world.products.products["pdt_monthly"].name, 3, 1000),
    ]
    assert page.billing is None

    # The same payment's event delivered twice under two ids (a replayed outbox row).
    for event_id in ("evt_1", "evt_2"):
        event = _paid(event_id, page)
        await run_in_transaction(
            world.uow.client,
            lambda txn, event=event: service.on_payment_event(event, txn),  # type: ignore[misc]
        )
    [sub] = await _subs(world)
    assert (sub.product_id, sub.status, sub.quantity) == ("pdt_monthly", S.ACTIVE, 3)
    assert (sub.payment_method_id, sub.recurring_pre_tax_amount) == ("pm_page", 3000)
    assert [e["type"] for e in await world.events()] == ["subscription.active"]
    done = await service.get_checkout("bus_1", "test", checkout.session_id)
    assert (done.payment_id, done.payment_status) == ("pay_page_1", "succeeded")
    assert done.subscription_ids == [sub.subscription_id]


@pytest.mark.parametrize(
    ("lines", "field"),
    [
        ((), "product_cart"),
        ((("pdt_nope", 1),), "product_cart[0].product_id"),
        ((("pdt_monthly", 1), ("pdt_old", 1)), "product_cart[1].product_id"),
        ((("pdt_monthly", 0),), "product_cart[0].quantity"),
        ((("pdt_monthly", 1),) * 21, "product_cart"),
    ],
)
async def test_a_bad_cart_names_the_line_and_writes_nothing(
    world: World,
    checkouts: tuple[CheckoutsService, FakePages],
    lines: tuple[tuple[str, int], ...],
    field: str,
) -> None:
    service, pages = checkouts
    _one_time(world, "pdt_old", price=500, archived=True)
    with pytest.raises(DomainError) as refused:
        await service.create_checkout(_cart(*lines))
    assert refused.value.field == field
    assert pages.opened == []
    assert await world.db[CHECKOUT_SESSIONS].count_documents({}) == 0


async def test_a_payment_link_subscription_activates_on_its_page_payment_only(
    world: World,
) -> None:
    pages = FakePages()
    service = SubscriptionsService(
        world.repository, world.uow, world.clocks, world.products, world.payments, pages
    )
    billing = BillingService(world.repository, world.uow, world.clocks, world.payments)
    billing.on_unmatched_payment = HostedPages(
        world.repository, world.uow, world.clocks, pages
    ).on_page_payment
    new = NewSubscription(
        business_id="bus_1",
        mode="test",
        customer_id="cus_1",
        product_id="pdt_monthly",
        quantity=1,
        return_url=BACK,
        idempotency_key="k1",
    )
    sub, link = await service.create_with_payment_link(new)
    again, _ = await service.create_with_payment_link(new)
    assert again.subscription_id == sub.subscription_id and link
    assert sub.status is S.PENDING and world.payments.calls == []
    assert {p.idempotency_key for p in pages.opened} == {first_charge_key(sub.subscription_id)}

    # A payment of the same subscription under another key is not its first period.
    other = dataclasses.replace(pages.opened[0], idempotency_key="x")
    for event in (_paid("evt_x", other), _paid("evt_1", pages.opened[0])):
        await run_in_transaction(
            world.uow.client,
            lambda txn, event=event: billing.on_payment_event(event, txn),  # type: ignore[misc]
        )
    got = await service.get_subscription("bus_1", "test", sub.subscription_id)
    assert (got.status, got.payment_method_id) == (S.ACTIVE, "pm_page")
    assert [e["type"] for e in await world.events()] == ["subscription.active"]


async def test_a_card_saved_for_an_active_subscription_becomes_its_method(world: World) -> None:
    pages = FakePages()
    hosted = HostedPages(world.repository, world.uow, world.clocks, pages)
    sub, _ = await world.service.create_subscription(
        NewSubscription(
            business_id="bus_1",
            mode="test",
            customer_id="cus_1",
            product_id="pdt_monthly",
            quantity=1,
            payment_method_id="pm_ok",
        )
    )
    _, url = await hosted.new_method_page("bus_1", "test", sub.subscription_id, BACK)
    assert url == "https://pay.example/pay/ps_save" and pages.opened == []
    saved = CloudEvent(
        id="evt_saved",
        source="payments",
        type="payment_method.saved",
        time=T0,
        data={
            "payment_method_id": "pm_new",
            "business_id": "bus_1",
            "mode": "test",
            "customer_id": "cus_1",
            "subscription_id": sub.subscription_id,
            "session_id": "ps_save",
        },
    )
    await run_in_transaction(world.uow.client, lambda txn: hosted.on_method_saved(saved, txn))
    got = await world.service.get_subscription("bus_1", "test", sub.subscription_id)
    assert (got.status, got.payment_method_id) == (S.ACTIVE, "pm_new")
    assert [e["type"] for e in await world.events()][-1] == "subscription.updated"
    # Another customer's card never lands on this subscription.
    foreign = saved.model_copy(
        update={
            "id": "evt_2",
            "data": {**saved.data, "customer_id": "cus_2", "payment_method_id": "pm_x"},
        }
    )
    await run_in_transaction(world.uow.client, lambda txn: hosted.on_method_saved(foreign, txn))
    got = await world.service.get_subscription("bus_1", "test", sub.subscription_id)
    assert got.payment_method_id == "pm_new"
