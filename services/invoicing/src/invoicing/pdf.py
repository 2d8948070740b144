"""The invoice PDF: a pure, synchronous renderer (reportlab) run off the event loop.

:func:`render_invoice_pdf` takes a finished :class:`~invoicing.models.Invoice`
(seller and buyer filled) and returns the PDF's bytes. It does no I/O, so the
caller runs it in a worker thread (``asyncio.to_thread``). The output is
deterministic (reportlab's invariant mode: no creation time or random id), so
the same invoice always renders to the same bytes.

Amounts and dates are formatted for the invoice's language with Babel
(``356,20 €`` in Italian, ``€356.20`` in English).
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from babel import Locale
from babel.dates import format_date
from babel.numbers import format_currency, get_currency_precision
from reportlab.lib.colors import Color, HexColor
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen.canvas import Canvas

from invoicing.models import (
    DEFAULT_LOCALE,
    SUPPORTED_LOCALES,
    BillingAddressData,
    Invoice,
    InvoiceKind,
    InvoiceLine,
)

DEFAULT_ACCENT = "#4F46E5"
_HEX_COLOUR = re.compile(r"^#[0-9A-Fa-f]{6}$")
# Non-breaking spaces from Babel ("356,20\xa0€"): drawn as plain spaces so the
# text a reader copies (or pypdf extracts) reads "356,20 €".
_NBSP = str.maketrans({"\u00a0": " ", "\u202f": " "})

LABELS: dict[str, dict[str, str]] = {
    "en": {
        "invoice": "Invoice",
        "credit_note": "Credit note",
        "number": "Invoice number",
        "issued": "Date of issue",
        "paid_on": "Date paid",
        "from": "From",
        "bill_to": "Bill to",
        "tax_id": "Tax ID",
        "vat": "VAT",
        "version": "Version",
        "replaces": "Replaces the invoice {number} issued on {date}.",
        "description": "Description",
        "qty": "Qty",
        "unit_price": "Unit price",
        "amount": "Amount",
        "subtotal": "Subtotal",
        "tax": "Tax",
        "total": "Total",
        "amount_paid": "Amount paid",
        "paid": "PAID",
        "headline": "{amount} paid on {date}",
        "paid_with_card": "Paid on {date} with {brand} ending in {last4}.",
        "paid_plain": "Paid on {date}.",
        "questions": "Questions about this invoice? Contact {email}.",
        "page": "{number} · page {page}",
    },
    "it": {
        "invoice": "Fattura",
        "credit_note": "Nota di credito",
        "number": "Numero fattura",
        "issued": "Data di emissione",
        "paid_on": "Data di pagamento",
        "from": "Da",
        "bill_to": "Intestata a",
        "tax_id": "P. IVA / C.F.",
        "vat": "Partita IVA",
        "version": "Versione",
        "replaces": "Sostituisce la fattura {number} emessa il {date}.",
        "description": "Descrizione",
        "qty": "Qtà",
        "unit_price": "Prezzo unitario",
        "amount": "Importo",
        "subtotal": "Subtotale",
        "tax": "Imposte",
        "total": "Totale",
        "amount_paid": "Importo pagato",
        "paid": "PAGATA",
        "headline": "{amount} pagati il {date}",
        "paid_with_card": "Pagata il {date} con {brand} che termina con {last4}.",
        "paid_plain": "Pagata il {date}.",
        "questions": "Domande su questa fattura? Scrivi a {email}.",
        "page": "{number} · pagina {page}",
    },
}

# Tax ids that are VAT numbers carry their country's VAT prefix (the EU's, and the UK's).
_VAT_NUMBER = re.compile(
    r"^(AT|BE|BG|CY|CZ|DE|DK|EE|EL|ES|FI|FR|HR|HU|IE|IT|LT|LU|LV|MT|NL|PL|PT|RO|SE|SI|SK|XI|GB)"
    r"[0-9A-Z]{2,13}$"
)

_BRANDS = {"visa": "Visa", "mastercard": "Mastercard", "amex": "American Express"}

PAGE_WIDTH, PAGE_HEIGHT = A4
MARGIN = 48.0
INK = HexColor("#1F2937")
MUTED = HexColor("#6B7280")
RULE = HexColor("#E5E7EB")
LINES_PER_PAGE = 18


def language_of(locale: str) -> str:
    """The supported language closest to ``locale`` (``it-IT`` -> ``it``; unknown -> ``en``)."""
    base = locale.replace("_", "-").split("-")[0].lower()
    return base if base in SUPPORTED_LOCALES else DEFAULT_LOCALE


def format_amount(amount: int, currency: str, locale: str) -> str:
    """Minor units as the locale writes money: ``356,20 €`` (it), ``€356.20`` (en)."""
    digits = get_currency_precision(currency)
    value = Decimal(amount).scaleb(-digits)
    return format_currency(value, currency, locale=language_of(locale)).translate(_NBSP)


def format_day(moment: datetime, locale: str) -> str:
    """A date as the locale writes it in full: ``7 dicembre 2026`` / ``December 7, 2026``."""
    return format_date(moment.date(), format="long", locale=language_of(locale)).translate(_NBSP)


def format_address(billing: BillingAddressData | None, locale: str) -> str:
    """A billing address as printed lines: street, ``zipcode city``, state, the country's name.

    The country is named in the invoice's language (``IT`` -> ``Italia`` / ``Italy``).
    """
    if billing is None:
        return ""
    country = Locale.parse(language_of(locale)).territories.get(billing.country, billing.country)
    place = " ".join(part for part in (billing.zipcode, billing.city) if part)
    parts = (billing.street, place, billing.state, country)
    return "\n".join(part.strip() for part in parts if part and part.strip())


def accent_of(colour: str) -> Color:
    """The business's accent colour, or the default when it has none (or a malformed one)."""
    return HexColor(colour if _HEX_COLOUR.match(colour) else DEFAULT_ACCENT)


