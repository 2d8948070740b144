"""Unit tests for the add-on rules: what create and update accept, refuse and store."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from billing_kit.audit import Actor
from billing_kit.clock import FrozenClock
from billing_kit.errors import FailedPrecondition, InvalidArgument, NotFound, Reason
from billing_kit.scoping import Mode, PageRequest
from pymongo.asynchronous.client_session import AsyncClientSession
from subscriptions.addons.models import Addon
from subscriptions.addons.service import AddonsService
from subscriptions.addons.servicer import addon_to_proto
from subscriptions.products.service import ProductsService
from subscriptions.products.servicer import product_to_proto

from .test_products import InMemoryStore as ProductsStore

T = TypeVar("T")
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


class InMemoryStore:
    """The repository's contract over a dict (scoping included, as the real one does)."""

    def __init__(self) -> None:
        self.addons: dict[str, Addon] = {}
        self.audit: list[tuple[str, str, dict[str, str]]] = []

    async def insert(self, addon: Addon, *, session: AsyncClientSession) -> None:
        self.addons[addon.addon_id] = addon

    async def record_change(
        self,
        addon: Addon,
        *,
        actor: Actor,
        action: str,
        session: AsyncClientSession,
        details: Mapping[str, str] | None = None,
    ) -> None:
        self.audit.append((action, addon.addon_id, dict(details or {})))

    async def get(
        self,
        business_id: str,
        mode: Mode,
        addon_id: str,
        *,
        session: AsyncClientSession | None = None,
    ) -> Addon | None:
        found = self.addons.get(addon_id)
        if found is None or (found.business_id, found.mode) != (business_id, mode):
            return None
        return found

    async def get_many(
        self, business_id: str, mode: Mode, addon_ids: Sequence[str]
    ) -> dict[str, Addon]:
        found = {i: await self.get(business_id, mode, i) for i in addon_ids}
        return {i: a for i, a in found.items() if a is not None}

    async def list_page(
        self, business_id: str, mode: Mode, *, archived: bool, page: PageRequest
    ) -> list[Addon]:
        return [
            a
            for a in self.addons.values()
            if (a.business_id, a.mode, a.archived) == (business_id, mode, archived)
        ]

    async def replace(self, addon: Addon, *, session: AsyncClientSession) -> None:
        self.addons[addon.addon_id] = addon

    async def set_archived(
        self,
        business_id: str,
        mode: Mode,
        addon_id: str,
        *,
        archived: bool,
        at: datetime,
        session: AsyncClientSession,
    ) -> tuple[Addon, bool] | None:
        found = await self.get(business_id, mode, addon_id)
        if found is None:
            return None
        if found.archived == archived:
            return found, False
        found = found.model_copy(update={"archived": archived, "updated_at": at})
        self.addons[addon_id] = found
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
def service(store: InMemoryStore, clock: FrozenClock) -> AddonsService:
    return AddonsService(store, no_transaction, clock)


def _fields(**changes: Any) -> dict[str, Any]:
    return {
        "name": "Extra seat",
        "price": 500,
        "currency": "USD",
        "tax_category": "saas",
        **changes,
    }


async def test_create_stores_a_live_addon_and_audits_it(
    service: AddonsService, store: InMemoryStore
) -> None:
    addon = await service.create_addon("bus_1", "test", _fields(max_quantity=5))

    assert addon.addon_id.startswith("adn_")
    assert (addon.price, addon.currency, addon.max_quantity, addon.archived) == (
        500,
        "USD",
        5,
        False,
    )
    assert store.addons[addon.addon_id] == addon
    assert store.audit == [("addon.created", addon.addon_id, {})]
    wire = addon_to_proto(addon)
    assert (wire.addon_id, wire.price, wire.max_quantity) == (addon.addon_id, 500, 5)
    assert not wire.HasField("description")


@pytest.mark.parametrize(
    ("field", "changes"),
    [
        ("price", {"price": 0}),
        ("price", {"price": -5}),
        ("currency", {"currency": "usd"}),
        ("currency", {"currency": "XXX"}),
        ("name", {"name": ""}),
        ("name", {"name": "x" * 101}),
        ("tax_category", {"tax_category": "food"}),
        ("max_quantity", {"max_quantity": -1}),
    ],
)
async def test_a_broken_rule_names_its_field_and_writes_nothing(
    service: AddonsService, store: InMemoryStore, field: str, changes: dict[str, Any]
) -> None:
    with pytest.raises(InvalidArgument) as refused:
        await service.create_addon("bus_1", "test", _fields(**changes))

    assert refused.value.reason is Reason.INVALID_ADDON
    assert refused.value.field == field
    assert store.addons == {}


async def test_update_changes_only_the_fields_given_and_revalidates(
    service: AddonsService, store: InMemoryStore, clock: FrozenClock
) -> None:
    addon = await service.create_addon("bus_1", "test", _fields(description="One more seat"))
    clock.advance(60)

    updated = await service.update_addon(
        "bus_1", "test", addon.addon_id, {"price": 700, "description": None}
    )

    assert (updated.price, updated.description, updated.name) == (700, None, "Extra seat")
    assert updated.updated_at == NOW + timedelta(minutes=1)
    assert store.audit[-1] == ("addon.updated", addon.addon_id, {"fields": "description,price"})
    with pytest.raises(InvalidArgument) as refused:
        await service.update_addon("bus_1", "test", addon.addon_id, {"price": 0})
    assert refused.value.field == "price"
    with pytest.raises(InvalidArgument) as not_null:
        await service.update_addon("bus_1", "test", addon.addon_id, {"name": None})
    assert not_null.value.field == "name"
    assert store.addons[addon.addon_id].price == 700


