"""Unit tests for the product rules: what create and update accept, refuse and store."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest
from billing.subscriptions.v1 import products_pb2
from billing_kit.audit import Actor
from billing_kit.clock import FrozenClock
from billing_kit.errors import InvalidArgument, NotFound, Reason
from billing_kit.scoping import Mode, PageRequest
from pymongo.asynchronous.client_session import AsyncClientSession
from subscriptions.catalogue.service import merchant_actor
from subscriptions.products.models import OneTimePrice, Product, RecurringPrice
from subscriptions.products.service import ProductsService
from subscriptions.products.servicer import price_from_proto, price_to_proto

T = TypeVar("T")
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
ONE_TIME = {"type": "one_time_price", "currency": "EUR", "price": 4900}
MONTHLY = {
    "type": "recurring_price",
    "currency": "USD",
    "price": 1500,
    "payment_frequency_count": 1,
    "payment_frequency_interval": "Month",
    "subscription_period_count": 1,
    "subscription_period_interval": "Year",
}


class InMemoryStore:
    """The repository's contract over a dict (scoping included, as the real one does)."""

    def __init__(self) -> None:
        self.products: dict[str, Product] = {}
        self.audit: list[tuple[str, str, str, dict[str, str]]] = []

    async def insert(self, product: Product, *, session: AsyncClientSession) -> None:
        self.products[product.product_id] = product

    async def record_change(
        self,
        product: Product,
        *,
        actor: Actor,
        action: str,
        session: AsyncClientSession,
        details: Mapping[str, str] | None = None,
    ) -> None:
        self.audit.append((action, product.product_id, actor.id, dict(details or {})))

    async def get(
        self,
        business_id: str,
        mode: Mode,
        product_id: str,
        *,
        session: AsyncClientSession | None = None,
    ) -> Product | None:
        found = self.products.get(product_id)
        if found is None or (found.business_id, found.mode) != (business_id, mode):
            return None
        return found

    async def list_page(
        self,
        business_id: str,
        mode: Mode,
        *,
        archived: bool,
        recurring: bool | None,
        page: PageRequest,
    ) -> list[Product]:
        return [
            p
            for p in self.products.values()
            if (p.business_id, p.mode, p.archived) == (business_id, mode, archived)
            and recurring in (None, p.is_recurring)
        ]

    async def list_plan_group(
        self, business_id: str, mode: Mode, plan_group: str, *, limit: int = 100
    ) -> list[Product]:
        return [
            p
            for p in self.products.values()
            if (p.business_id, p.mode) == (business_id, mode) and plan_group == p.plan_group
        ][:limit]

    async def replace(self, product: Product, *, session: AsyncClientSession) -> None:
        self.products[product.product_id] = product

    async def set_archived(
        self,
        business_id: str,
        mode: Mode,
        product_id: str,
        *,
        archived: bool,
        at: datetime,
        session: AsyncClientSession,
    ) -> tuple[Product, bool] | None:
        found = await self.get(business_id, mode, product_id)
        if found is None:
            return None
        if found.archived == archived:
            return found, False
        found = found.model_copy(update={"archived": archived, "updated_at": at})
        self.products[product_id] = found
        return found, True


async def no_transaction(work: Callable[[AsyncClientSession], Awaitable[T]]) -> T:
    return await work(None)  # type: ignore[arg-type]


@pytest.fixture
def store() -> InMemoryStore:
    return InMemoryStore()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


@pytest.fixture
def service(store: InMemoryStore, clock: FrozenClock) -> ProductsService:
    return ProductsService(store, no_transaction, clock)


def _fields(**changes: Any) -> dict[str, Any]:
    return {"name": "Editor", "tax_category": "saas", "price": ONE_TIME, **changes}


