"""Fixtures of the subscription aggregate over a real database, with in-process
fakes of payments (the PaymentsPort shape) and of the product catalogue."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest_asyncio
from billing_kit.clock import FrozenClock
from billing_kit.errors import NotFound, Reason
from billing_kit.mongo import create_mongo_client, ensure_indexes
from billing_kit.outbox import OUTBOX_COLLECTION, OUTBOX_INDEXES
from billing_kit.scoping import Mode
from pymongo.asynchronous.database import AsyncDatabase
from subscriptions.addons.models import Addon
from subscriptions.products.models import Product, RecurringPrice
from subscriptions.subscriptions.billing import BillingService
from subscriptions.subscriptions.payments_client import ChargeRequest, ChargeResult, ChargeStatus
from subscriptions.subscriptions.renewals import RenewalScheduler
from subscriptions.subscriptions.repository import INDEXES, SubscriptionsRepository
from subscriptions.subscriptions.service import SubscriptionsService
from subscriptions.subscriptions.test_clock import BusinessClocks
from subscriptions.subscriptions.unit_of_work import UnitOfWork

T0 = datetime(2026, 1, 31, 9, 0, tzinfo=UTC)
DECLINED = "Your card was declined."


class FakePayments:
    """Payments as its contract says: same key -> same payment; declines are results.

    Methods: ``pm_ok`` pays; ``pm_declined`` is declined; ``pm_3ds`` asks for a
    challenge when the customer is present (unattended: pays); ``pm_gone`` is
    not found.
    """

    def __init__(self) -> None:
        self.calls: list[ChargeRequest] = []
        self.by_key: dict[str, ChargeResult] = {}

    async def charge(self, request: ChargeRequest) -> ChargeResult:
        self.calls.append(request)
        await asyncio.sleep(0)  # let a concurrent scheduler interleave here
        if request.idempotency_key in self.by_key:
            return self.by_key[request.idempotency_key]
        method = request.payment_method_id
        if method == "pm_gone" or not method:
            raise NotFound("no such payment method", reason=Reason.NOT_FOUND)
        status = ChargeStatus.SUCCEEDED
        if method == "pm_declined":
            status = ChargeStatus.FAILED
        elif method == "pm_3ds" and request.customer_present:
            status = ChargeStatus.REQUIRES_CUSTOMER_ACTION
        result = ChargeResult(
            payment_id=f"pay_{len(self.by_key) + 1}",
            status=status,
            amount=request.amount,
            currency=request.currency,
            error_code="card_declined" if status is ChargeStatus.FAILED else "",
            error_message=DECLINED if status is ChargeStatus.FAILED else "",
            challenge_url="https://pay.example/3ds"
            if status is ChargeStatus.REQUIRES_CUSTOMER_ACTION
            else "",
        )
        self.by_key[request.idempotency_key] = result
        return result

    def charged(self, subscription_id: str) -> list[ChargeResult]:
        """Distinct successful payments of a subscription."""
        return [
            r
            for k, r in self.by_key.items()
            if k.startswith(subscription_id + ":") and r.status is ChargeStatus.SUCCEEDED
        ]


class FakeProducts:
    """The catalogue: ``pdt_monthly`` (EUR 10.00 a month, 1 year), ``pdt_trial`` (7-day trial);
    add-ons added with :meth:`add_addon` (``get_addons`` counts its calls)."""

    def __init__(self) -> None:
        self.products: dict[str, Product] = {}
        self.addons: dict[str, Addon] = {}
        self.addon_reads = 0
        self.add("pdt_monthly", trial=0)
        self.add("pdt_trial", trial=7)

    def add(self, product_id: str, *, trial: int, price: int = 1000) -> None:
        self.products[product_id] = Product(
            product_id=product_id,
            business_id="bus_1",
            mode="test",
            name="Pro plan",
            price=RecurringPrice(
                price=price,
                currency="EUR",
                payment_frequency_count=1,
                payment_frequency_interval="Month",
                subscription_period_count=1,
                subscription_period_interval="Year",
                trial_period_days=trial,
            ),
            tax_category="saas",
            is_recurring=True,
            created_at=T0,
            updated_at=T0,
        )

    def add_addon(
        self,
        addon_id: str,
        *,
        price: int = 300,
        currency: str = "EUR",
        max_quantity: int = 0,
        archived: bool = False,
        business_id: str = "bus_1",
    ) -> Addon:
        """An add-on of ``business_id`` (test mode)."""
        addon = Addon(
            addon_id=addon_id,
            business_id=business_id,
            mode="test",
            name=f"Extra {addon_id}",
            price=price,
            currency=currency,
            tax_category="saas",
            max_quantity=max_quantity,
            archived=archived,
            created_at=T0,
            updated_at=T0,
        )
        self.addons[addon_id] = addon
        return addon

    def offer(self, product_id: str, *addon_ids: str) -> None:
        """Make ``product_id`` offer these add-ons (its ``addons``)."""
        product = self.products[product_id]
        self.products[product_id] = product.model_copy(update={"addons": list(addon_ids)})

    async def get_addons(
        self, business_id: str, mode: Mode, addon_ids: Sequence[str]
    ) -> dict[str, Addon]:
        self.addon_reads += 1
        return {
            a: self.addons[a]
            for a in addon_ids
            if a in self.addons
            and (self.addons[a].business_id, self.addons[a].mode) == (business_id, mode)
        }

    async def get_product(self, business_id: str, mode: Mode, product_id: str) -> Product:
        found = self.products.get(product_id)
        if found is None or found.business_id != business_id or found.mode != mode:
            raise NotFound("product not found", reason=Reason.NOT_FOUND)
        return found

    async def list_plan_group(self, business_id: str, mode: Mode, plan_group: str) -> list[Product]:
        return [
            p
            for p in self.products.values()
            if (p.business_id, p.mode) == (business_id, mode)
            and plan_group
            and p.plan_group == plan_group
        ]


@dataclass
class World:
    """The aggregate wired over one fresh database."""

    db: AsyncDatabase[dict[str, Any]]
    real: FrozenClock
    payments: FakePayments
    products: FakeProducts
    repository: SubscriptionsRepository
    clocks: BusinessClocks
    service: SubscriptionsService
    billing: BillingService
    uow: UnitOfWork
    schedulers: list[RenewalScheduler] = field(default_factory=list)

    def scheduler(self) -> RenewalScheduler:
        """A scheduler (one per replica)."""
        s = RenewalScheduler(self.repository, self.uow, self.clocks, self.payments, clock=self.real)
        self.schedulers.append(s)
        return s

    async def events(self, event_type: str | None = None) -> list[dict[str, Any]]:
        """Queued outbox events (the event documents), oldest first."""
        query = {"type": event_type} if event_type else {}
        cursor = self.db[OUTBOX_COLLECTION].find(query).sort("created_at", 1)
        return [doc["event"] async for doc in cursor]


@pytest_asyncio.fixture
async def world(mongo_url: str, unique_db_name: str) -> AsyncIterator[World]:
    client = create_mongo_client(mongo_url, app_name="subscriptions-tests")
    db = client[unique_db_name]
    await ensure_indexes(db, {**INDEXES, **OUTBOX_INDEXES})
    real = FrozenClock(T0)
    repository = SubscriptionsRepository(db)
    uow = UnitOfWork(client, db)
    clocks = BusinessClocks(db, clock=real)
    payments, products = FakePayments(), FakeProducts()
    yield World(
        db=db,
        real=real,
        payments=payments,
        products=products,
        repository=repository,
        clocks=clocks,
        service=SubscriptionsService(repository, uow, clocks, products, payments),
        billing=BillingService(repository, uow, clocks, payments),
        uow=uow,
    )
    await client.drop_database(unique_db_name)
    await client.close()
