"""gRPC adapter: proto <-> models. Domain errors become statuses in the kit's interceptor."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeAlias

import grpc
from billing.invoicing.v1 import invoicing_pb2, invoicing_pb2_grpc
from billing_kit.errors import InvalidArgument, Reason
from billing_kit.scoping import list_business, make_page, make_scope, mode_from_proto, mode_to_proto
from google.protobuf.timestamp_pb2 import Timestamp

from invoicing.models import Invoice, InvoiceKind
from invoicing.repository import InvoiceFilter
from invoicing.service import InvoicingService

Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]

_KIND_TO_PROTO = {
    InvoiceKind.INVOICE: invoicing_pb2.INVOICE_KIND_INVOICE,
    InvoiceKind.CREDIT_NOTE: invoicing_pb2.INVOICE_KIND_CREDIT_NOTE,
}


def _timestamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def invoice_to_proto(invoice: Invoice) -> invoicing_pb2.Invoice:
    """The wire form of an invoice."""
    seller, buyer = invoice.seller, invoice.buyer
    message = invoicing_pb2.Invoice(
        invoice_id=invoice.invoice_id,
        number=invoice.number,
        business_id=invoice.business_id,
        mode=mode_to_proto(invoice.mode),
        customer_id=invoice.customer_id,
        payment_id=invoice.payment_id,
        total=invoice.total,
        currency=invoice.currency,
        issued_at=_timestamp(invoice.issued_at),
        kind=_KIND_TO_PROTO[invoice.kind],
        subtotal=invoice.subtotal,
        tax=invoice.tax,
        lines=[
            invoicing_pb2.InvoiceLine(
                description=line.description,
                quantity=line.quantity,
                unit_amount=line.unit_amount,
                amount=line.amount,
            )
            for line in invoice.lines
        ],
        payment_method_brand=invoice.payment_method_brand,
        payment_method_last4=invoice.payment_method_last4,
        seller_name=seller.name if seller else "",
        buyer_name=buyer.name if buyer else "",
        buyer_email=buyer.email if buyer else "",
        locale=invoice.locale,
        pdf_filename=invoice.pdf_filename,
        pdf_ready=invoice.pdf_ready,
        subscription_id=invoice.subscription_id,
        description=invoice.description,
        credits_invoice_id=invoice.credits_invoice_id,
    )
    if invoice.paid_at is not None:
        message.paid_at.CopyFrom(_timestamp(invoice.paid_at))
    return message


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
        """A page of the customer's (or the unified portal's customers') invoices, newest first."""
        business_id = list_business(request.business_id, request.customer_ids)
        mode = mode_from_proto(request.mode)
        if request.customer_ids and request.customer_id:
            raise InvalidArgument(
                "give customer_id or customer_ids, not both",
                reason=Reason.INVALID_SCOPE,
                field="customer_ids",
            )
        customer_ids = list(request.customer_ids) or [request.customer_id]
        if business_id:
            for customer_id in customer_ids:
                make_scope(business_id, mode, customer_id)
        page = make_page(request.page_size, request.page_number)
        where = InvoiceFilter(business_id, mode, customer_ids, list(request.payment_ids))
        found = await self._service.list_invoices(where, page)
        return invoicing_pb2.ListInvoicesResponse(invoices=[invoice_to_proto(i) for i in found])

    async def GetInvoicePdf(
        self, request: invoicing_pb2.GetInvoicePdfRequest, context: Context
    ) -> invoicing_pb2.InvoicePdf:
        """The stored PDF of an invoice (by id or by payment), the same bytes every time."""
        found = await self._service.get_invoice_pdf(
            request.business_id,
            mode_from_proto(request.mode),
            request.customer_id,
            invoice_id=request.invoice_id,
            payment_id=request.payment_id,
        )
        return invoicing_pb2.InvoicePdf(
            invoice=invoice_to_proto(found.invoice), content=found.content
        )
