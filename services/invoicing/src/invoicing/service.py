"""Use cases of the invoicing service: pure logic over the repository."""

from __future__ import annotations

from typing import Protocol

from billing_kit.errors import InvalidArgument, NotFound
from pydantic import ValidationError

from invoicing.models import CustomerScope, Invoice, PageRequest


class InvoiceReader(Protocol):
    """What the use cases need from storage."""

    async def get_invoice(self, scope: CustomerScope, invoice_id: str) -> Invoice | None: ...

    async def list_invoices(self, scope: CustomerScope, page: PageRequest) -> list[Invoice]: ...


def _explain(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())


def make_scope(business_id: str, mode: str, customer_id: str) -> CustomerScope:
    """Validate who is asking; a missing part is a clear InvalidArgument."""
    try:
        return CustomerScope(business_id=business_id, mode=mode, customer_id=customer_id)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise InvalidArgument(_explain(exc), reason="INVALID_SCOPE") from None


def make_page(page_size: int, page_number: int) -> PageRequest:
    """Page bounds: size 0 means the default, otherwise 1..100; number is zero-based."""
    try:
        if page_size == 0:
            return PageRequest(page_number=page_number)
        return PageRequest(page_size=page_size, page_number=page_number)
    except ValidationError as exc:
        raise InvalidArgument(_explain(exc), reason="INVALID_PAGE") from None


class InvoicingService:
    """Reads a customer's invoices; later issues add issuing, numbering and PDFs."""

    def __init__(self, repository: InvoiceReader) -> None:
        self._repository = repository

    async def get_invoice(self, scope: CustomerScope, invoice_id: str) -> Invoice:
        """The customer's invoice, or NotFound (also for another customer's id)."""
        if not invoice_id:
            raise InvalidArgument("invoice_id is required", reason="INVALID_INVOICE_ID")
        found = await self._repository.get_invoice(scope, invoice_id)
        if found is None:
            raise NotFound("invoice not found", reason="INVOICE_NOT_FOUND")
        return found

    async def list_invoices(self, scope: CustomerScope, page: PageRequest) -> list[Invoice]:
        """One page of the customer's invoices, newest first."""
        return await self._repository.list_invoices(scope, page)
