"""The only module that touches the invoicing database."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from billing_kit.scoping import (
    CustomerScope,
    PageRequest,
    customer_newest_first_index,
    newest_first,
)
from pymongo import IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from invoicing.models import Invoice

INVOICES = "invoices"

INDEXES: Mapping[str, Sequence[IndexModel]] = {
    INVOICES: [
        customer_newest_first_index("issued_at"),
        # Invoice numbers are unique per business and mode (gapless numbering comes later).
        IndexModel(
            [("business_id", 1), ("mode", 1), ("number", 1)],
            name="number_unique_per_business",
            unique=True,
        ),
    ],
}


def invoice_to_document(invoice: Invoice) -> dict[str, Any]:
    """The stored shape: the invoice id is the document ``_id``."""
    doc: dict[str, Any] = invoice.model_dump(mode="python")
    doc["_id"] = doc.pop("invoice_id")
    return doc


def _from_document(doc: Mapping[str, Any]) -> Invoice:
    # Later issues store more (e.g. the PDF's GridFS id); the read model takes only its fields.
    fields = {k: doc[k] for k in Invoice.model_fields if k in doc}
    return Invoice.model_validate({**fields, "invoice_id": doc["_id"]})


class InvoicingRepository:
    """Reads (and, for now, test seeding) of the ``invoices`` collection."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._invoices = db[INVOICES]

    async def insert(self, invoice: Invoice) -> None:
        """Store an issued invoice (used by tests until issuing exists)."""
        await self._invoices.insert_one(invoice_to_document(invoice))

    async def get_invoice(self, scope: CustomerScope, invoice_id: str) -> Invoice | None:
        """The invoice if it belongs to ``scope``; another customer's is simply absent."""
        doc = await self._invoices.find_one({"_id": invoice_id, **scope.as_filter()})
        return _from_document(doc) if doc else None

    async def list_invoices(self, scope: CustomerScope, page: PageRequest) -> list[Invoice]:
        """One page of the customer's invoices, newest first."""
        cursor = (
            self._invoices.find(scope.as_filter())
            .sort(newest_first("issued_at"))
            .skip(page.skip)
            .limit(page.page_size)
        )
        return [_from_document(doc) async for doc in cursor]
