"""Use cases of the invoicing service: pure logic over the repository."""

from __future__ import annotations

from typing import Protocol

from billing_kit.errors import InvalidArgument, NotFound, Reason
from billing_kit.scoping import CustomerScope, PageRequest

from invoicing.models import Invoice


class InvoiceReader(Protocol):
    """What the use cases need from storage."""

    async def get_invoice(self, scope: CustomerScope, invoice_id: str) -> Invoice | None: ...

    async def list_invoices(self, scope: CustomerScope, page: PageRequest) -> list[Invoice]: ...


class InvoicingService:
    """Reads a customer's invoices; later issues add issuing, numbering and PDFs."""

    def __init__(self, repository: InvoiceReader) -> None:
        self._repository = repository

    async def get_invoice(self, scope: CustomerScope, invoice_id: str) -> Invoice:
        """The customer's invoice, or NotFound (also for another customer's id)."""
        if not invoice_id:
            raise InvalidArgument("invoice_id is required", reason=Reason.INVALID_INVOICE_ID)
        found = await self._repository.get_invoice(scope, invoice_id)
        if found is None:
            raise NotFound("invoice not found", reason=Reason.INVOICE_NOT_FOUND)
        return found

    async def list_invoices(self, scope: CustomerScope, page: PageRequest) -> list[Invoice]:
        """One page of the customer's invoices, newest first."""
        return await self._repository.list_invoices(scope, page)
