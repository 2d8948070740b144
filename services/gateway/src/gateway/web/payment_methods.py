"""Saved payment methods: list, add (hosted page), make default, remove.

A card that a current subscription charges cannot simply disappear: removing
it asks for the replacement first, moves those subscriptions to it (the
subscriptions service's UpdatePaymentMethod, nothing charged for an active
one), then deletes the card. A subscription on hold that uses the card is
settled through its own Edit flow first, since switching it would charge its
dues. A repeated POST (double click, back + resubmit) finds the card already
gone or already default and lands on the same list.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from billing.payments.v1 import payments_pb2
from billing.subscriptions.v1 import subscriptions_pb2
from billing_kit.errors import NotFound

from gateway.keys import PAYMENTS_STUB, SUBSCRIPTIONS_STUB
from gateway.web import billing_views as views
from gateway.web import i18n
from gateway.web.billing_forms import valid_id
from gateway.web.billing_scope import Account
from gateway.web.forms import read_form
from gateway.web.login import csrf_failed_error
from gateway.web.payment_method_flow import start_new_card
from gateway.web.rendering import error_page, redirect, render
from gateway.web.security import CSRF_FIELD, tokens_match
from gateway.web.subscriptions import links_for, list_methods, list_subscriptions

NOTICES = ("added", "add_failed", "default", "removed")


async def _methods_and_subscriptions(
    request: web.Request, account: Account
) -> tuple[list[Any], list[Any]]:
    methods, subs = await asyncio.gather(
        list_methods(request, account), list_subscriptions(request, account)
    )
    return methods, subs


async def methods_page(request: web.Request, account: Account) -> web.StreamResponse:
    """``GET …/payment-methods``: the saved cards and what each is used for."""
    methods, subs = await _methods_and_subscriptions(request, account)
    used = views.methods_in_use(subs)
    default_id = next((m.payment_method_id for m in methods if m.is_default), "")
    rows = [
        views.method_view(m, default_id=default_id, used_by=used.get(m.payment_method_id, []))
        for m in methods
    ]
    notice = request.query.get("done")
    return render(
        request,
        "payment_methods.html",
        account.values(
            methods=rows,
            notice=notice if notice in NOTICES else None,
            add_action=account.path("payment-methods/add"),
            action_base=account.path("payment-methods"),
        ),
    )


async def add_card(request: web.Request, account: Account) -> web.StreamResponse:
    """``POST …/payment-methods/add``: to the hosted page, back to ``…/added``."""
    form = await read_form(request)
    if not tokens_match(account.csrf_token, form.get(CSRF_FIELD)):
        return error_page(request, 400)
    return await start_new_card(request, account, "payment-methods/added")


async def card_added(request: web.Request, account: Account) -> web.StreamResponse:
    """``GET …/payment-methods/added``: back from the hosted page."""
    session_id = request.query.get("payment_session_id", "")
    if not valid_id(session_id):
        return redirect(account.path("payment-methods"))
    session = await request.app[PAYMENTS_STUB].GetPaymentSession(
        payments_pb2.GetPaymentSessionRequest(
            business_id=account.business_id, mode=account.mode, session_id=session_id
        )
    )
    if session.customer_id != account.customer_id:
        raise web.HTTPNotFound()
    ok = views.enum_name(session, "status") == "succeeded"
    return redirect(account.path(f"payment-methods?done={'added' if ok else 'add_failed'}"))


def _method_id(request: web.Request) -> str:
    payment_method_id = request.match_info["payment_method_id"]
    if not valid_id(payment_method_id):
        raise web.HTTPNotFound()
    return payment_method_id


async def make_default(request: web.Request, account: Account) -> web.StreamResponse:
    """``POST …/payment-methods/{id}/default``."""
    payment_method_id = _method_id(request)
    form = await read_form(request)
    if not tokens_match(account.csrf_token, form.get(CSRF_FIELD)):
        return error_page(request, 400)
    await request.app[PAYMENTS_STUB].SetDefaultPaymentMethod(
        payments_pb2.SetDefaultPaymentMethodRequest(
            **account.scope(), payment_method_id=payment_method_id
        )
    )
    return redirect(account.path("payment-methods?done=default"))


def _removal(
    methods: list[Any], subs: list[Any], payment_method_id: str
) -> tuple[Any, list[Any], list[Any]] | None:
    """(the card, current subscriptions charging it, other cards) or None if not ours."""
    card = next((m for m in methods if m.payment_method_id == payment_method_id), None)
    if card is None:
        return None
    users = [
        s
        for s in subs
        if s.payment_method_id == payment_method_id
        and views.enum_name(s, "status") not in views.PAST_STATUSES
    ]
    others = [m for m in methods if m.payment_method_id != payment_method_id]
    return card, users, others


def _remove_values(
    account: Account, card: Any, users: list[Any], others: list[Any], **more: Any
) -> dict[str, Any]:
    on_hold = [s for s in users if views.enum_name(s, "status") == "on_hold"]
    return account.values(
        card=views.card_label(card.brand, card.last4),
        users=[
            {
                "name": s.product_name or s.product_id,
                "edit": links_for(account, s.subscription_id).payment_method,
            }
            for s in users
        ],
        blocked=[
            {
                "name": s.product_name or s.product_id,
                "edit": links_for(account, s.subscription_id).payment_method,
            }
            for s in on_hold
        ],
        replacements=[
            {"id": m.payment_method_id, "label": views.card_label(m.brand, m.last4)} for m in others
        ],
        action=account.path(f"payment-methods/{card.payment_method_id}/remove"),
        back_href=account.path("payment-methods"),
        errors=more.pop("errors", {}),
        **more,
    )


async def remove_page(request: web.Request, account: Account) -> web.StreamResponse:
    """``GET …/payment-methods/{id}/remove``: confirm, choosing a replacement if needed."""
    payment_method_id = _method_id(request)
    methods, subs = await _methods_and_subscriptions(request, account)
    found = _removal(methods, subs, payment_method_id)
    if found is None:
        raise web.HTTPNotFound()
    return render(request, "payment_method_remove.html", _remove_values(account, *found))


async def remove(request: web.Request, account: Account) -> web.StreamResponse:
    """``POST …/payment-methods/{id}/remove``: move its subscriptions, then delete it."""
    payment_method_id = _method_id(request)
    form = await read_form(request)
    methods, subs = await _methods_and_subscriptions(request, account)
    found = _removal(methods, subs, payment_method_id)
    if found is None:
        # Already removed (a repeated POST) or never ours: nothing to do here.
        return redirect(account.path("payment-methods?done=removed"))
    card, users, others = found
    errors: dict[str, str] = {}
    if not tokens_match(account.csrf_token, form.get(CSRF_FIELD)):
        errors["form"] = csrf_failed_error()
    elif any(views.enum_name(s, "status") == "on_hold" for s in users):
        errors["form"] = i18n.gettext(
            "A subscription on hold uses this card. Settle it with another card first."
        )
    replacement = form.get("replacement", "")
    if users and not errors and replacement not in {m.payment_method_id for m in others}:
        errors["replacement"] = i18n.gettext("Choose the card your subscriptions will use instead.")
    if errors:
        values = _remove_values(account, card, users, others, errors=errors)
        status = 400 if errors.get("form") == csrf_failed_error() else 422
        return render(request, "payment_method_remove.html", values, status=status)
    for sub in users:
        await request.app[SUBSCRIPTIONS_STUB].UpdatePaymentMethod(
            subscriptions_pb2.UpdatePaymentMethodRequest(
                **account.scope(),
                subscription_id=sub.subscription_id,
                payment_method_id=replacement,
                customer_present=True,
                return_url=account.url("payment-methods"),
            )
        )
    try:
        await request.app[PAYMENTS_STUB].DeletePaymentMethod(
            payments_pb2.DeletePaymentMethodRequest(
                **account.scope(), payment_method_id=payment_method_id
            )
        )
    except NotFound:
        pass  # a concurrent tab removed it first: same outcome
    return redirect(account.path("payment-methods?done=removed"))
