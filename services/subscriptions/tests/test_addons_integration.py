"""Add-ons over real gRPC and the database: create, list, update, archive, and a product
offering them (the product refuses an add-on of another business naming ``addons``)."""

from __future__ import annotations

import grpc
import pytest
from billing.common.v1 import common_pb2
from billing.subscriptions.v1 import (
    addons_pb2,
    addons_pb2_grpc,
    products_pb2,
    products_pb2_grpc,
)
from billing_kit.audit import audit_trail
from billing_kit.errors import Reason
from billing_kit.grpc_client import domain_error_from
from billing_kit.testing import RunningService, service_fixture
from subscriptions.app import SubscriptionsRuntime, create_app
from subscriptions.config import SubscriptionsSettings

pytestmark = pytest.mark.integration

TEST = common_pb2.MODE_TEST
MONTHLY = products_pb2.Price(
    type="recurring_price",
    price=1500,
    currency="USD",
    payment_frequency_count=1,
    payment_frequency_interval="Month",
    subscription_period_count=1,
    subscription_period_interval="Year",
)

service = service_fixture(create_app, SubscriptionsSettings)


async def _addon(
    stub: addons_pb2_grpc.AddonsServiceStub, name: str, business_id: str = "bus_1"
) -> addons_pb2.Addon:
    return await stub.CreateAddon(
        addons_pb2.CreateAddonRequest(
            business_id=business_id,
            mode=TEST,
            name=name,
            price=500,
            currency="USD",
            tax_category="saas",
            max_quantity=5,
        )
    )


async def test_addons_round_trip_and_products_offer_them(
    service: RunningService[SubscriptionsRuntime],
) -> None:
    addons = addons_pb2_grpc.AddonsServiceStub(service.channel)
    products = products_pb2_grpc.ProductsServiceStub(service.channel)
    seat = await _addon(addons, "Seat")
    storage = await _addon(addons, "Storage")
    foreign = await _addon(addons, "Theirs", business_id="bus_2")

    updated = await addons.UpdateAddon(
        addons_pb2.UpdateAddonRequest(
            business_id="bus_1", mode=TEST, addon_id=seat.addon_id, price=700
        )
    )
    await addons.ArchiveAddon(
        addons_pb2.ArchiveAddonRequest(business_id="bus_1", mode=TEST, addon_id=storage.addon_id)
    )
    live = await addons.ListAddons(addons_pb2.ListAddonsRequest(business_id="bus_1", mode=TEST))
    product = await products.CreateProduct(
        products_pb2.CreateProductRequest(
            business_id="bus_1",
            mode=TEST,
            name="Team",
            price=MONTHLY,
            tax_category="saas",
            addons=[seat.addon_id],
        )
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await products.UpdateProduct(
            products_pb2.UpdateProductRequest(
                business_id="bus_1",
                mode=TEST,
                product_id=product.product_id,
                addons=products_pb2.ProductAddons(addon_ids=[foreign.addon_id]),
            )
        )
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await addons.GetAddon(
            addons_pb2.GetAddonRequest(business_id="bus_2", mode=TEST, addon_id=seat.addon_id)
        )

    assert (updated.price, updated.max_quantity) == (700, 5)
    assert [a.name for a in live.addons] == ["Seat"]
    assert list(product.addons) == [seat.addon_id]
    error = domain_error_from(refused.value)
    assert (error.reason, error.field) == (Reason.ADDON_UNAVAILABLE, "addons")
    assert domain_error_from(missing.value).reason is Reason.ADDON_NOT_FOUND
    again = await products.GetProduct(
        products_pb2.GetProductRequest(
            business_id="bus_1", mode=TEST, product_id=product.product_id
        )
    )
    assert list(again.addons) == [seat.addon_id]


async def test_addon_changes_are_audited_and_a_bad_clear_changes_nothing(
    service: RunningService[SubscriptionsRuntime],
) -> None:
    addons = addons_pb2_grpc.AddonsServiceStub(service.channel)
    created = await addons.CreateAddon(
        addons_pb2.CreateAddonRequest(
            business_id="bus_1",
            mode=TEST,
            name="Seat",
            description="One more seat",
            price=500,
            currency="USD",
            tax_category="saas",
            merchant_key_id="key_a",
        )
    )
    scope = {"business_id": "bus_1", "mode": TEST, "addon_id": created.addon_id}
    with pytest.raises(grpc.aio.AioRpcError) as not_clearable:
        await addons.UpdateAddon(addons_pb2.UpdateAddonRequest(**scope, cleared=["price"]))  # type: ignore[arg-type]
    with pytest.raises(grpc.aio.AioRpcError) as set_and_cleared:
        await addons.UpdateAddon(
            addons_pb2.UpdateAddonRequest(**scope, description="New", cleared=["description"])  # type: ignore[arg-type]
        )
    cleared = await addons.UpdateAddon(
        addons_pb2.UpdateAddonRequest(**scope, cleared=["description"], merchant_key_id="key_b")  # type: ignore[arg-type]
    )
    await addons.ArchiveAddon(addons_pb2.ArchiveAddonRequest(**scope, merchant_key_id="key_b"))  # type: ignore[arg-type]
    again = await addons.ArchiveAddon(addons_pb2.ArchiveAddonRequest(**scope))  # type: ignore[arg-type]
    await addons.UnarchiveAddon(addons_pb2.ArchiveAddonRequest(**scope, merchant_key_id="key_c"))  # type: ignore[arg-type]

    for refused, field in ((not_clearable, "price"), (set_and_cleared, "description")):
        error = domain_error_from(refused.value)
        assert (error.reason, error.field) == (Reason.INVALID_ADDON, field)
        assert refused.value.details() == f"{field}: cannot be cleared"
    assert not cleared.HasField("description")
    assert again.archived is True
    trail = await audit_trail(service.runtime.db, "addon", created.addon_id)
    # Sorted: two changes may share a millisecond, so "newest first" cannot order them.
    assert sorted((e.action, e.actor.kind, e.actor.id) for e in trail) == [
        ("addon.archived", "merchant", "key_b"),  # once: the repeat changed nothing
        ("addon.created", "merchant", "key_a"),
        ("addon.unarchived", "merchant", "key_c"),
        ("addon.updated", "merchant", "key_b"),  # the refused updates wrote nothing
    ]
    assert [e.details for e in trail if e.action == "addon.updated"] == [{"fields": "description"}]
    assert {(e.resource.business_id, e.resource.mode) for e in trail} == {("bus_1", "test")}
