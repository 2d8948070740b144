"""The subscriptions service as a process would run it: real SecantusDB, real gRPC."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aiohttp
import grpc
import pytest
import pytest_asyncio
from billing.common.v1 import common_pb2
from billing.subscriptions.v1 import subscriptions_pb2, subscriptions_pb2_grpc
from billing_kit.grpc_client import domain_error_from
from grpc_health.v1 import health_pb2, health_pb2_grpc
from subscriptions.app import SubscriptionsRuntime, create_app
from subscriptions.config import SubscriptionsSettings
from subscriptions.models import Subscription, SubscriptionStatus

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
SERVICE = "billing.subscriptions.v1.SubscriptionsService"


def _subscription(
    sid: str, *, customer_id: str = "cus_1", mode: str = "test", minutes: int = 0
) -> Subscription:
    return Subscription.model_validate(
        {
            "subscription_id": sid,
            "business_id": "bus_1",
            "mode": mode,
            "customer_id": customer_id,
            "product_id": "pdt_1",
            "status": SubscriptionStatus.ON_HOLD,
            "recurring_pre_tax_amount": 2500,
            "currency": "EUR",
            "next_billing_date": T0 + timedelta(days=30),
            "created_at": T0 + timedelta(minutes=minutes),
        }
    )


@pytest_asyncio.fixture
async def runtime(mongo_url: str, unique_db_name: str) -> AsyncIterator[SubscriptionsRuntime]:
    settings = SubscriptionsSettings(
        mongodb_url=mongo_url, mongodb_database=unique_db_name, grpc_port=0, ops_port=0
    )
    app = create_app(settings)
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


@pytest_asyncio.fixture
async def stub(
    runtime: SubscriptionsRuntime,
) -> AsyncIterator[subscriptions_pb2_grpc.SubscriptionsServiceStub]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{runtime.grpc_port}") as channel:
        yield subscriptions_pb2_grpc.SubscriptionsServiceStub(channel)


async def test_reports_serving_and_ready(runtime: SubscriptionsRuntime) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{runtime.grpc_port}") as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=SERVICE), timeout=5
        )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{runtime.ops_port}/readyz") as response,
    ):
        assert response.status == 200
    names = [i["name"] async for i in await runtime.db["subscriptions"].list_indexes()]
    assert "customer_newest_first" in names


async def test_lists_only_the_customers_own_subscriptions_newest_first_by_page(
    runtime: SubscriptionsRuntime, stub: subscriptions_pb2_grpc.SubscriptionsServiceStub
) -> None:
    for index in range(3):
        await runtime.repository.insert(_subscription(f"sub_{index}", minutes=index))
    await runtime.repository.insert(_subscription("sub_other", customer_id="cus_2", minutes=9))
    await runtime.repository.insert(_subscription("sub_live", mode="live", minutes=9))

    async def page(number: int) -> list[str]:
        reply = await stub.ListSubscriptions(
            subscriptions_pb2.ListSubscriptionsRequest(
                business_id="bus_1",
                mode=common_pb2.MODE_TEST,
                customer_id="cus_1",
                page_size=2,
                page_number=number,
            ),
            timeout=5,
        )
        return [s.subscription_id for s in reply.subscriptions]

    assert await page(0) == ["sub_2", "sub_1"]
    assert await page(1) == ["sub_0"]
    assert await page(2) == []


async def test_get_returns_wire_fields(
    runtime: SubscriptionsRuntime, stub: subscriptions_pb2_grpc.SubscriptionsServiceStub
) -> None:
    await runtime.repository.insert(_subscription("sub_1"))
    got = await stub.GetSubscription(
        subscriptions_pb2.GetSubscriptionRequest(
            business_id="bus_1",
            mode=common_pb2.MODE_TEST,
            customer_id="cus_1",
            subscription_id="sub_1",
        ),
        timeout=5,
    )
    assert got.status == subscriptions_pb2.SUBSCRIPTION_STATUS_ON_HOLD
    assert (got.recurring_pre_tax_amount, got.currency) == (2500, "EUR")
    assert got.next_billing_date.ToDatetime(tzinfo=UTC) == T0 + timedelta(days=30)


async def test_another_customers_subscription_is_not_found(
    runtime: SubscriptionsRuntime, stub: subscriptions_pb2_grpc.SubscriptionsServiceStub
) -> None:
    await runtime.repository.insert(_subscription("sub_theirs", customer_id="cus_2"))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetSubscription(
            subscriptions_pb2.GetSubscriptionRequest(
                business_id="bus_1",
                mode=common_pb2.MODE_TEST,
                customer_id="cus_1",
                subscription_id="sub_theirs",
            ),
            timeout=5,
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    error = domain_error_from(err.value)
    assert error is not None and error.reason == "SUBSCRIPTION_NOT_FOUND"


@pytest.mark.parametrize(
    "request_fields",
    [
        {
            "business_id": "bus_1",
            "mode": common_pb2.MODE_TEST,
            "customer_id": "cus_1",
            "page_size": 101,
        },
        {
            "business_id": "bus_1",
            "mode": common_pb2.MODE_TEST,
            "customer_id": "cus_1",
            "page_number": -1,
        },
        {"business_id": "bus_1", "mode": common_pb2.MODE_UNSPECIFIED, "customer_id": "cus_1"},
        {"business_id": "", "mode": common_pb2.MODE_TEST, "customer_id": "cus_1"},
    ],
)
async def test_bad_list_request_is_invalid_argument(
    stub: subscriptions_pb2_grpc.SubscriptionsServiceStub, request_fields: dict[str, object]
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ListSubscriptions(
            subscriptions_pb2.ListSubscriptionsRequest(**request_fields),  # type: ignore[arg-type]
            timeout=5,
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