def _tint(colour: Color, amount: float) -> Color:
    """``colour`` mixed with white (``amount`` 0..1 of the colour kept)."""
    return Color(
        1 - (1 - colour.red) * amount,
        1 - (1 - colour.green) * amount,
        1 - (1 - colour.blue) * amount,
    )


def render_invoice_pdf(invoice: Invoice) -> bytes:
    """The invoice as a one-or-more page A4 PDF, in the invoice's language.

    Pure and blocking (CPU only): call it through ``asyncio.to_thread``.
    """
    lang = language_of(invoice.locale)
    text = LABELS[lang]
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=A4, invariant=True, pageCompression=1)
    title_key = "credit_note" if invoice.kind is InvoiceKind.CREDIT_NOTE else "invoice"
    seller = invoice.seller
    canvas.setTitle(f"{text[title_key]} {invoice.number}")
    canvas.setAuthor(seller.name if seller else "")
    canvas.setSubject(invoice.number)
    accent = accent_of(seller.accent_color if seller else "")
    pages = [
        invoice.lines[start : start + LINES_PER_PAGE]
        for start in range(0, max(len(invoice.lines), 1), LINES_PER_PAGE)
    ]
    for index, lines in enumerate(pages):
        last = index == len(pages) - 1
        _page(canvas, invoice, text, lang, accent, lines, index + 1, last=last)
        canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def _page(
    canvas: Canvas,
    invoice: Invoice,
    text: dict[str, str],
    lang: str,
    accent: Color,
    lines: Sequence[InvoiceLine],
    page_number: int,
    *,
    last: bool,
) -> None:
    seller, buyer = invoice.seller, invoice.buyer
    left, right = MARGIN, PAGE_WIDTH - MARGIN
    # A band of the brand's colour across the top.
    canvas.setFillColor(accent)
    canvas.rect(0, PAGE_HEIGHT - 10, PAGE_WIDTH, 10, stroke=0, fill=1)

    # Header: business name (the brand) left, document title and number right.
    top = PAGE_HEIGHT - 64
    canvas.setFillColor(accent)
    canvas.setFont("Helvetica-Bold", 20)
    canvas.drawString(left, top, _fit(canvas, seller.name if seller else "", 300, 20, bold=True))
    title_key = "credit_note" if invoice.kind is InvoiceKind.CREDIT_NOTE else "invoice"
    canvas.setFillColor(INK)
    canvas.setFont("Helvetica-Bold", 24)
    canvas.drawRightString(right, top, text[title_key])

    # Number and dates, right column under the title.
    y = top - 28
    facts = [
        (text["number"], invoice.number),
        (text["issued"], format_day(invoice.issued_at, lang)),
    ]
    if invoice.paid_at is not None:
        facts.append((text["paid_on"], format_day(invoice.paid_at, lang)))
    if invoice.version > 1:
        facts.insert(1, (text["version"], str(invoice.version)))
    for label, value in facts:
        canvas.setFont("Helvetica", 9)
        canvas.setFillColor(MUTED)
        canvas.drawRightString(right - 120, y, label)
        canvas.setFont("Helvetica-Bold", 9.5)
        canvas.setFillColor(INK)
        canvas.drawRightString(right, y, value)
        y -= 15

    # Seller (From) and buyer (Bill to) blocks side by side.
    blocks_top = top - 110
    seller_lines = _party_lines(
        seller.name if seller else "",
        seller.address if seller else "",
        seller.tax_id if seller else "",
        seller.support_email if seller else "",
        text,
    )
    buyer_lines = _party_lines(
        buyer.name if buyer else "",
        buyer.address if buyer else "",
        buyer.tax_id if buyer else "",
        buyer.email if buyer else "",
        text,
        company=buyer.business_name if buyer else "",
        tax_label=text["vat"] if buyer and _VAT_NUMBER.match(buyer.tax_id) else text["tax_id"],
    )
    bottom_a = _block(canvas, left, blocks_top, text["from"], seller_lines, accent)
    bottom_b = _block(canvas, left + 260, blocks_top, text["bill_to"], buyer_lines, accent)
    y = min(bottom_a, bottom_b) - 14
    if invoice.replaces_issued_at is not None:
        # A re-issued version says which document it replaces.
        canvas.setFont("Helvetica-Bold", 10)
        canvas.setFillColor(accent)
        replaced = text["replaces"].format(
            number=invoice.number, date=format_day(invoice.replaces_issued_at, lang)
        )
        canvas.drawString(left, y, replaced)
        y -= 22
    # The sentence a reader looks for first, as on a receipt: how much, when.
    if page_number == 1:
        canvas.setFont("Helvetica-Bold", 15)
        canvas.setFillColor(INK)
        headline = text["headline"].format(
            amount=format_amount(invoice.total, invoice.currency, lang),
            date=format_day(invoice.paid_at or invoice.issued_at, lang),
        )
        canvas.drawString(left, y, headline)
        y -= 34
    else:
        y -= 14

    # Lines table.
    cols = (left + 8, right - 230, right - 120, right - 8)
    canvas.setFillColor(_tint(accent, 0.12))
    canvas.rect(left, y - 7, right - left, 22, stroke=0, fill=1)
    canvas.setFillColor(INK)
    canvas.setFont("Helvetica-Bold", 9)
    canvas.drawString(cols[0], y, text["description"])
    canvas.drawRightString(cols[1], y, text["qty"])
    canvas.drawRightString(cols[2], y, text["unit_price"])
    canvas.drawRightString(cols[3], y, text["amount"])
    y -= 26
    canvas.setFont("Helvetica", 10)
    for line in lines:
        canvas.setFillColor(INK)
        canvas.drawString(cols[0], y, _fit(canvas, line.description, cols[1] - cols[0] - 60, 10))
        canvas.drawRightString(cols[1], y, str(line.quantity))
        canvas.drawRightString(cols[2], y, format_amount(line.unit_amount, invoice.currency, lang))
        canvas.drawRightString(cols[3], y, format_amount(line.amount, invoice.currency, lang))
        y -= 10
        canvas.setStrokeColor(RULE)
        canvas.setLineWidth(0.6)
        canvas.line(left, y, right, y)
        y -= 16

    if last:
        y = _totals(canvas, invoice, text, lang, accent, y - 6)
        _paid_with(canvas, invoice, text, lang, left, y - 30)

    # Footer: who to ask, and which document this page belongs to.
    canvas.setStrokeColor(RULE)
    canvas.line(left, 64, right, 64)
    canvas.setFont("Helvetica", 8.5)
    canvas.setFillColor(MUTED)
    if seller and seller.support_email:
        canvas.drawString(left, 48, text["questions"].format(email=seller.support_email))
    shown = invoice.number if invoice.version == 1 else f"{invoice.number} (v{invoice.version})"
    canvas.drawRightString(right, 48, text["page"].format(number=shown, page=page_number))


