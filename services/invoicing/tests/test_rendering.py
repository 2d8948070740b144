"""Unit tests for what an invoice says: locale formatting, the event payload rules, the PDF."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import pytest
from billing_kit.events import CloudEvent
from invoicing.issuing import InvalidPaymentEvent, invoice_for, invoice_id_of, parse_payment
from invoicing.models import Buyer, InvoiceLine, Seller
from invoicing.parties import choose_locale
from invoicing.pdf import format_address, format_amount, format_day, render_invoice_pdf
from pypdf import PdfReader

PAID = datetime(2026, 12, 7, 9, 58, tzinfo=UTC)


def payment_data(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "payment_id": "pay_1",
        "business_id": "bus_1",
        "mode": "test",
        "customer_id": "cus_1",
        "subscription_id": "sub_1",
        "total_amount": 35620,
        "currency": "EUR",
        "status": "succeeded",
        "charge_type": "renewal",
        "payment_method_id": "pm_1",
        "card_brand": "visa",
        "card_last_four": "4242",
        "idempotency_key": "k",
        "description": "Pro plan",
        "metadata": {},
        "created_at": PAID.isoformat(),
        "updated_at": PAID.isoformat(),
    }
    data.update(changes)
    return data


def event(data: dict[str, Any]) -> CloudEvent:
    return CloudEvent(id="evt_1", source="payments", type="payment.succeeded", time=PAID, data=data)


class TestFormatting:
    @pytest.mark.parametrize(
        ("amount", "currency", "locale", "expected"),
        [
            (35620, "EUR", "it", "356,20 €"),
            (35620, "EUR", "en", "€356.20"),
            (123456, "USD", "en", "$1,234.56"),
            (123456, "USD", "it", "1.234,56 USD"),
            (500, "JPY", "en", "¥500"),  # no minor units
            (35620, "EUR", "it-IT", "356,20 €"),
            (35620, "EUR", "fr", "€356.20"),  # not written in French yet: English
        ],
    )
    def test_amounts_follow_the_locale(
        self, amount: int, currency: str, locale: str, expected: str
    ) -> None:
        assert format_amount(amount, currency, locale) == expected

    def test_dates_follow_the_locale(self) -> None:
        assert format_day(PAID, "it") == "7 dicembre 2026"
        assert format_day(PAID, "en") == "December 7, 2026"

    @pytest.mark.parametrize(
        ("customer", "business", "expected"),
        [
            ("it", "en", "it"),
            ("", "it", "it"),
            ("fr", "it", "it"),
            ("fr", "de", "en"),
            ("", "", "en"),
        ],
    )
    def test_the_customers_language_wins_when_invoices_speak_it(
        self, customer: str, business: str, expected: str
    ) -> None:
        assert choose_locale(customer, business) == expected


class TestPaymentEvent:
    def test_a_succeeded_payment_becomes_one_line_with_zero_tax(self) -> None:
        invoice = invoice_for(parse_payment(event(payment_data())), 42)
        assert invoice.number == "INV-000042"
        assert invoice.invoice_id == invoice_id_of("bus_1", "test", "pay_1")
        assert [(line.description, line.quantity, line.amount) for line in invoice.lines] == [
            ("Pro plan", 1, 35620)
        ]
        assert (invoice.subtotal, invoice.tax, invoice.total) == (35620, 0, 35620)
        assert (invoice.payment_method_brand, invoice.payment_method_last4) == ("visa", "4242")
        assert invoice.paid_at == PAID
        assert invoice.pdf_filename == "invoice-INV-000042.pdf"

    def test_each_cart_line_becomes_an_invoice_line_and_tax_is_the_payments(self) -> None:
        lines = [
            {"product_id": "pdt_a", "product_name": "Pro", "quantity": 1, "unit_amount": 30000},
            {"product_id": "pdt_b", "product_name": "", "quantity": 2, "unit_amount": 1810},
        ]
        invoice = invoice_for(
            parse_payment(event(payment_data(lines=lines, tax=2000, tax_id="IT1"))), 1
        )
        assert [(x.description, x.quantity, x.unit_amount, x.amount) for x in invoice.lines] == [
            ("Pro", 1, 30000, 30000),
            ("pdt_b", 2, 1810, 3620),  # no name given: the product id
        ]
        assert (invoice.subtotal, invoice.tax, invoice.total) == (33620, 2000, 35620)
        assert invoice.buyer_tax_id == "IT1"

    def test_lines_that_do_not_add_up_fall_back_to_one_line(self) -> None:
        lines = [{"product_id": "pdt_a", "product_name": "Pro", "quantity": 1, "unit_amount": 1}]
        invoice = invoice_for(parse_payment(event(payment_data(lines=lines))), 1)
        assert [(x.description, x.amount) for x in invoice.lines] == [("Pro plan", 35620)]
        assert (invoice.subtotal, invoice.tax, invoice.total) == (35620, 0, 35620)

    def test_the_billing_address_is_written_in_the_invoices_language(self) -> None:
        billing = parse_payment(
            event(payment_data(billing={"country": "DE", "city": "Berlin", "zipcode": "10115"}))
        ).billing
        assert format_address(billing, "it") == "10115 Berlin\nGermania"
        assert format_address(billing, "en") == "10115 Berlin\nGermany"
        assert format_address(None, "en") == ""

    @pytest.mark.parametrize(
        "changes",
        [
            {"customer_id": ""},
            {"total_amount": -1},
            {"currency": "euro"},
            {"status": "failed"},
            {"mode": "staging"},
            {"updated_at": "yesterday"},
            {"lines": [{"product_id": "pdt_a", "quantity": 0, "unit_amount": 1}]},
            {"billing": {"country": "Italy"}},
        ],
        ids=["customer", "amount", "currency", "status", "mode", "time", "lines", "billing"],
    )
    def test_a_bad_payload_is_refused_naming_the_field(self, changes: dict[str, Any]) -> None:
        with pytest.raises(InvalidPaymentEvent) as err:
            parse_payment(event(payment_data(**changes)))
        assert next(iter(changes)) in str(err.value)

    def test_a_missing_field_is_refused(self) -> None:
        data = payment_data()
        del data["payment_id"]
        with pytest.raises(InvalidPaymentEvent, match="payment_id"):
            parse_payment(event(data))


class TestPdf:
    def _finished(self, locale: str) -> Any:
        invoice = invoice_for(parse_payment(event(payment_data())), 7)
        return invoice.model_copy(
            update={
                "seller": Seller(
                    name="Pizzeria da Mario",
                    address="Via Roma 1\n20121 Milano",
                    tax_id="IT01234567890",
                    support_email="aiuto@mario.example.com",
                    accent_color="#C0392B",
                ),
                "buyer": Buyer(name="Ada Lovelace", email="ada@example.com"),
                "locale": locale,
            }
        )

    def test_italian_invoice_text(self) -> None:
        content = render_invoice_pdf(self._finished("it"))
        text = PdfReader(io.BytesIO(content)).pages[0].extract_text()
        for expected in (
            "Fattura",
            "Pizzeria da Mario",
            "IT01234567890",
            "Ada Lovelace",
            "INV-000007",
            "356,20 €",
            "7 dicembre 2026",
            "Visa che termina con 4242",
        ):
            assert expected in text

    def test_english_invoice_text(self) -> None:
        text = (
            PdfReader(io.BytesIO(render_invoice_pdf(self._finished("en")))).pages[0].extract_text()
        )
        for expected in ("Invoice", "€356.20", "December 7, 2026", "Visa ending in 4242"):
            assert expected in text

    def test_the_same_invoice_renders_to_the_same_bytes(self) -> None:
        invoice = self._finished("it")
        assert render_invoice_pdf(invoice) == render_invoice_pdf(invoice)

    def test_many_lines_continue_on_further_pages_with_the_totals_last(self) -> None:
        line = InvoiceLine(description="Add-on seat", quantity=1, unit_amount=100, amount=100)
        invoice = self._finished("en").model_copy(
            update={"lines": (line,) * 40, "subtotal": 4000, "total": 4000}
        )
        pages = PdfReader(io.BytesIO(render_invoice_pdf(invoice))).pages
        assert len(pages) == 3
        texts = [page.extract_text() for page in pages]
        assert sum(text.count("Add-on seat") for text in texts) == 40
        assert "Amount paid" in texts[-1] and "Amount paid" not in texts[0]
        assert "page 3" in texts[-1]
