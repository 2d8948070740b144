"""Products over real gRPC and SecantusDB: scoping, filters, pages, update and archive."""

from __future__ import annotations

import grpc
import pytest
from billing.common.v1 import common_pb2
from billing.subscriptions.v1 import products_pb2, products_pb2_grpc
from billing_kit.audit import audit_trail
from billing_kit.errors import Reason
from billing_kit.grpc_client import domain_error_from
from billing_kit.testing import RunningService, service_fixture
from subscriptions.app import SubscriptionsRuntime, create_app
from subscriptions.config import SubscriptionsSettings

pytestmark = pytest.mark.integration

TEST = common_pb2.MODE_TEST
ONE_TIME = products_pb2.Price(type="one_time_price", price=900, currency="EUR")
MONTHLY = products_pb2.Price(
    type="recurring_price",
    price=1500,
    currency="USD",
    payment_frequency_count=1,
    payment_frequency_interval="Month",
    subscription_period_count=2,
    subscription_period_interval="Year",
    trial_period_days=7,
)

service = service_fixture(create_app, SubscriptionsSettings)


@pytest.fixture
def stub(service: RunningService[SubscriptionsRuntime]) -> products_pb2_grpc.ProductsServiceStub:
    return products_pb2_grpc.ProductsServiceStub(service.channel)


async def _create(
    stub: products_pb2_grpc.ProductsServiceStub,
    name: str,
    price: products_pb2.Price = ONE_TIME,
    business_id: str = "bus_1",
) -> products_pb2.Product:
    return await stub.CreateProduct(
        products_pb2.CreateProductRequest(
            business_id=business_id, mode=TEST, name=name, price=price, tax_category="saas"
        )
    )


async def _list(stub: products_pb2_grpc.ProductsServiceStub, **fields: object) -> list[str]:
    reply = await stub.ListProducts(
        products_pb2.ListProductsRequest(business_id="bus_1", mode=TEST, **fields)  # type: ignore[arg-type]
    )
    return [p.name for p in reply.products]


async def test_lists_by_kind_and_page_newest_first_from_indexes(
    service: RunningService[SubscriptionsRuntime], stub: products_pb2_grpc.ProductsServiceStub
) -> None:
    for name in ("a", "b", "c"):
        await _create(stub, name)
    await _create(stub, "plan", MONTHLY)
    await _create(stub, "elsewhere", business_id="bus_2")

    assert await _list(stub, page_size=2) == ["plan", "c"]
    assert await _list(stub, page_size=2, page_number=1) == ["b", "a"]
    assert await _list(stub, recurring=True) == ["plan"]
    assert await _list(stub, recurring=False) == ["c", "b", "a"]
    names = [i["name"] async for i in await service.runtime.db["products"].list_indexes()]
    assert {"business_products_newest_first", "business_products_by_kind_newest_first"} <= set(
        names
    )


async def test_update_archive_and_unarchive(
    stub: products_pb2_grpc.ProductsServiceStub,
) -> None:
    created = await _create(stub, "Editor")
    scope = {"business_id": "bus_1", "mode": TEST, "product_id": created.product_id}

    updated = await stub.UpdateProduct(
        products_pb2.UpdateProductRequest(
            **scope,  # type: ignore[arg-type]
            price=MONTHLY,
            license_key_enabled=True,
            license_key_activations_limit=2,
            metadata=products_pb2.ProductMetadata(values={"k": "v"}),
        )
    )
    assert updated.is_recurring is True
    assert updated.price.trial_period_days == 7
    assert updated.license_key_activations_limit == 2
    assert dict(updated.metadata) == {"k": "v"}

    cleared = await stub.UpdateProduct(
        products_pb2.UpdateProductRequest(
            **scope,  # type: ignore[arg-type]
            cleared=["license_key_activations_limit", "metadata"],
        )
    )
    assert not cleared.HasField("license_key_activations_limit")
    assert dict(cleared.metadata) == {}

    archived = await stub.ArchiveProduct(products_pb2.ArchiveProductRequest(**scope))  # type: ignore[arg-type]
    assert archived.archived is True
    assert await _list(stub) == []
    assert await _list(stub, archived=True) == ["Editor"]
    back = await stub.UnarchiveProduct(products_pb2.ArchiveProductRequest(**scope))  # type: ignore[arg-type]
    assert back.archived is False
    assert await _list(stub) == ["Editor"]


@pytest.mark.parametrize(
    ("business_id", "mode"),
    [("bus_2", common_pb2.MODE_TEST), ("bus_1", common_pb2.MODE_LIVE)],
    ids=["business", "mode"],
)
async def test_another_business_or_mode_gets_not_found(
    stub: products_pb2_grpc.ProductsServiceStub, business_id: str, mode: common_pb2.Mode
) -> None:
    created = await _create(stub, "Mine")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetProduct(
            products_pb2.GetProductRequest(
                business_id=business_id, mode=mode, product_id=created.product_id
            )
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    error = domain_error_from(err.value)
    assert error is not None and error.reason is Reason.PRODUCT_NOT_FOUND


async def test_a_bad_price_is_invalid_argument_naming_the_field(
    stub: products_pb2_grpc.ProductsServiceStub,
) -> None:
    bad = products_pb2.Price()
    bad.CopyFrom(MONTHLY)
    bad.payment_frequency_count = 0
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _create(stub, "Broken", bad)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    error = domain_error_from(err.value)
    assert error is not None
    assert error.reason is Reason.INVALID_PRODUCT
    assert error.field == "price.payment_frequency_count"
    assert await _list(stub) == []


async def test_every_change_is_audited_with_the_merchants_key(
    service: RunningService[SubscriptionsRuntime], stub: products_pb2_grpc.ProductsServiceStub
) -> None:
    created = await stub.CreateProduct(
        products_pb2.CreateProductRequest(
            business_id="bus_1",
            mode=TEST,
            name="Audited",
            price=ONE_TIME,
            tax_category="saas",
            merchant_key_id="key_a",
        )
    )
    scope = {"business_id": "bus_1", "mode": TEST, "product_id": created.product_id}
    await stub.UpdateProduct(
        products_pb2.UpdateProductRequest(**scope, name="Renamed", merchant_key_id="key_b")  # type: ignore[arg-type]
    )
    await stub.ArchiveProduct(products_pb2.ArchiveProductRequest(**scope, merchant_key_id="key_b"))  # type: ignore[arg-type]
    await stub.ArchiveProduct(products_pb2.ArchiveProductRequest(**scope, merchant_key_id="key_b"))  # type: ignore[arg-type]

    trail = await audit_trail(service.runtime.db, "product", created.product_id)

    # Sorted: two changes may share a millisecond, so "newest first" cannot order them.
    assert sorted((e.action, e.actor.kind, e.actor.id) for e in trail) == [
        ("product.archived", "merchant", "key_b"),  # once: the repeat changed nothing
        ("product.created", "merchant", "key_a"),
        ("product.updated", "merchant", "key_b"),
    ]
    assert [e.details for e in trail if e.action == "product.updated"] == [{"fields": "name"}]
    assert {(e.resource.business_id, e.resource.mode) for e in trail} == {("bus_1", "test")}