async def test_another_business_or_mode_sees_no_addon(service: AddonsService) -> None:
    addon = await service.create_addon("bus_1", "test", _fields())

    for business, mode in (("bus_2", "test"), ("bus_1", "live")):
        with pytest.raises(NotFound) as missing:
            await service.get_addon(business, mode, addon.addon_id)  # type: ignore[arg-type]
        assert missing.value.reason is Reason.ADDON_NOT_FOUND
        with pytest.raises(NotFound):
            await service.update_addon(business, mode, addon.addon_id, {"price": 1})  # type: ignore[arg-type]
    assert await service.get_addons("bus_2", "test", [addon.addon_id]) == {}


async def test_archive_is_idempotent_and_moves_the_addon_to_the_archived_list(
    service: AddonsService, store: InMemoryStore
) -> None:
    addon = await service.create_addon("bus_1", "test", _fields())
    page = PageRequest(page_size=10, page_number=0)

    await service.set_archived("bus_1", "test", addon.addon_id, archived=True)
    again = await service.set_archived("bus_1", "test", addon.addon_id, archived=True)

    assert again.archived is True
    assert [a for _, a, _ in store.audit].count(addon.addon_id) == 2  # created + archived once
    assert await service.list_addons("bus_1", "test", archived=False, page=page) == []
    assert [
        a.addon_id for a in await service.list_addons("bus_1", "test", archived=True, page=page)
    ] == [addon.addon_id]


@pytest.mark.parametrize(
    ("max_quantity", "quantity", "allowed"),
    [(0, 1, True), (0, 10_000, True), (0, 0, False), (3, 3, True), (3, 4, False), (3, -1, False)],
)
def test_allows_respects_the_business_limit(
    max_quantity: int, quantity: int, allowed: bool
) -> None:
    addon = Addon(
        addon_id="adn_1",
        business_id="bus_1",
        mode="test",
        name="Seat",
        price=100,
        currency="USD",
        tax_category="saas",
        max_quantity=max_quantity,
        created_at=NOW,
        updated_at=NOW,
    )

    assert addon.allows(quantity) is allowed


class TestProductsOfferingAddons:
    """A product's ``addons``: known, live add-ons of the business in the price's currency."""

    MONTHLY = {
        "type": "recurring_price",
        "currency": "USD",
        "price": 1500,
        "payment_frequency_count": 1,
        "payment_frequency_interval": "Month",
        "subscription_period_count": 1,
        "subscription_period_interval": "Year",
    }

    @pytest.fixture
    def products(self, service: AddonsService, clock: FrozenClock) -> ProductsService:
        return ProductsService(ProductsStore(), no_transaction, clock, addons=service.get_addons)

    def _product(self, **changes: Any) -> dict[str, Any]:
        return {"name": "Team", "tax_category": "saas", "price": self.MONTHLY, **changes}

    async def test_a_subscription_product_offers_the_business_addons(
        self, service: AddonsService, products: ProductsService
    ) -> None:
        seat = await service.create_addon("bus_1", "test", _fields())
        storage = await service.create_addon("bus_1", "test", _fields(name="Storage"))

        product = await products.create_product(
            "bus_1", "test", self._product(addons=[seat.addon_id, storage.addon_id])
        )

        assert product.addons == [seat.addon_id, storage.addon_id]
        assert product_to_proto(product).addons == [seat.addon_id, storage.addon_id]

    @pytest.mark.parametrize("case", ["unknown", "foreign", "archived", "currency"])
    async def test_an_addon_it_cannot_offer_is_a_conflict_naming_addons(
        self, service: AddonsService, products: ProductsService, case: str
    ) -> None:
        seat = await service.create_addon("bus_1", "test", _fields())
        ids = {
            "unknown": ["adn_nope"],
            "foreign": [(await service.create_addon("bus_2", "test", _fields())).addon_id],
            "archived": [
                (await service.set_archived("bus_1", "test", seat.addon_id, archived=True)).addon_id
            ],
            "currency": [
                (await service.create_addon("bus_1", "test", _fields(currency="EUR"))).addon_id
            ],
        }[case]

        with pytest.raises(FailedPrecondition) as refused:
            await products.create_product("bus_1", "test", self._product(addons=ids))

        assert refused.value.reason is Reason.ADDON_UNAVAILABLE
        assert refused.value.field == "addons"

    async def test_an_addon_listed_twice_is_invalid(
        self, service: AddonsService, products: ProductsService
    ) -> None:
        seat = await service.create_addon("bus_1", "test", _fields())

        with pytest.raises(InvalidArgument) as refused:
            await products.create_product(
                "bus_1", "test", self._product(addons=[seat.addon_id, seat.addon_id])
            )

        assert (refused.value.reason, refused.value.field) == (Reason.INVALID_PRODUCT, "addons")

    async def test_update_replaces_the_set_and_keeps_an_addon_archived_since(
        self, service: AddonsService, products: ProductsService
    ) -> None:
        seat = await service.create_addon("bus_1", "test", _fields())
        storage = await service.create_addon("bus_1", "test", _fields(name="Storage"))
        product = await products.create_product(
            "bus_1", "test", self._product(addons=[seat.addon_id])
        )
        await service.set_archived("bus_1", "test", seat.addon_id, archived=True)

        renamed = await products.update_product(
            "bus_1", "test", product.product_id, {"name": "Team plus"}
        )
        replaced = await products.update_product(
            "bus_1", "test", product.product_id, {"addons": [storage.addon_id]}
        )
        emptied = await products.update_product("bus_1", "test", product.product_id, {"addons": []})

        assert renamed.addons == [seat.addon_id]
        assert replaced.addons == [storage.addon_id]
        assert emptied.addons == []
