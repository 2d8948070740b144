"""Unit tests for the invoicing read rules: scope, page bounds, scoped lookup."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from billing_kit.errors import InvalidArgument, NotFound, Reason
from billing_kit.scoping import CustomerScope, PageRequest, make_scope
from invoicing.models import Invoice
from invoicing.service import InvoicingService
from invoicing.servicer import invoice_to_proto

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _invoice(iid: str, customer_id: str = "cus_1", **changes: object) -> Invoice:
    fields: dict[str, object] = {
        "invoice_id": iid,
        "number": "INV-000001",
        "business_id": "bus_1",
        "mode": "live",
        "customer_id": customer_id,
        "payment_id": "pay_1",
        "total": 1220,
        "currency": "EUR",
        "issued_at": NOW,
    }
    fields.update(changes)
    return Invoice.model_validate(fields)


class InMemoryReader:
    """A stand-in for the repository that finds by id only.

    Scoping (another customer's, business's or mode's invoice is not found) is
    the real repository's job; test_integration.py checks it against the database.
    """

    def __init__(self, *invoices: Invoice) -> None:
        self.invoices = list(invoices)

    async def get_invoice(self, scope: CustomerScope, iid: str) -> Invoice | None:
        return next((i for i in self.invoices if i.invoice_id == iid), None)

    async def list_invoices(self, scope: CustomerScope, page: PageRequest) -> list[Invoice]:
        return []


class TestGetInvoice:
    async def test_an_invoice_the_repository_does_not_find_is_not_found(self) -> None:
        service = InvoicingService(InMemoryReader(_invoice("inv_1")))
        with pytest.raises(NotFound) as err:
            await service.get_invoice(make_scope("bus_1", "live", "cus_1"), "inv_2")
        assert err.value.reason is Reason.INVOICE_NOT_FOUND

    async def test_own_invoice_is_returned_on_the_wire(self) -> None:
        service = InvoicingService(InMemoryReader(_invoice("inv_1")))
        found = await service.get_invoice(make_scope("bus_1", "live", "cus_1"), "inv_1")
        message = invoice_to_proto(found)
        assert (message.number, message.total, message.currency) == ("INV-000001", 1220, "EUR")
        assert message.issued_at.ToDatetime(tzinfo=UTC) == NOW


class TestInvoiceModel:
    def test_negative_total_is_rejected(self) -> None:
        with pytest.raises(ValueError):
            _invoice("inv_1", total=-1)

    def test_bad_mode_is_invalid_argument(self) -> None:
        with pytest.raises(InvalidArgument) as err:
            make_scope("bus_1", "staging", "cus_1")
        assert "mode" in err.value.message
