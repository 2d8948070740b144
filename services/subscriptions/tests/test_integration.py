"""The subscriptions service as a process would run it: real SecantusDB, real gRPC."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from auth.cli import run as portalctl
from billing.common.v1 import common_pb2
from billing.subscriptions.v1 import subscriptions_pb2, subscriptions_pb2_grpc
from billing_kit.errors import Reason
from billing_kit.grpc_client import domain_error_from
from billing_kit.testing import RunningService, service_fixture
from subscriptions.app import SubscriptionsRuntime, create_app
from subscriptions.config import SubscriptionsSettings
from subscriptions.subscriptions.models import Subscription, SubscriptionStatus

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
SERVICE = "billing.subscriptions.v1.SubscriptionsService"


def _subscription(
    sid: str,
    *,
    customer_id: str = "cus_1",
    mode: str = "test",
    minutes: int = 0,
    business_id: str = "bus_1",
) -> Subscription:
    return Subscription.model_validate(
        {
            "subscription_id": sid,
            "business_id": business_id,
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


service = service_fixture(create_app, SubscriptionsSettings, renewals_enabled=False)


@pytest.fixture
def stub(
    service: RunningService[SubscriptionsRuntime],
) -> subscriptions_pb2_grpc.SubscriptionsServiceStub:
    return subscriptions_pb2_grpc.SubscriptionsServiceStub(service.channel)


async def test_reports_serving_and_ready(service: RunningService[SubscriptionsRuntime]) -> None:
    assert await service.is_serving(SERVICE)
    assert await service.readyz() == 200
    names = [i["name"] async for i in await service.runtime.db["subscriptions"].list_indexes()]
    assert "customer_newest_first" in names


async def test_lists_only_the_customers_own_subscriptions_newest_first_by_page(
    service: RunningService[SubscriptionsRuntime],
    stub: subscriptions_pb2_grpc.SubscriptionsServiceStub,
) -> None:
    for index in range(3):
        await service.runtime.subscriptions.repository.insert(
            _subscription(f"sub_{index}", minutes=index)
        )
    await service.runtime.subscriptions.repository.insert(
        _subscription("sub_other", customer_id="cus_2", minutes=9)
    )
    await service.runtime.subscriptions.repository.insert(
        _subscription("sub_live", mode="live", minutes=9)
    )

    async def page(number: int) -> list[str]:
        reply = await stub.ListSubscriptions(
            subscriptions_pb2.ListSubscriptionsRequest(
                business_id="bus_1",
                mode=common_pb2.MODE_TEST,
                customer_id="cus_1",
                page_size=2,
                page_number=number,
            )
        )
        return [s.subscription_id for s in reply.subscriptions]

    assert await page(0) == ["sub_2", "sub_1"]
    assert await page(1) == ["sub_0"]
    assert await page(2) == []


async def test_the_unified_portal_lists_its_customers_of_every_business_at_once(
    service: RunningService[SubscriptionsRuntime],
    stub: subscriptions_pb2_grpc.SubscriptionsServiceStub,
) -> None:
    repository = service.runtime.subscriptions.repository
    await repository.insert(_subscription("sub_here", minutes=1))
    await repository.insert(
        _subscription("sub_there", business_id="bus_2", customer_id="cus_2", minutes=2)
    )
    await repository.insert(
        _subscription("sub_stranger", business_id="bus_2", customer_id="cus_3", minutes=3)
    )
    reply = await stub.ListSubscriptions(
        subscriptions_pb2.ListSubscriptionsRequest(
            mode=common_pb2.MODE_TEST, customer_ids=["cus_1", "cus_2"]
        )
    )
    assert [s.subscription_id for s in reply.subscriptions] == ["sub_there", "sub_here"]


async def test_get_returns_wire_fields(
    service: RunningService[SubscriptionsRuntime],
    stub: subscriptions_pb2_grpc.SubscriptionsServiceStub,
) -> None:
    await service.runtime.subscriptions.repository.insert(_subscription("sub_1"))
    got = await stub.GetSubscription(
        subscriptions_pb2.GetSubscriptionRequest(
            business_id="bus_1",
            mode=common_pb2.MODE_TEST,
            customer_id="cus_1",
            subscription_id="sub_1",
        ),
    )
    assert got.status == subscriptions_pb2.SUBSCRIPTION_STATUS_ON_HOLD
    assert (got.recurring_pre_tax_amount, got.currency) == (2500, "EUR")
    assert got.next_billing_date.ToDatetime(tzinfo=UTC) == T0 + timedelta(days=30)


@pytest.mark.parametrize(
    ("business_id", "mode", "customer_id"),
    [
        ("bus_1", common_pb2.MODE_TEST, "cus_2"),  # another customer
        ("bus_2", common_pb2.MODE_TEST, "cus_1"),  # another business
        ("bus_1", common_pb2.MODE_LIVE, "cus_1"),  # the other mode
    ],
    ids=["customer", "business", "mode"],
)
async def test_another_customers_subscription_is_not_found(
    service: RunningService[SubscriptionsRuntime],
    stub: subscriptions_pb2_grpc.SubscriptionsServiceStub,
    business_id: str,
    mode: common_pb2.Mode,
    customer_id: str,
) -> None:
    """The real repository scopes the read: a foreign id is simply not there."""
    await service.runtime.subscriptions.repository.insert(_subscription("sub_1"))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetSubscription(
            subscriptions_pb2.GetSubscriptionRequest(
                business_id=business_id,
                mode=mode,
                customer_id=customer_id,
                subscription_id="sub_1",
            )
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    error = domain_error_from(err.value)
    assert error is not None and error.reason is Reason.SUBSCRIPTION_NOT_FOUND


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
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_portalctl_clock_advance_moves_the_business_clock_and_live_has_none(
    service: RunningService[SubscriptionsRuntime],
    stub: subscriptions_pb2_grpc.SubscriptionsServiceStub,
) -> None:
    out, err = io.StringIO(), io.StringIO()
    target = ["--subscriptions-target", service.grpc_target]
    code = await portalctl(
        ["clock", "advance", "--business", "bus_1", "--days", "2", *target], out, err
    )
    assert code == 0, err.getvalue()
    clock = await stub.GetTestClock(
        subscriptions_pb2.GetTestClockRequest(business_id="bus_1", mode=common_pb2.MODE_TEST)
    )
    assert clock.offset_seconds == 2 * 86_400
    assert "test clock of bus_1 is now" in out.getvalue()

    back = ["clock", "advance", "--business", "bus_1", "--to", "2000-01-01T00:00:00+00:00"]
    assert await portalctl([*back, *target], out, err) == 1
    assert "never goes backwards" in err.getvalue()
    with pytest.raises(grpc.aio.AioRpcError) as live:
        await stub.AdvanceTestClock(
            subscriptions_pb2.AdvanceTestClockRequest(
                business_id="bus_1", mode=common_pb2.MODE_LIVE, seconds=60
            )
        )
    assert live.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_bad_billing_country_is_invalid_argument_naming_it(
    service: RunningService[SubscriptionsRuntime],
    stub: subscriptions_pb2_grpc.SubscriptionsServiceStub,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.CreateSubscription(
            subscriptions_pb2.CreateSubscriptionRequest(
                business_id="bus_1",
                mode=common_pb2.MODE_TEST,
                customer_id="cus_1",
                product_id="pdt_1",
                quantity=1,
                billing=subscriptions_pb2.BillingAddress(country="italy"),
            )
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    error = domain_error_from(err.value)
    assert error is not None and error.field == "billing.country"
    assert await service.runtime.db["subscriptions"].count_documents({}) == 0