def _party_lines(
    name: str,
    address: str,
    tax_id: str,
    contact: str,
    text: dict[str, str],
    *,
    company: str = "",
    tax_label: str = "",
) -> list[str]:
    lines = [company] if company else []
    lines += [name] if name else []
    lines += [part.strip() for part in address.splitlines() if part.strip()]
    if tax_id:
        lines.append(f"{tax_label or text['tax_id']}: {tax_id}")
    if contact:
        lines.append(contact)
    return lines


def _block(
    canvas: Canvas, x: float, y: float, label: str, lines: list[str], accent: Color
) -> float:
    """A labelled block of text lines; returns the y below it."""
    canvas.setFont("Helvetica-Bold", 8)
    canvas.setFillColor(accent)
    canvas.drawString(x, y, label.upper())
    y -= 16
    for index, line in enumerate(lines):
        bold = index == 0
        canvas.setFont("Helvetica-Bold" if bold else "Helvetica", 10.5 if bold else 9.5)
        canvas.setFillColor(INK if bold else MUTED)
        canvas.drawString(x, y, _fit(canvas, line, 230, 10.5 if bold else 9.5, bold=bold))
        y -= 14
    return y


def _totals(
    canvas: Canvas, invoice: Invoice, text: dict[str, str], lang: str, accent: Color, y: float
) -> float:
    """Subtotal, tax, total and amount paid, right-aligned; returns the y below them."""
    right = PAGE_WIDTH - MARGIN
    label_x = right - 130
    rows = [
        (text["subtotal"], invoice.subtotal, False),
        (text["tax"], invoice.tax, False),
        (text["total"], invoice.total, True),
    ]
    for label, amount, strong in rows:
        canvas.setFont("Helvetica-Bold" if strong else "Helvetica", 10.5 if strong else 10)
        canvas.setFillColor(INK if strong else MUTED)
        canvas.drawRightString(label_x, y, label)
        canvas.setFillColor(INK)
        canvas.drawRightString(right - 8, y, format_amount(amount, invoice.currency, lang))
        y -= 18
    # Amount paid, on the brand's tint: the figure a reader looks for.
    canvas.setFillColor(_tint(accent, 0.12))
    canvas.rect(label_x - 110, y - 8, right - label_x + 110, 24, stroke=0, fill=1)
    canvas.setFillColor(accent)
    canvas.setFont("Helvetica-Bold", 11)
    canvas.drawRightString(label_x, y, text["amount_paid"])
    canvas.drawRightString(right - 8, y, format_amount(invoice.total, invoice.currency, lang))
    return y - 8


