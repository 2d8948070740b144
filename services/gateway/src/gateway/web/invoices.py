"""Invoice history: every transaction of one customer, its detail, and the invoice PDF.

A history page costs two backend questions: one page of the customer's
payments (newest first, index-backed in payments), then the invoices of
exactly those payments in ONE ``ListInvoices(payment_ids=…)``. The detail
page asks for the payment and its invoices concurrently. Every request is
scoped to the account's business, mode and customer (see
:mod:`gateway.web.billing_scope`), so another customer's payment id is
NOT_FOUND in the service and the same 404 page here; the download asks
invoicing for the PDF *with* the customer id for the same reason.

The same handlers serve the business portal (``/b/{id}/invoices``) and the
unified portal's per-business pages (``/all/b/{id}/invoices``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from aiohttp import web
from billing.auth.v1 import auth_pb2
from billing.invoicing.v1 import invoicing_pb2
from billing.payments.v1 import payments_pb2

from gateway.keys import AUTH_STUB, INVOICING_STUB, PAYMENTS_STUB
from gateway.web import invoice_views as views
from gateway.web.billing_forms import valid_id
from gateway.web.billing_scope import Account
from gateway.web.rendering import render, site_of
from gateway.web.security import apply_page_headers

PAGE_SIZE = 20
# The payments service refuses a page number past this (it bounds the skip).
MAX_PAGE = 10_000


def page_number_of(request: web.Request) -> int:
    """The 1-based ``?page=``; a malformed or out-of-range one is a 404 like any bad URL."""
    raw = request.query.get("page", "1")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise web.HTTPNotFound()
    return int(raw)


def payment_id_of(request: web.Request) -> str:
    """The URL's payment id; a malformed one is a 404 like an unknown one."""
    payment_id = request.match_info["payment_id"]
    if not valid_id(payment_id):
        raise web.HTTPNotFound()
    return payment_id


def version_of(request: web.Request) -> int:
    """The ``?version=`` of a download (0, the latest, when absent); a bad one is a 404."""
    raw = request.query.get("version", "0")
    if not raw.isdigit() or len(raw) > 4:
        raise web.HTTPNotFound()
    return int(raw)


def invoice_links(site_path: str, payment_id: str) -> views.InvoiceLinks:
    """Detail and download of one payment under ``site_path`` (``…/b/{business_id}/``)."""
    base = f"{site_path}invoices/{payment_id}"
    return views.InvoiceLinks(detail=base, download=f"{base}/pdf")


async def invoices_of(
    request: web.Request, payment_ids: Sequence[str], **scope: Any
) -> tuple[dict[str, Any], set[str]]:
    """The invoices of these payments, in one question (none asked for an empty page)."""
    if not payment_ids:
        return {}, set()
    reply = await request.app[INVOICING_STUB].ListInvoices(
        invoicing_pb2.ListInvoicesRequest(
            **scope, payment_ids=list(payment_ids), page_size=invoice_page_size(payment_ids)
        )
    )
    return views.invoices_by_payment(reply.invoices)


def invoice_page_size(payment_ids: Sequence[str]) -> int:
    """Room for an invoice and a credit note per payment, within the contract's 100."""
    return min(100, 2 * len(payment_ids))


def pager(request: web.Request, page: int, rows: int) -> dict[str, str | int | None]:
    """Links to the newer and older pages (older only when this page was full)."""
    return {
        "page": page,
        "newer_href": f"{request.path}?page={page - 1}" if page > 1 else None,
        "older_href": f"{request.path}?page={page + 1}"
        if rows == PAGE_SIZE and page < MAX_PAGE
        else None,
    }


async def history_page(request: web.Request, account: Account) -> web.StreamResponse:
    """``GET …/invoices``: the customer's transactions, newest first, one page."""
    page = page_number_of(request)
    reply = await request.app[PAYMENTS_STUB].ListPayments(
        payments_pb2.ListPaymentsRequest(
            business_id=account.business_id,
            mode=account.mode,
            customer_ids=[account.customer_id],
            page_size=PAGE_SIZE,
            page_number=page - 1,
        )
    )
    payments = list(reply.payments)
    by_payment, credited = await invoices_of(
        request, [p.payment_id for p in payments], **account.scope()
    )
    rows = [
        views.history_row(
            p,
            by_payment.get(p.payment_id),
            refunded=p.payment_id in credited,
            links=invoice_links(account.path(), p.payment_id),
        )
        for p in payments
    ]
    return render(
        request,
        "invoices.html",
        account.values(rows=rows, unified_list=False, **pager(request, page, len(rows))),
    )


async def detail_page(request: web.Request, account: Account) -> web.StreamResponse:
    """``GET …/invoices/{payment_id}``: seller, buyer, lines, totals, method, download."""
    payment_id = payment_id_of(request)
    # Three questions at once: the payment, its invoices, and the customer's billing
    # details (whether a re-issue with them would change what the invoice prints).
    payment, (by_payment, credited), customer = await asyncio.gather(
        request.app[PAYMENTS_STUB].GetPayment(
            payments_pb2.GetPaymentRequest(**account.scope(), payment_id=payment_id)
        ),
        invoices_of(request, [payment_id], **account.scope()),
        request.app[AUTH_STUB].GetCustomer(auth_pb2.GetCustomerRequest(**account.scope())),
    )
    detail = views.invoice_detail(
        payment,
        by_payment.get(payment_id),
        refunded=payment_id in credited,
        links=invoice_links(account.path(), payment_id),
        business=account.business,
        billing_details=(
            customer.billing_details if customer.HasField("billing_details") else None
        ),
    )
    back = account.site.path("/invoices") if account.unified else account.path("invoices")
    reissued = request.query.get("reissued")
    return render(
        request,
        "invoice_detail.html",
        account.values(
            detail=detail,
            back_href=back,
            reissue_action=account.path(f"invoices/{payment_id}/reissue"),
            billing_details_href=account.path("billing-details"),
            reissued=reissued if reissued in ("1", "later") else None,
        ),
    )


async def download_pdf(request: web.Request, account: Account) -> web.StreamResponse:
    """``GET …/invoices/{payment_id}/pdf``: the stored PDF, only for its own customer."""
    payment_id = payment_id_of(request)
    pdf = await request.app[INVOICING_STUB].GetInvoicePdf(
        invoicing_pb2.GetInvoicePdfRequest(
            **account.scope(), payment_id=payment_id, version=version_of(request)
        )
    )
    response = pdf_response(pdf)
    apply_page_headers(response, site_of(request))
    return response


def pdf_response(pdf: invoicing_pb2.InvoicePdf) -> web.Response:
    """The stored bytes as an attachment named ``invoice-<number>.pdf`` (portal and API)."""
    return web.Response(
        body=pdf.content,
        content_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="{views.pdf_filename(pdf.invoice)}"'
        },
    )
