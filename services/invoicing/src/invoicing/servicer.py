"""gRPC adapter: proto <-> models. Domain errors become statuses in the kit's interceptor."""

from __future__ import annotations

from typing import Any, TypeAlias

import grpc
from billing.invoicing.v1 import invoicing_pb2, invoicing_pb2_grpc
from billing_kit.scoping import make_page, make_scope, mode_from_proto, mode_to_proto
from google.protobuf.timestamp_pb2 import Timestamp

from invoicing.models import Invoice
from invoicing.service import InvoicingService

Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]


def invoice_to_proto(invoice: Invoice) -> invoicing_pb2.Invoice:
    """The wire form of an invoice."""
    issued_at = Timestamp()
    issued_at.FromDatetime(invoice.issued_at)
    return invoicing_pb2.Invoice(
        invoice_id=invoice.invoice_id,
        number=invoice.number,
        business_id=invoice.business_id,
        mode=mode_to_proto(invoice.mode),
        customer_id=invoice.customer_id,
        payment_id=invoice.payment_id,
        total=invoice.total,
        currency=invoice.currency,
        issued_at=issued_at,
    )


class InvoicingServicer(invoicing_pb2_grpc.InvoicingServiceServicer):
    """Implements billing.invoicing.v1.InvoicingService."""

    def __init__(self, service: InvoicingService) -> None:
        self._service = service

    async def GetInvoice(
        self, request: invoicing_pb2.GetInvoiceRequest, context: Context
    ) -> invoicing_pb2.Invoice:
        """One invoice of the calling customer."""
        scope = make_scope(request.business_id, mode_from_proto(request.mode), request.customer_id)
        return invoice_to_proto(await self._service.get_invoice(scope, request.invoice_id))

    async def ListInvoices(
        self, request: invoicing_pb2.ListInvoicesRequest, context: Context
    ) -> invoicing_pb2.ListInvoicesResponse:
        """A page of the calling customer's invoices, newest first."""
        scope = make_scope(request.business_id, mode_from_proto(request.mode), request.customer_id)
        page = make_page(request.page_size, request.page_number)
        found = await self._service.list_invoices(scope, page)
        return invoicing_pb2.ListInvoicesResponse(invoices=[invoice_to_proto(i) for i in found])

    async def GetInvoicePdf(
        self, request: invoicing_pb2.GetInvoicePdfRequest, context: Context
    ) -> invoicing_pb2.InvoicePdf:
        """Not served yet: issuing and rendering land with the invoices issue."""
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "invoice PDFs are not issued yet")
        raise AssertionError("unreachable")
