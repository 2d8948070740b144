"""View models of the invoice pages: payments and their invoices in, rows and details out.

Pure functions (no I/O). A history row is a *payment* (every transaction is
shown, failed ones too) joined with the invoice that documents it, when there
is one; a credit note for the payment's invoice marks the row refunded.
Amounts and dates use the helpers of :mod:`gateway.web.billing_views`, so they
read the same as on the subscription pages.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from gateway.web import billing_views as views
from gateway.web import i18n
from gateway.web.i18n import N_

# A payment's status, plus "refunded" when a credit note corrects its invoice.
_HISTORY_BADGES: dict[str, tuple[str, str]] = {
    "succeeded": (N_("Paid"), "success"),
    "failed": (N_("Failed"), "danger"),
    "processing": (N_("Processing"), "neutral"),
    "requires_customer_action": (N_("Needs your action"), "warning"),
    "cancelled": (N_("Cancelled"), "muted"),
    "refunded": (N_("Refunded"), "muted"),
}

# What may appear in a download's file name (the invoice number is ours, but a
# header must never carry a quote or a line break whatever the backend says).
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True, slots=True)
class InvoiceLinks:
    """Where a row's detail and download live on this site."""

    detail: str
    download: str


@dataclass(slots=True)
class InvoiceLineView:
    """One line of an invoice."""

    description: str
    quantity: int
    unit_amount: str
    amount: str


@dataclass(slots=True)
class HistoryRow:
    """One transaction: a payment and, when issued, its invoice."""

    payment_id: str
    date: str
    description: str
    amount: str
    status: dict[str, str]
    invoice_number: str
    has_invoice: bool
    pdf_ready: bool
    # Paid, but invoicing has not issued the invoice yet (it follows the payment event).
    invoice_pending: bool
    links: InvoiceLinks
    business: Any = None
    # The invoice's latest version (1 = never re-issued).
    version: int = 1


@dataclass(frozen=True, slots=True)
class VersionView:
    """One version of an invoice on its detail page (the latest first)."""

    version: int
    issued_on: str
    download: str
    latest: bool


@dataclass(slots=True)
class InvoiceDetail:
    """Everything the detail page shows about one payment and its invoice."""

    row: HistoryRow
    seller_name: str
    buyer_name: str
    buyer_email: str
    lines: list[InvoiceLineView] = field(default_factory=list)
    subtotal: str = ""
    tax: str = ""
    total: str = ""
    card: str = ""
    issued_on: str = ""
    paid_on: str = ""
    error: str = ""
    buyer_company: str = ""
    buyer_tax_id: str = ""
    # Every version, newest first, when the invoice was re-issued (else empty).
    versions: list[VersionView] = field(default_factory=list)
    # The customer's billing details differ from what the latest version prints.
    can_reissue: bool = False


def invoices_by_payment(invoices: Iterable[Any]) -> tuple[dict[str, Any], set[str]]:
    """(payment id → its invoice, payment ids whose invoice has a credit note)."""
    by_payment: dict[str, Any] = {}
    credited: set[str] = set()
    for invoice in invoices:
        kind = views.enum_name(invoice, "kind")
        if kind == "credit_note":
            credited.add(invoice.payment_id)
        elif invoice.payment_id and invoice.payment_id not in by_payment:
            by_payment[invoice.payment_id] = invoice
    return by_payment, credited


def _description(payment: Any, invoice: Any | None) -> str:
    if invoice is not None and invoice.description:
        return str(invoice.description)
    if payment.description:
        return str(payment.description)
    if payment.subscription_id:
        return i18n.gettext("Subscription payment")
    return i18n.gettext("Payment")


def history_row(
    payment: Any,
    invoice: Any | None,
    *,
    refunded: bool,
    links: InvoiceLinks,
    business: Any = None,
) -> HistoryRow:
    """A ``payments.v1.Payment`` (and its ``invoicing.v1.Invoice``, if any) as a row."""
    paid = views.enum_name(payment, "status") == "succeeded"
    status = "refunded" if refunded else views.enum_name(payment, "status")
    return HistoryRow(
        payment_id=payment.payment_id,
        date=views.day(views.timestamp(payment, "created_at")),
        description=_description(payment, invoice),
        amount=views.money(payment.total_amount, payment.currency),
        status=views.badge(status, _HISTORY_BADGES),
        invoice_number=invoice.number if invoice is not None else "",
        has_invoice=invoice is not None,
        pdf_ready=bool(invoice is not None and invoice.pdf_ready),
        invoice_pending=paid and invoice is None,
        links=links,
        business=business,
        version=int(invoice.version or 1) if invoice is not None else 1,
    )


