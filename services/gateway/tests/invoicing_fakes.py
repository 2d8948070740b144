"""An in-memory invoicing gRPC service for the invoice page and API tests.

It keeps the contract's scoping rules (business + mode, and the customer when
one is given: anyone else's invoice is NOT_FOUND; ``customer_ids`` without a
business for the unified portal) and counts calls, so the tests can show a
page asks one question and that a download is scoped to its customer. The
real service is exercised in its own tests and in tests/e2e.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import grpc
from billing.invoicing.v1 import invoicing_pb2, invoicing_pb2_grpc
from billing.payments.v1 import payments_pb2
from billing_kit.errors import InvalidArgument, NotFound, Reason
from billing_kit.grpc_server import abort_with_domain_error

# Enough of a PDF for the tests: the bytes must come back unchanged.
PDF_HEADER = b"%PDF-1.7\n"


@dataclass
class FakeInvoicing(invoicing_pb2_grpc.InvoicingServiceServicer):
    """Invoices and their PDFs by invoice id."""

    invoices: dict[str, invoicing_pb2.Invoice] = field(default_factory=dict)
    pdfs: dict[str, bytes] = field(default_factory=dict)
    calls: list[tuple[str, Any]] = field(default_factory=list)
    next_number: int = 1
    # (invoice id, version) -> the PDF of a version that a re-issue replaced.
    earlier_pdfs: dict[tuple[str, int], bytes] = field(default_factory=dict)
    # What a re-issue prints as the buyer (the real service asks auth).
    reissue_buyer: invoicing_pb2.BuyerDetails | None = None

    def issue(self, payment: payments_pb2.Payment, *, pdf_ready: bool = True) -> str:
        """Invoice a payment as the real service does on ``payment.succeeded``."""
        number = f"INV-{self.next_number:06d}"
        self.next_number += 1
        invoice = invoicing_pb2.Invoice(
            invoice_id=f"inv_{uuid.uuid4().hex[:12]}",
            number=number,
            business_id=payment.business_id,
            mode=payment.mode,
            customer_id=payment.customer_id,
            payment_id=payment.payment_id,
            total=payment.total_amount,
            subtotal=payment.total_amount,
            tax=0,
            currency=payment.currency,
            kind=invoicing_pb2.INVOICE_KIND_INVOICE,
            lines=[
                invoicing_pb2.InvoiceLine(
                    description="Pro plan",
                    quantity=1,
                    unit_amount=payment.total_amount,
                    amount=payment.total_amount,
                )
            ],
            payment_method_brand=payment.card_brand,
            payment_method_last4=payment.card_last_four,
            seller_name="Acme Italia S.r.l.",
            buyer_name="Ada Lovelace",
            buyer_email="ada@example.com",
            locale="en",
            pdf_filename=f"invoice-{number}.pdf",
            pdf_ready=pdf_ready,
            description="Pro plan",
            version=1,
            versions=[
                invoicing_pb2.InvoiceVersion(version=1, pdf_filename=f"invoice-{number}.pdf")
            ],
        )
        invoice.issued_at.FromDatetime(datetime(2026, 12, 7, 12, tzinfo=UTC))
        invoice.paid_at.FromDatetime(datetime(2026, 12, 7, 12, tzinfo=UTC))
        self.invoices[invoice.invoice_id] = invoice
        if pdf_ready:
            self.pdfs[invoice.invoice_id] = PDF_HEADER + number.encode() + b"\n%%EOF\n"
        return invoice.invoice_id

    def credit(self, invoice_id: str) -> str:
        """A credit note for a refunded invoice."""
        original = self.invoices[invoice_id]
        note = invoicing_pb2.Invoice()
        note.CopyFrom(original)
        note.invoice_id = f"inv_{uuid.uuid4().hex[:12]}"
        note.number = f"INV-{self.next_number:06d}"
        self.next_number += 1
        note.kind = invoicing_pb2.INVOICE_KIND_CREDIT_NOTE
        note.credits_invoice_id = invoice_id
        self.invoices[note.invoice_id] = note
        return note.invoice_id

    async def ReissueInvoice(self, request: Any, context: Any) -> Any:
        """A new version with ``reissue_buyer``; unchanged details add nothing."""
        self.calls.append(("ReissueInvoice", request))
        invoice = self.invoices.get(request.invoice_id)
        if invoice is None or not request.customer_id or not self._visible(invoice, request):
            await abort_with_domain_error(
                context, NotFound("invoice not found", reason=Reason.INVOICE_NOT_FOUND)
            )
            raise AssertionError("aborted")
        if self.reissue_buyer is None or self.reissue_buyer == invoice.buyer:
            return invoice
        old = invoice.version or 1
        self.earlier_pdfs[invoice.invoice_id, old] = self.pdfs[invoice.invoice_id]
        invoice.version = old + 1
        invoice.buyer.CopyFrom(self.reissue_buyer)
        invoice.pdf_filename = f"invoice-{invoice.number}-v{invoice.version}.pdf"
        added = invoice.versions.add(version=invoice.version, pdf_filename=invoice.pdf_filename)
        added.issued_at.FromDatetime(datetime(2026, 12, 9, 12, tzinfo=UTC))
        self.pdfs[invoice.invoice_id] = PDF_HEADER + f"v{invoice.version}".encode() + b"\n%%EOF\n"
        return invoice

    def count(self, name: str) -> int:
        return sum(1 for n, _ in self.calls if n == name)

    def _visible(self, invoice: invoicing_pb2.Invoice, request: Any) -> bool:
        customers = list(getattr(request, "customer_ids", []))
        if request.business_id and invoice.business_id != request.business_id:
            return False
        if invoice.mode != request.mode:
            return False
        if request.customer_id and invoice.customer_id != request.customer_id:
            return False
        return not customers or invoice.customer_id in customers

    async def ListInvoices(self, request: Any, context: Any) -> Any:
        self.calls.append(("ListInvoices", request))
        if not request.business_id and not request.customer_ids:
            await abort_with_domain_error(
                context, InvalidArgument("business_id is required", reason=Reason.INVALID_SCOPE)
            )
        found = [
            i
            for i in self.invoices.values()
            if self._visible(i, request)
            and (not request.payment_ids or i.payment_id in request.payment_ids)
        ]
        return invoicing_pb2.ListInvoicesResponse(invoices=found)

    async def GetInvoicePdf(self, request: Any, context: Any) -> Any:
        self.calls.append(("GetInvoicePdf", request))
        for invoice in self.invoices.values():
            if (
                self._visible(invoice, request)
                and invoice.kind == invoicing_pb2.INVOICE_KIND_INVOICE
                and invoice.payment_id == request.payment_id
                and invoice.invoice_id in self.pdfs
            ):
                wanted = request.version or invoice.version or 1
                if wanted == (invoice.version or 1):
                    return invoicing_pb2.InvoicePdf(
                        invoice=invoice, content=self.pdfs[invoice.invoice_id]
                    )
                if (invoice.invoice_id, wanted) in self.earlier_pdfs:
                    return invoicing_pb2.InvoicePdf(
                        invoice=invoice, content=self.earlier_pdfs[invoice.invoice_id, wanted]
                    )
        await abort_with_domain_error(
            context, NotFound("invoice not found", reason=Reason.INVOICE_NOT_FOUND)
        )


async def start_fake_invoicing() -> tuple[FakeInvoicing, grpc.aio.Server, int]:
    """The fake on its own in-process server: (state, server, port)."""
    fake = FakeInvoicing()
    server = grpc.aio.server()
    invoicing_pb2_grpc.add_InvoicingServiceServicer_to_server(fake, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return fake, server, port
