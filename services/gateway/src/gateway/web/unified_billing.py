"""The unified portal's billing lists: every business of the email on one page.

Auth names the email's (business, customer) pairs once; then each service is
asked ONE question with all those customer ids (``customer_ids``), never one
call per business, so 20 businesses cost about what one does (DESIGN.md §2).
Each row carries its business's name and logo, and its actions go to the
unified portal's own per-business pages (``/all/b/{business_id}/…``, see
:func:`gateway.web.billing_scope.unified_account_page`), so nothing needs a
switch of portal. Each row's actions (cancel, pause, resume) are the ones
its business offers (:mod:`gateway.web.portal_settings`), as on that business's portal.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from billing.common.v1 import common_pb2
from billing.payments.v1 import payments_pb2
from billing.subscriptions.v1 import subscriptions_pb2

from gateway.keys import PAYMENTS_STUB, SUBSCRIPTIONS_STUB
from gateway.web import billing_views as views
from gateway.web.audiences import UnifiedContext, unified_page
from gateway.web.billing_scope import unified_accounts, unified_shell
from gateway.web.portal_settings import portal_settings_of
from gateway.web.rendering import render

PAGE_SIZE = 100


def _links(context: UnifiedContext, business_id: str, subscription_id: str) -> views.Links:
    base = f"/b/{business_id}/subscriptions/{subscription_id}"
    return views.Links(
        detail=context.site.path(base),
        cancel=context.site.path(f"{base}/cancel"),
        payment_method=context.site.path(f"{base}/payment-method"),
        pause=context.site.path(f"{base}/pause"),
        resume=context.site.path(f"{base}/resume"),
        change_plan=context.site.path(f"{base}/change-plan"),
        seats=context.site.path(f"{base}/seats"),
    )


async def _customers(request: web.Request, context: UnifiedContext) -> dict[str, Any]:
    """Customer id → its business, for every account of the session's email."""
    return {a.customer.customer_id: a.business for a in await unified_accounts(request, context)}


def _values(
    request: web.Request, context: UnifiedContext, section: str, **more: Any
) -> dict[str, Any]:
    return {**unified_shell(context, section), "shell_template": "unified_base.html", **more}


@unified_page
async def all_subscriptions(request: web.Request, context: UnifiedContext) -> web.StreamResponse:
    """``GET /all/subscriptions``: every business's subscriptions, current and past."""
    owners = await _customers(request, context)
    rows: list[views.SubscriptionView] = []
    if owners:
        ids = list(owners)
        subs, methods = await asyncio.gather(
            request.app[SUBSCRIPTIONS_STUB].ListSubscriptions(
                subscriptions_pb2.ListSubscriptionsRequest(
                    mode=common_pb2.MODE_LIVE, customer_ids=ids, page_size=PAGE_SIZE
                )
            ),
            request.app[PAYMENTS_STUB].ListPaymentMethods(
                payments_pb2.ListPaymentMethodsRequest(
                    mode=common_pb2.MODE_LIVE, customer_ids=ids, page_size=PAGE_SIZE
                )
            ),
        )
        by_id = {m.payment_method_id: m for m in methods.payment_methods}
        for sub in subs.subscriptions:
            business = owners.get(sub.customer_id)
            if business is None:
                continue  # not one of this email's customers: never shown
            links = _links(context, business.business_id, sub.subscription_id)
            allowed = portal_settings_of(business)
            rows.append(
                views.subscription_view(
                    sub,
                    by_id,
                    links,
                    business=business,
                    cancel_offered=allowed.allow_cancel,
                    pause_offered=allowed.allow_pause,
                )
            )
    current, past = views.split_current_and_past(rows)
    values = _values(
        request,
        context,
        "subscriptions",
        current=current,
        past=past,
        unified_list=True,
        brands=sorted({b.business_id for b in owners.values()}),
    )
    return render(request, "subscriptions.html", values)


@unified_page
async def all_payments(request: web.Request, context: UnifiedContext) -> web.StreamResponse:
    """``GET /all/payments``: every business's payments, newest first."""
    owners = await _customers(request, context)
    rows: list[views.PaymentView] = []
    if owners:
        reply = await request.app[PAYMENTS_STUB].ListPayments(
            payments_pb2.ListPaymentsRequest(
                mode=common_pb2.MODE_LIVE, customer_ids=list(owners), page_size=PAGE_SIZE
            )
        )
        for payment in reply.payments:
            business = owners.get(payment.customer_id)
            if business is not None:
                rows.append(views.payment_view(payment, business=business))
    values = _values(
        request,
        context,
        "payments",
        payments=rows,
        brands=sorted({b.business_id for b in owners.values()}),
    )
    return render(request, "unified_payments.html", values)
