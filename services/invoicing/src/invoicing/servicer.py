"""gRPC adapter: proto <-> models. Domain errors become statuses in the kit's interceptor."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeAlias

import grpc
from billing.invoicing.v1 import invoicing_pb2, invoicing_pb2_grpc
from billing_kit.errors import InvalidArgument, Reason, Unavailable
from billing_kit.scoping import list_business, make_page, make_scope, mode_from_proto, mode_to_proto
from google.protobuf.timestamp_pb2 import Timestamp

from invoicing.issuing import Issuing
from invoicing.models import BuyerDetails, Invoice, InvoiceKind
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


def _details_to_proto(details: BuyerDetails) -> invoicing_pb2.BuyerDetails:
    return invoicing_pb2.BuyerDetails(**details.model_dump())


def invoice_to_proto(stored: Invoice, version: int = 0) -> invoicing_pb2.Invoice:
    """The wire form of an invoice as version ``version`` shows it (0 = the latest),
    with every version listed."""
    invoice = stored.as_version(version or stored.latest_version)
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
        # The original's: lists stay in issue order whatever is re-issued.
        issued_at=_timestamp(stored.issued_at),
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
        version=invoice.version,
        buyer=_details_to_proto(stored.details_of(invoice.version)),
        versions=[
            invoicing_pb2.InvoiceVersion(
                version=number,
                issued_at=_timestamp(stored.as_version(number).issued_at),
                pdf_filename=stored.as_version(number).pdf_filename,
                buyer=_details_to_proto(stored.details_of(number)),
            )
            for number in range(1, stored.latest_version + 1)
        ],
    )
    if invoice.paid_at is not None:
        message.paid_at.CopyFrom(_timestamp(invoice.paid_at))
    return message


class InvoicingServicer(invoicing_pb2_grpc.InvoicingServiceServicer):
    """Implements billing.invoicing.v1.InvoicingService."""

    def __init__(self, service: InvoicingService, issuing: Issuing | None = None) -> None:
        self._service = service
        self._issuing = issuing

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
            version=request.version,
        )
        return invoicing_pb2.InvoicePdf(
            invoice=invoice_to_proto(found.invoice, found.version), content=found.content
        )

    async def ReissueInvoice(
        self, request: invoicing_pb2.ReissueInvoiceRequest, context: Context
    ) -> invoicing_pb2.Invoice:
        """A new version of the customer's invoice with their current billing details."""
        scope = make_scope(request.business_id, mode_from_proto(request.mode), request.customer_id)
        if not request.invoice_id:
            raise InvalidArgument("invoice_id is required", reason=Reason.INVALID_INVOICE_ID)
        if self._issuing is None:
            raise Unavailable("re-issuing is not wired in this process")
        return invoice_to_proto(await self._issuing.reissue(scope, request.invoice_id))
