"""The invoicing service as a process would run it: real SecantusDB, real gRPC."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import grpc
import pytest
import pytest_asyncio
from billing.common.v1 import common_pb2
from billing.invoicing.v1 import invoicing_pb2, invoicing_pb2_grpc
from billing_kit.errors import Reason
from billing_kit.grpc_client import domain_error_from
from billing_kit.mongo import run_in_transaction
from billing_kit.testing import BrokerNamespace, RunningService, broker_namespace, service_fixture
from invoicing.app import InvoicingRuntime, create_app
from invoicing.config import InvoicingSettings
from invoicing.models import Invoice
from invoicing.repository import customer_counter
from pymongo.asynchronous.client_session import AsyncClientSession
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
async def ns(amqp_url: str) -> AsyncIterator[BrokerNamespace]:
    """A private exchange and queue prefix: the consumer must not read the devstack's events."""
    async with broker_namespace(amqp_url) as namespace:
        yield namespace


async def seed(service: RunningService[InvoicingRuntime], invoice: Invoice) -> None:
    """Store an issued invoice as the issuing transaction does: the customer's next position."""
    repository = service.runtime.repository
    await repository.ensure_counters(invoice.business_id, invoice.mode, invoice.customer_id)

    async def issue(session: AsyncClientSession) -> None:
        counter = customer_counter(invoice.customer_id, invoice.mode)
        position = await repository.take_next(counter, session)
        await repository.insert(invoice, position, session)

    await run_in_transaction(service.runtime.client, issue)


service = service_fixture(create_app, InvoicingSettings, with_broker=True)


@pytest.fixture
def stub(service: RunningService[InvoicingRuntime]) -> invoicing_pb2_grpc.InvoicingServiceStub:
    return invoicing_pb2_grpc.InvoicingServiceStub(service.channel)


async def test_reports_serving_and_ready(service: RunningService[InvoicingRuntime]) -> None:
    assert await service.is_serving(SERVICE)
    assert await service.readyz() == 200


async def test_lists_own_invoices_newest_first_by_page(
    service: RunningService[InvoicingRuntime], stub: invoicing_pb2_grpc.InvoicingServiceStub
) -> None:
    for index in range(3):
        await seed(service, _invoice(f"inv_{index}", f"INV-{index}", days=index))
    await seed(service, _invoice("inv_x", "INV-x", customer_id="cus_2", days=9))
    await seed(service, _invoice("inv_t", "INV-t", mode="test", days=9))

    async def page(number: int) -> list[str]:
        reply = await stub.ListInvoices(
            invoicing_pb2.ListInvoicesRequest(
                business_id="bus_1",
                mode=common_pb2.MODE_LIVE,
                customer_id="cus_1",
                page_size=2,
                page_number=number,
            ),
        )
        return [i.invoice_id for i in reply.invoices]

    assert await page(0) == ["inv_2", "inv_1"]
    assert await page(1) == ["inv_0"]
    assert await page(2) == []


async def test_get_own_invoice_on_the_wire(
    service: RunningService[InvoicingRuntime], stub: invoicing_pb2_grpc.InvoicingServiceStub
) -> None:
    await seed(service, _invoice("inv_mine", "INV-1"))
    mine = await stub.GetInvoice(
        invoicing_pb2.GetInvoiceRequest(
            business_id="bus_1",
            mode=common_pb2.MODE_LIVE,
            customer_id="cus_1",
            invoice_id="inv_mine",
        )
    )
    assert (mine.number, mine.total, mine.currency, mine.payment_id) == (
        "INV-1",
        1220,
        "EUR",
        "pay_inv_mine",
    )


@pytest.mark.parametrize(
    ("business_id", "mode", "customer_id"),
    [
        ("bus_1", common_pb2.MODE_LIVE, "cus_2"),  # another customer
        ("bus_2", common_pb2.MODE_LIVE, "cus_1"),  # another business
        ("bus_1", common_pb2.MODE_TEST, "cus_1"),  # the other mode
    ],
    ids=["customer", "business", "mode"],
)
async def test_another_customers_invoice_is_not_found(
    service: RunningService[InvoicingRuntime],
    stub: invoicing_pb2_grpc.InvoicingServiceStub,
    business_id: str,
    mode: common_pb2.Mode,
    customer_id: str,
) -> None:
    """The real repository scopes the read: a foreign id is simply not there."""
    await seed(service, _invoice("inv_1", "INV-1"))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetInvoice(
            invoicing_pb2.GetInvoiceRequest(
                business_id=business_id, mode=mode, customer_id=customer_id, invoice_id="inv_1"
            )
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    error = domain_error_from(err.value)
    assert error is not None and error.reason is Reason.INVOICE_NOT_FOUND


async def test_invoice_numbers_are_unique_per_business_and_mode(
    service: RunningService[InvoicingRuntime],
) -> None:
    await seed(service, _invoice("inv_a", "INV-7"))
    with pytest.raises(DuplicateKeyError):
        await seed(service, _invoice("inv_b", "INV-7", customer_id="cus_2"))
    # The same number in the other mode is a different sequence.
    await seed(service, _invoice("inv_c", "INV-7", mode="test"))


async def test_bad_page_is_invalid_argument(stub: invoicing_pb2_grpc.InvoicingServiceStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ListInvoices(
            invoicing_pb2.ListInvoicesRequest(
                business_id="bus_1", mode=common_pb2.MODE_LIVE, customer_id="cus_1", page_size=1000
            ),
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_customer_id_and_customer_ids_together_are_refused(
    stub: invoicing_pb2_grpc.InvoicingServiceStub,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ListInvoices(
            invoicing_pb2.ListInvoicesRequest(
                mode=common_pb2.MODE_LIVE, customer_id="cus_1", customer_ids=["cus_1", "cus_2"]
            ),
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    error = domain_error_from(err.value)
    assert error is not None and error.reason is Reason.INVALID_SCOPE