class TestCreate:
    async def test_stores_a_one_time_product(
        self, service: ProductsService, store: InMemoryStore
    ) -> None:
        product = await service.create_product("bus_1", "test", _fields(metadata={"k": "v"}))

        assert product.product_id.startswith("pdt_")
        assert isinstance(product.price, OneTimePrice)
        assert (product.is_recurring, product.archived) == (False, False)
        assert product.created_at == product.updated_at == NOW
        assert store.products[product.product_id] == product
        assert store.audit == [("product.created", product.product_id, "subscriptions", {})]

    async def test_a_recurring_price_makes_a_recurring_product(
        self, service: ProductsService
    ) -> None:
        product = await service.create_product(
            "bus_1", "test", _fields(price={**MONTHLY, "trial_period_days": 7})
        )

        assert product.is_recurring is True
        assert isinstance(product.price, RecurringPrice)
        assert product.price.trial_period_days == 7

    @pytest.mark.parametrize(
        ("field", "changes"),
        [
            ("price.price", {"price": {**ONE_TIME, "price": 0}}),
            ("price.price", {"price": {**MONTHLY, "price": 0}}),
            ("price.currency", {"price": {**ONE_TIME, "currency": "XXX"}}),
            ("price.currency", {"price": {**ONE_TIME, "currency": "usd"}}),
            ("price.payment_frequency_count", {"price": {**MONTHLY, "payment_frequency_count": 0}}),
            (
                "price.subscription_period_count",
                {"price": {**MONTHLY, "subscription_period_count": 0}},
            ),
            (
                "price.subscription_period_interval",
                {"price": {**MONTHLY, "subscription_period_interval": "Hour"}},
            ),
            ("price.trial_period_days", {"price": {**MONTHLY, "trial_period_days": 366}}),
            ("price.trial_period_days", {"price": {**MONTHLY, "trial_period_days": -1}}),
            ("price.discount_bps", {"price": {**ONE_TIME, "discount_bps": 10_001}}),
            ("price", {"price": {**ONE_TIME, "type": "usage_based_price"}}),
            ("name", {"name": ""}),
            ("name", {"name": "   "}),
            ("name", {"name": "a\nb"}),
            ("name", {"name": "x" * 101}),
            ("description", {"description": "x" * 1001}),
            ("tax_category", {"tax_category": "food"}),
            ("license_key_activations_limit", {"license_key_activations_limit": 0}),
            (
                "license_key_duration.count",
                {"license_key_duration": {"count": 0, "interval": "Day"}},
            ),
            ("license_key_activation_message", {"license_key_activation_message": "x" * 2501}),
        ],
    )
    async def test_a_broken_rule_names_its_field_and_writes_nothing(
        self, service: ProductsService, store: InMemoryStore, field: str, changes: dict[str, Any]
    ) -> None:
        with pytest.raises(InvalidArgument) as refused:
            await service.create_product("bus_1", "test", _fields(**changes))

        assert refused.value.reason == Reason.INVALID_PRODUCT
        assert refused.value.field == field
        assert store.products == {}
        assert store.audit == []

    async def test_the_limits_themselves_are_accepted(self, service: ProductsService) -> None:
        product = await service.create_product(
            "bus_1",
            "test",
            _fields(
                name="x" * 100,
                price={**MONTHLY, "price": 1, "trial_period_days": 365},
                license_key_activations_limit=1,
                license_key_duration={"count": 1, "interval": "Day"},
            ),
        )
        assert product.license_key_activations_limit == 1


class TestReadAndScope:
    async def test_another_business_or_mode_is_not_found(self, service: ProductsService) -> None:
        product = await service.create_product("bus_1", "test", _fields())

        assert await service.get_product("bus_1", "test", product.product_id) == product
        for business_id, mode in (("bus_2", "test"), ("bus_1", "live")):
            with pytest.raises(NotFound) as missing:
                await service.get_product(business_id, mode, product.product_id)  # type: ignore[arg-type]
            assert missing.value.reason == Reason.PRODUCT_NOT_FOUND
            with pytest.raises(NotFound):
                await service.update_product(
                    business_id,
                    mode,
                    product.product_id,
                    {"name": "Mine"},  # type: ignore[arg-type]
                )
            with pytest.raises(NotFound):
                await service.set_archived(business_id, mode, product.product_id, archived=True)  # type: ignore[arg-type]

    async def test_archived_products_are_still_returned_flagged(
        self, service: ProductsService, store: InMemoryStore, clock: FrozenClock
    ) -> None:
        product = await service.create_product("bus_1", "test", _fields())
        clock.advance(60)
        key = merchant_actor("key_1")

        archived = await service.set_archived(
            "bus_1", "test", product.product_id, archived=True, actor=key
        )
        again = await service.set_archived(
            "bus_1", "test", product.product_id, archived=True, actor=key
        )

        assert archived.archived is True
        assert again.updated_at == archived.updated_at  # a repeat changes nothing
        assert [entry[:3] for entry in store.audit[1:]] == [
            ("product.archived", product.product_id, "key_1")
        ]
        assert (await service.get_product("bus_1", "test", product.product_id)).archived is True