def _paid_with(
    canvas: Canvas, invoice: Invoice, text: dict[str, str], lang: str, x: float, y: float
) -> None:
    """A "PAID" badge and how it was paid (card brand and last four digits)."""
    canvas.setFillColor(HexColor("#DCFCE7"))
    canvas.roundRect(x, y - 5, 52, 18, 4, stroke=0, fill=1)
    canvas.setFillColor(HexColor("#166534"))
    canvas.setFont("Helvetica-Bold", 9)
    canvas.drawCentredString(x + 26, y, text["paid"])
    when = invoice.paid_at or invoice.issued_at
    if invoice.payment_method_last4:
        brand = invoice.payment_method_brand
        sentence = text["paid_with_card"].format(
            date=format_day(when, lang),
            brand=_BRANDS.get(brand.lower(), brand.title() or "Card"),
            last4=invoice.payment_method_last4,
        )
    else:
        sentence = text["paid_plain"].format(date=format_day(when, lang))
    canvas.setFillColor(INK)
    canvas.setFont("Helvetica", 10)
    canvas.drawString(x + 62, y, sentence)


def _fit(canvas: Canvas, value: str, width: float, size: float, *, bold: bool = False) -> str:
    """``value`` cut with an ellipsis so it fits ``width`` points (names can be long)."""
    font = "Helvetica-Bold" if bold else "Helvetica"
    if canvas.stringWidth(value, font, size) <= width:
        return value
    while value and canvas.stringWidth(value + "…", font, size) > width:
        value = value[:-1]
    return value + "…"
