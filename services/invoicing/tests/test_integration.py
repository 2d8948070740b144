"""The invoicing service as a process would run it: real SecantusDB, real gRPC."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aiohttp
import grpc
import pytest
import pytest_asyncio
from billing.common.v1 import common_pb2
from billing.invoicing.v1 import invoicing_pb2, invoicing_pb2_grpc
from billing_kit.grpc_client import domain_error_from
from grpc_health.v1 import health_pb2, health_pb2_grpc
from invoicing.app import InvoicingRuntime, create_app
from invoicing.config import InvoicingSettings
from invoicing.models import Invoice
from pymongo.errors import DuplicateKeyError

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
SERVICE = "billing.invoicing.v1.InvoicingService"


def _invoice(
    iid: str, number: str, *, customer_id: str = "cus_1", mode: str = "live", days: int = 0
) -> Invoice:
    return Invoice.model_validate(
        {
            "invoice_id": iid,
            "number": number,
            "business_id": "bus_1",
            "mode": mode,
            "customer_id": customer_id,
            "payment_id": f"pay_{iid}",
            "total": 1220,
            "currency": "EUR",
            "issued_at": T0 + timedelta(days=days),
        }
    )


@pytest_asyncio.fixture
async def runtime(mongo_url: str, unique_db_name: str) -> AsyncIterator[InvoicingRuntime]:
    settings = InvoicingSettings(
        mongodb_url=mongo_url, mongodb_database=unique_db_name, grpc_port=0, ops_port=0
    )
    app = create_app(settings)
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


@pytest_asyncio.fixture
async def stub(runtime: InvoicingRuntime) -> AsyncIterator[invoicing_pb2_grpc.InvoicingServiceStub]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{runtime.grpc_port}") as channel:
        yield invoicing_pb2_grpc.InvoicingServiceStub(channel)


async def test_reports_serving_and_ready(runtime: InvoicingRuntime) -> None:
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


async def test_lists_own_invoices_newest_first_by_page(
    runtime: InvoicingRuntime, stub: invoicing_pb2_grpc.InvoicingServiceStub
) -> None:
    for index in range(3):
        await runtime.repository.insert(_invoice(f"inv_{index}", f"INV-{index}", days=index))
    await runtime.repository.insert(_invoice("inv_x", "INV-x", customer_id="cus_2", days=9))
    await runtime.repository.insert(_invoice("inv_t", "INV-t", mode="test", days=9))

    async def page(number: int) -> list[str]:
        reply = await stub.ListInvoices(
            invoicing_pb2.ListInvoicesRequest(
                business_id="bus_1",
                mode=common_pb2.MODE_LIVE,
                customer_id="cus_1",
                page_size=2,
                page_number=number,
            ),
            timeout=5,
        )
        return [i.invoice_id for i in reply.invoices]

    assert await page(0) == ["inv_2", "inv_1"]
    assert await page(1) == ["inv_0"]
    assert await page(2) == []


async def test_get_own_invoice_and_not_anothers(
    runtime: InvoicingRuntime, stub: invoicing_pb2_grpc.InvoicingServiceStub
) -> None:
    await runtime.repository.insert(_invoice("inv_mine", "INV-1"))
    await runtime.repository.insert(_invoice("inv_theirs", "INV-2", customer_id="cus_2"))
    mine = await stub.GetInvoice(
        invoicing_pb2.GetInvoiceRequest(
            business_id="bus_1",
            mode=common_pb2.MODE_LIVE,
            customer_id="cus_1",
            invoice_id="inv_mine",
        ),
        timeout=5,
    )
    assert (mine.number, mine.total, mine.currency, mine.payment_id) == (
        "INV-1",
        1220,
        "EUR",
        "pay_inv_mine",
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetInvoice(
            invoicing_pb2.GetInvoiceRequest(
                business_id="bus_1",
                mode=common_pb2.MODE_LIVE,
                customer_id="cus_1",
                invoice_id="inv_theirs",
            ),
            timeout=5,
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    error = domain_error_from(err.value)
    assert error is not None and error.reason == "INVOICE_NOT_FOUND"


async def test_invoice_numbers_are_unique_per_business_and_mode(runtime: InvoicingRuntime) -> None:
    await runtime.repository.insert(_invoice("inv_a", "INV-7"))
    with pytest.raises(DuplicateKeyError):
        await runtime.repository.insert(_invoice("inv_b", "INV-7", customer_id="cus_2"))
    # The same number in the other mode is a different sequence.
    await runtime.repository.insert(_invoice("inv_c", "INV-7", mode="test"))


async def test_bad_page_is_invalid_argument(stub: invoicing_pb2_grpc.InvoicingServiceStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ListInvoices(
            invoicing_pb2.ListInvoicesRequest(
                business_id="bus_1", mode=common_pb2.MODE_LIVE, customer_id="cus_1", page_size=1000
            ),
            timeout=5,
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