class TestUpdate:
    async def test_changes_only_the_fields_given_and_moves_updated_at(
        self, service: ProductsService, store: InMemoryStore, clock: FrozenClock
    ) -> None:
        product = await service.create_product(
            "bus_1", "test", _fields(description="d", license_key_activations_limit=5)
        )
        clock.advance(5)

        updated = await service.update_product(
            "bus_1",
            "test",
            product.product_id,
            {"price": MONTHLY, "name": "Plan"},
            actor=merchant_actor("key_9"),
        )

        assert updated.name == "Plan"
        assert updated.is_recurring is True
        assert updated.description == "d"
        assert updated.license_key_activations_limit == 5
        assert updated.created_at == product.created_at
        assert updated.updated_at > product.updated_at
        assert store.audit[-1] == (
            "product.updated",
            product.product_id,
            "key_9",
            {"fields": "name,price"},
        )

    async def test_null_clears_the_optional_fields(self, service: ProductsService) -> None:
        product = await service.create_product(
            "bus_1",
            "test",
            _fields(
                description="d",
                license_key_activations_limit=5,
                license_key_duration={"count": 1, "interval": "Month"},
                metadata={"a": "b"},
            ),
        )

        updated = await service.update_product(
            "bus_1",
            "test",
            product.product_id,
            {
                "description": None,
                "license_key_activations_limit": None,
                "license_key_duration": None,
                "metadata": None,
            },
        )

        assert updated.description is None
        assert updated.license_key_activations_limit is None
        assert updated.license_key_duration is None
        assert updated.metadata == {}

    @pytest.mark.parametrize(
        ("field", "changes"),
        [
            ("name", {"name": None}),
            ("price", {"price": None}),
            ("product_id", {"product_id": "pdt_other"}),
            ("archived", {"archived": True}),
            ("price.price", {"price": {**ONE_TIME, "price": -1}}),
            ("license_key_activations_limit", {"license_key_activations_limit": 0}),
        ],
    )
    async def test_a_bad_change_is_refused_and_nothing_changes(
        self,
        service: ProductsService,
        store: InMemoryStore,
        field: str,
        changes: dict[str, Any],
    ) -> None:
        product = await service.create_product("bus_1", "test", _fields())

        with pytest.raises(InvalidArgument) as refused:
            await service.update_product("bus_1", "test", product.product_id, changes)

        assert refused.value.field == field
        assert store.products[product.product_id] == product
        assert [entry[0] for entry in store.audit] == ["product.created"]


class TestWireForm:
    @pytest.mark.parametrize(
        "price",
        [
            OneTimePrice.model_validate(
                {**ONE_TIME, "pay_what_you_want": True, "suggested_price": 9900}
            ),
            RecurringPrice.model_validate(
                {**MONTHLY, "trial_period_days": 30, "tax_inclusive": False, "discount_bps": 5}
            ),
        ],
    )
    def test_a_price_survives_the_round_trip(self, price: OneTimePrice | RecurringPrice) -> None:
        back = price_from_proto(price_to_proto(price))

        assert type(price).model_validate(back) == price

    def test_an_unknown_price_type_carries_no_recurring_fields(self) -> None:
        fields = price_from_proto(products_pb2.Price(type="usage_based_price", price=5))

        assert "payment_frequency_count" not in fields


class TestPlanGroups:
    async def test_plan_group_and_max_quantity_are_stored_and_changed(
        self, service: ProductsService
    ) -> None:
        product = await service.create_product(
            "bus_1", "test", _fields(price=MONTHLY, plan_group="team-plans_2", max_quantity=50)
        )
        assert (product.plan_group, product.max_quantity) == ("team-plans_2", 50)
        updated = await service.update_product(
            "bus_1", "test", product.product_id, {"plan_group": "", "max_quantity": 0}
        )
        assert (updated.plan_group, updated.max_quantity) == ("", 0)
        assert await service.list_plan_group("bus_1", "test", "team-plans_2") == []

    @pytest.mark.parametrize(
        ("field", "changes"),
        [
            ("plan_group", {"plan_group": "has space"}),
            ("plan_group", {"plan_group": "x" * 65}),
            ("max_quantity", {"max_quantity": 1001}),
            ("max_quantity", {"max_quantity": -1}),
        ],
    )
    async def test_bad_values_name_the_field(
        self, service: ProductsService, store: InMemoryStore, field: str, changes: dict[str, Any]
    ) -> None:
        with pytest.raises(InvalidArgument) as raised:
            await service.create_product("bus_1", "test", _fields(price=MONTHLY, **changes))
        assert raised.value.field == field
        assert store.products == {}
