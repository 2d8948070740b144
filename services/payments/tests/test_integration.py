"""The payments service as a process would run it: real SecantusDB, real gRPC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
import pytest
from billing.common.v1 import common_pb2
from billing.payments.v1 import payments_pb2, payments_pb2_grpc
from billing_kit.grpc_client import domain_error_from
from billing_kit.testing import RunningService
from payments.app import PaymentsRuntime
from payments.methods.models import StoredPaymentMethod

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
SERVICE = "billing.payments.v1.PaymentsService"


def _method(
    pid: str, *, customer_id: str = "cus_1", mode: str = "test", minutes: int = 0
) -> StoredPaymentMethod:
    return StoredPaymentMethod.model_validate(
        {
            "payment_method_id": pid,
            "business_id": "bus_1",
            "mode": mode,
            "customer_id": customer_id,
            "brand": "visa",
            "last4": "4242",
            "expiry_month": 4,
            "expiry_year": 2031,
            "fingerprint": f"fp_{pid}",
            "created_at": T0 + timedelta(minutes=minutes),
            "processor_token": f"tok_test_ok_{pid}",
        }
    )


async def test_reports_serving_and_ready(service: RunningService[PaymentsRuntime]) -> None:
    assert await service.is_serving(SERVICE)
    assert await service.readyz() == 200


async def test_lists_only_the_customers_own_methods_by_page(
    service: RunningService[PaymentsRuntime], stub: payments_pb2_grpc.PaymentsServiceStub
) -> None:
    for index in range(3):
        await service.runtime.method_repository.insert(_method(f"pm_{index}", minutes=index))
    await service.runtime.method_repository.insert(_method("pm_x", customer_id="cus_2"))
    await service.runtime.method_repository.insert(_method("pm_live", mode="live"))

    async def page(size: int, number: int) -> list[payments_pb2.PaymentMethod]:
        reply = await stub.ListPaymentMethods(
            payments_pb2.ListPaymentMethodsRequest(
                business_id="bus_1",
                mode=common_pb2.MODE_TEST,
                customer_id="cus_1",
                page_size=size,
                page_number=number,
            ),
        )
        return list(reply.payment_methods)

    first = await page(2, 0)
    assert [m.payment_method_id for m in first] == ["pm_2", "pm_1"]
    assert [m.payment_method_id for m in await page(2, 1)] == ["pm_0"]
    assert [m.payment_method_id for m in await page(0, 0)] == ["pm_2", "pm_1", "pm_0"]
    assert (first[0].brand, first[0].last4, first[0].expiry_month, first[0].expiry_year) == (
        "visa",
        "4242",
        4,
        2031,
    )


async def test_unknown_customer_has_no_methods(stub: payments_pb2_grpc.PaymentsServiceStub) -> None:
    reply = await stub.ListPaymentMethods(
        payments_pb2.ListPaymentMethodsRequest(
            business_id="bus_1", mode=common_pb2.MODE_TEST, customer_id="nobody"
        ),
    )
    assert list(reply.payment_methods) == []


@pytest.mark.parametrize(
    "mode",
    # Unset (a caller that forgot) and a number no contract defines.
    [common_pb2.MODE_UNSPECIFIED, 7],
)
async def test_a_request_without_a_known_mode_is_invalid_argument(
    stub: payments_pb2_grpc.PaymentsServiceStub, mode: int
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ListPaymentMethods(
            payments_pb2.ListPaymentMethodsRequest(
                business_id="bus_1",
                mode=mode,  # type: ignore[arg-type]
                customer_id="c",
            ),
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    error = domain_error_from(err.value)
    assert error is not None and error.reason == "INVALID_MODE"
