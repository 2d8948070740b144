"""Unit tests for the invoicing read rules: scope, page bounds, scoped lookup."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from billing_kit.errors import InvalidArgument, NotFound, Reason
from billing_kit.scoping import CustomerScope, Mode, PageRequest, make_scope
from invoicing.models import Invoice
from invoicing.repository import InvoiceFilter
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

    async def list_invoices(self, where: InvoiceFilter, page: PageRequest) -> list[Invoice]:
        return []

    async def find_for_download(
        self,
        business_id: str,
        mode: Mode,
        customer_id: str,
        *,
        invoice_id: str = "",
        payment_id: str = "",
    ) -> Invoice | None:
        return next((i for i in self.invoices if invoice_id in ("", i.invoice_id)), None)


class StoredPdfs:
    def __init__(self, **contents: bytes) -> None:
        self.contents = contents

    async def read(self, invoice_id: str) -> bytes | None:
        return self.contents.get(invoice_id)


class TestGetInvoice:
    async def test_an_invoice_the_repository_does_not_find_is_not_found(self) -> None:
        service = InvoicingService(InMemoryReader(_invoice("inv_1")), StoredPdfs())
        with pytest.raises(NotFound) as err:
            await service.get_invoice(make_scope("bus_1", "live", "cus_1"), "inv_2")
        assert err.value.reason is Reason.INVOICE_NOT_FOUND

    async def test_own_invoice_is_returned_on_the_wire(self) -> None:
        service = InvoicingService(InMemoryReader(_invoice("inv_1")), StoredPdfs())
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


class TestGetInvoicePdf:
    async def test_a_pdf_not_stored_yet_is_not_ready(self) -> None:
        service = InvoicingService(InMemoryReader(_invoice("inv_1")), StoredPdfs())
        with pytest.raises(NotFound) as err:
            await service.get_invoice_pdf(
                "bus_1", "live", "cus_1", invoice_id="inv_1", payment_id=""
            )
        assert err.value.reason is Reason.INVOICE_PDF_NOT_READY

    async def test_the_stored_bytes_are_returned(self) -> None:
        reader = InMemoryReader(_invoice("inv_1", pdf_ready=True))
        service = InvoicingService(reader, StoredPdfs(inv_1=b"%PDF-1.4 x"))
        found = await service.get_invoice_pdf(
            "bus_1", "live", "cus_1", invoice_id="inv_1", payment_id=""
        )
        assert found.content == b"%PDF-1.4 x"

    @pytest.mark.parametrize(("invoice_id", "payment_id"), [("", ""), ("inv_1", "pay_1")])
    async def test_exactly_one_of_invoice_and_payment(
        self, invoice_id: str, payment_id: str
    ) -> None:
        service = InvoicingService(InMemoryReader(_invoice("inv_1")), StoredPdfs())
        with pytest.raises(InvalidArgument):
            await service.get_invoice_pdf(
                "bus_1", "live", "", invoice_id=invoice_id, payment_id=payment_id
            )


class TestListInvoices:
    async def test_a_merged_list_refuses_pages_deeper_than_its_bound(self) -> None:
        service = InvoicingService(InMemoryReader(), StoredPdfs())
        where = InvoiceFilter("", "test", ["cus_1", "cus_2"])
        with pytest.raises(InvalidArgument) as err:
            await service.list_invoices(where, PageRequest(page_size=100, page_number=100))
        assert err.value.reason is Reason.INVALID_PAGE
        # One customer pages by position at any depth.
        one = InvoiceFilter("bus_1", "test", ["cus_1"])
        assert await service.list_invoices(one, PageRequest(page_size=100, page_number=100)) == []

    async def test_too_many_payment_ids_are_refused(self) -> None:
        service = InvoicingService(InMemoryReader(), StoredPdfs())
        where = InvoiceFilter("bus_1", "test", ["cus_1"], [f"pay_{n}" for n in range(101)])
        with pytest.raises(InvalidArgument) as err:
            await service.list_invoices(where, PageRequest())
        assert err.value.field == "payment_ids"
