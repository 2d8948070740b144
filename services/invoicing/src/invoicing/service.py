"""Use cases of the invoicing service's reads: pure logic over the repository."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from billing_kit.errors import InvalidArgument, NotFound, Reason
from billing_kit.scoping import CustomerScope, Mode, PageRequest

from invoicing.models import Invoice
from invoicing.repository import InvoiceFilter

MAX_CUSTOMER_IDS = 100
MAX_PAYMENT_IDS = 100
# A list over several customers reads each one's newest skip + page_size
# invoices and merges them: bounded so a deep page cannot load a whole history.
MAX_MERGED_DEPTH = 10_000


class InvoiceReader(Protocol):
    """What the read use cases need from storage."""

    async def get_invoice(self, scope: CustomerScope, invoice_id: str) -> Invoice | None: ...

    async def list_invoices(self, where: InvoiceFilter, page: PageRequest) -> list[Invoice]: ...

    async def find_for_download(
        self,
        business_id: str,
        mode: Mode,
        customer_id: str,
        *,
        invoice_id: str = "",
        payment_id: str = "",
    ) -> Invoice | None: ...


class PdfReader(Protocol):
    """Where stored PDFs are read from."""

    async def read(self, invoice_id: str) -> bytes | None: ...


@dataclass(frozen=True)
class InvoicePdf:
    """An invoice and its stored PDF (the same bytes on every download)."""

    invoice: Invoice
    content: bytes
    # Which version ``content`` is (the invoice itself is the stored record).
    version: int = 1


def _not_found() -> NotFound:
    return NotFound("invoice not found", reason=Reason.INVOICE_NOT_FOUND)


class InvoicingService:
    """Reads a customer's invoices and their PDFs; issuing lives in :mod:`invoicing.issuing`."""

    def __init__(self, repository: InvoiceReader, pdfs: PdfReader) -> None:
        self._repository = repository
        self._pdfs = pdfs

    async def get_invoice(self, scope: CustomerScope, invoice_id: str) -> Invoice:
        """The customer's invoice, or NotFound (also for another customer's id)."""
        if not invoice_id:
            raise InvalidArgument("invoice_id is required", reason=Reason.INVALID_INVOICE_ID)
        found = await self._repository.get_invoice(scope, invoice_id)
        if found is None:
            raise _not_found()
        return found

    async def list_invoices(self, where: InvoiceFilter, page: PageRequest) -> list[Invoice]:
        """One page of the customer's (or customers') invoices, newest first."""
        if len(where.customer_ids) > MAX_CUSTOMER_IDS:
            raise InvalidArgument(
                f"at most {MAX_CUSTOMER_IDS} customer_ids",
                reason=Reason.INVALID_SCOPE,
                field="customer_ids",
            )
        if len(where.payment_ids) > MAX_PAYMENT_IDS or any(
            not 0 < len(p) <= 128 for p in where.payment_ids
        ):
            raise InvalidArgument(
                f"payment_ids: at most {MAX_PAYMENT_IDS}, each 1 to 128 characters",
                reason=Reason.INVALID_ARGUMENT,
                field="payment_ids",
            )
        if len(where.customer_ids) > 1 and page.skip + page.page_size > MAX_MERGED_DEPTH:
            raise InvalidArgument(
                f"a list over several customers stops at {MAX_MERGED_DEPTH} invoices",
                reason=Reason.INVALID_PAGE,
                field="page_number",
            )
        return await self._repository.list_invoices(where, page)

    async def get_invoice_pdf(
        self,
        business_id: str,
        mode: Mode,
        customer_id: str,
        *,
        invoice_id: str,
        payment_id: str,
        version: int = 0,
    ) -> InvoicePdf:
        """The stored PDF of an invoice named by id or by payment.

        ``version`` 0 is the latest (a re-issued invoice's newest version: what
        the merchant API serves); 1 the original; no such version is NotFound.

        With ``customer_id`` another customer's invoice is NotFound (the
        portal); without it any customer of the business (the merchant API).
        NotFound ``INVOICE_PDF_NOT_READY`` while the PDF is being rendered.
        """
        if bool(invoice_id) == bool(payment_id):
            raise InvalidArgument(
                "exactly one of invoice_id and payment_id is required",
                reason=Reason.INVALID_INVOICE_ID,
                field="invoice_id",
            )
        if not 0 < len(business_id) <= 128 or len(customer_id) > 128:
            raise InvalidArgument("business_id is required", reason=Reason.INVALID_SCOPE)
        invoice = await self._repository.find_for_download(
            business_id, mode, customer_id, invoice_id=invoice_id, payment_id=payment_id
        )
        if invoice is None or version < 0:
            raise _not_found()
        wanted = version or invoice.latest_version
        try:
            pdf_id = invoice.pdf_id_of(wanted)
        except ValueError:
            raise _not_found() from None
        content = await self._pdfs.read(pdf_id) if invoice.pdf_ready else None
        if content is None:
            raise NotFound("the invoice PDF is not ready yet", reason=Reason.INVOICE_PDF_NOT_READY)
        return InvoicePdf(invoice, content, wanted)
