"""The unified portal's invoice history: every business of the verified email on one page.

Three questions per page, whatever the number of businesses: auth names the
email's (business, customer) pairs, payments lists one page of all their
payments (``customer_ids``, newest first), and invoicing returns the invoices
of exactly those payments (``payment_ids``, with the same ``customer_ids`` so
it never answers about anyone else). Each row shows its business's name; its
detail and download are the unified portal's per-business pages
(``/all/b/{business_id}/invoices/{payment_id}``), which check again that the
business is one of the email's and scope to that business's customer.
"""

from __future__ import annotations

from aiohttp import web
from billing.common.v1 import common_pb2
from billing.payments.v1 import payments_pb2

from gateway.keys import PAYMENTS_STUB
from gateway.web import invoice_views as views
from gateway.web.audiences import UnifiedContext, unified_page
from gateway.web.billing_scope import unified_accounts, unified_shell
from gateway.web.invoices import PAGE_SIZE, invoice_links, invoices_of, page_number_of, pager
from gateway.web.rendering import render


@unified_page
async def all_invoices(request: web.Request, context: UnifiedContext) -> web.StreamResponse:
    """``GET /all/invoices``: every business's transactions, newest first, one page."""
    page = page_number_of(request)
    owners = {a.customer.customer_id: a.business for a in await unified_accounts(request, context)}
    rows: list[views.HistoryRow] = []
    if owners:
        customer_ids = list(owners)
        reply = await request.app[PAYMENTS_STUB].ListPayments(
            payments_pb2.ListPaymentsRequest(
                mode=common_pb2.MODE_LIVE,
                customer_ids=customer_ids,
                page_size=PAGE_SIZE,
                page_number=page - 1,
            )
        )
        # Only this email's customers are ever shown, whatever a backend returns.
        payments = [p for p in reply.payments if p.customer_id in owners]
        by_payment, credited = await invoices_of(
            request,
            [p.payment_id for p in payments],
            mode=common_pb2.MODE_LIVE,
            customer_ids=customer_ids,
        )
        for payment in payments:
            business = owners[payment.customer_id]
            invoice = by_payment.get(payment.payment_id)
            if invoice is not None and invoice.customer_id != payment.customer_id:
                invoice = None
            rows.append(
                views.history_row(
                    payment,
                    invoice,
                    refunded=payment.payment_id in credited,
                    links=invoice_links(
                        context.site.path(f"/b/{business.business_id}/"), payment.payment_id
                    ),
                    business=business,
                )
            )
    values = {
        **unified_shell(context, "invoices"),
        "shell_template": "unified_base.html",
        "rows": rows,
        "unified_list": True,
        "brands": sorted({b.business_id for b in owners.values()}),
        **pager(request, page, len(rows)),
    }
    return render(request, "invoices.html", values)