_DETAIL_FIELDS = ("country", "city", "state", "street", "zipcode", "tax_id", "business_name")


def details_differ(billing_details: Any | None, invoice: Any) -> bool:
    """Whether the customer's billing details (auth's, when set) are not what the invoice
    prints: the field-by-field comparison that offers a re-issue. Invoicing decides what a
    re-issue prints; this only chooses whether to show the button."""
    if billing_details is None or not billing_details.country:
        return False
    return any(
        getattr(billing_details, name) != getattr(invoice.buyer, name) for name in _DETAIL_FIELDS
    )


def version_views(invoice: Any, download: str) -> list[VersionView]:
    """The versions of a re-issued invoice, newest first, each with its own download."""
    if len(invoice.versions) < 2:
        return []
    latest = max(int(v.version) for v in invoice.versions)
    return [
        VersionView(
            version=int(v.version),
            issued_on=views.day(views.timestamp(v, "issued_at")),
            download=f"{download}?version={int(v.version)}",
            latest=int(v.version) == latest,
        )
        for v in sorted(invoice.versions, key=lambda v: -int(v.version))
    ]


def invoice_detail(
    payment: Any,
    invoice: Any | None,
    *,
    refunded: bool,
    links: InvoiceLinks,
    business: Any,
    billing_details: Any | None = None,
) -> InvoiceDetail:
    """The detail page of one payment: its invoice's parties, lines and totals when issued.

    ``billing_details`` (the customer's, from auth) decide whether a re-issue is offered.
    """
    row = history_row(payment, invoice, refunded=refunded, links=links, business=business)
    card = views.card_label(payment.card_brand, payment.card_last_four)
    error = views.decline_message(payment) if views.enum_name(payment, "status") == "failed" else ""
    if invoice is None:
        return InvoiceDetail(
            row=row,
            seller_name=business.name,
            buyer_name="",
            buyer_email="",
            total=row.amount,
            card=card,
            error=error,
        )
    currency = invoice.currency
    lines = [
        InvoiceLineView(
            description=line.description,
            quantity=int(line.quantity),
            unit_amount=views.money(line.unit_amount, currency),
            amount=views.money(line.amount, currency),
        )
        for line in invoice.lines
    ]
    if invoice.payment_method_last4:
        card = views.card_label(invoice.payment_method_brand, invoice.payment_method_last4)
    return InvoiceDetail(
        row=row,
        seller_name=invoice.seller_name or business.name,
        buyer_name=invoice.buyer_name,
        buyer_email=invoice.buyer_email,
        lines=lines,
        subtotal=views.money(invoice.subtotal, currency),
        tax=views.money(invoice.tax, currency),
        total=views.money(invoice.total, currency),
        card=card,
        issued_on=views.day(views.timestamp(invoice, "issued_at")),
        paid_on=views.day(views.timestamp(invoice, "paid_at")),
        error=error,
        buyer_company=invoice.buyer.business_name,
        buyer_tax_id=invoice.buyer.tax_id,
        versions=version_views(invoice, links.download),
        can_reissue=bool(
            invoice.pdf_ready
            and views.enum_name(invoice, "kind") == "invoice"
            and details_differ(billing_details, invoice)
        ),
    )


def pdf_filename(invoice: Any) -> str:
    """``invoice-<number>.pdf`` (or the backend's own name), safe inside a header."""
    suggested = _UNSAFE_FILENAME.sub("-", invoice.pdf_filename or "").strip("-.")
    if suggested.endswith(".pdf") and len(suggested) > len(".pdf"):
        return suggested
    number = _UNSAFE_FILENAME.sub("-", invoice.number or invoice.invoice_id).strip("-.")
    return f"invoice-{number or 'document'}.pdf"
