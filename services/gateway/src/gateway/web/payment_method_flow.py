"""Change a subscription's payment method, and reactivate one on hold (the seed's six steps).

1. the subscription's page shows its card with **Edit** (``Modifica``);
2. Edit opens ``…/subscriptions/{id}/payment-method``;
3. the customer picks a saved card or adds one on the payments service's
   hosted page (it returns to ``…/payment-method/added`` with the new card
   preselected);
4. **Confirm changes** (``Conferma Modifiche``) posts the choice. For an
   ``on_hold`` subscription the page first shows what is owed, and the post
   carries the fingerprint of those dues (amount and currency): if they
   changed meanwhile the page shows the new amount instead of charging it unseen;
5. the subscriptions service charges the dues (its idempotency key derives
   from the subscription and the dues, so a double click, a second tab or
   back + resubmit is the same charge); a card that asks for 3-D Secure sends
   the customer to the challenge, which comes back to ``…/payment-method/done``;
6. the done page says the subscription is active with its next renewal date —
   or, after a decline, the choose page says why in plain words and offers
   another card.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote, urlsplit

from aiohttp import web
from billing.payments.v1 import payments_pb2
from billing.subscriptions.v1 import subscriptions_pb2
from billing_kit.errors import NotFound

from gateway.keys import PAYMENTS_STUB, SUBSCRIPTIONS_STUB
from gateway.web import billing_views as views
from gateway.web import i18n
from gateway.web.billing_forms import NEW_METHOD, dues_fingerprint, parse_method_choice, valid_id
from gateway.web.billing_scope import Account
from gateway.web.branding import safe_logo_url
from gateway.web.forms import read_form
from gateway.web.login import csrf_failed_error
from gateway.web.rendering import error_page, redirect, render
from gateway.web.security import CSRF_FIELD, tokens_match
from gateway.web.subscriptions import (
    get_subscription,
    links_for,
    list_methods,
    subscription_id_of,
)


async def _dues(request: web.Request, account: Account, sub: Any) -> Any | None:
    """What an on_hold subscription owes now (None for any other status)."""
    if views.enum_name(sub, "status") != "on_hold":
        return None
    return await request.app[SUBSCRIPTIONS_STUB].PreviewDues(
        subscriptions_pb2.PreviewDuesRequest(**account.scope(), subscription_id=sub.subscription_id)
    )


async def _payment(request: web.Request, account: Account, payment_id: str) -> Any | None:
    """One of the account's payments, None for anything else."""
    if not valid_id(payment_id):
        return None
    try:
        return await request.app[PAYMENTS_STUB].GetPayment(
            payments_pb2.GetPaymentRequest(
                business_id=account.business_id,
                mode=account.mode,
                customer_id=account.customer_id,
                payment_id=payment_id,
            )
        )
    except NotFound:
        return None


def _dues_values(dues: Any | None) -> dict[str, str]:
    if dues is None or dues.amount <= 0:
        return {}
    return {
        "amount": views.money(dues.amount, dues.currency),
        "period_start": views.day(views.timestamp(dues, "period_start")),
        "period_end": views.day(views.timestamp(dues, "period_end")),
        "next_billing": views.day(views.timestamp(dues, "next_billing_date")),
        "fingerprint": dues_fingerprint(dues),
    }


async def _choose_page(
    request: web.Request,
    account: Account,
    sub: Any,
    *,
    chosen: str = "",
    errors: dict[str, str] | None = None,
    decline: str = "",
    status: int = 200,
) -> web.Response:
    methods, dues = await asyncio.gather(
        list_methods(request, account), _dues(request, account, sub)
    )
    by_id = {m.payment_method_id: m for m in methods}
    view = views.subscription_view(sub, by_id, links_for(account, sub.subscription_id))
    # After a decline nothing is preselected: the customer picks another card.
    preselected = chosen if chosen in by_id else ("" if decline else sub.payment_method_id)
    options = [
        {
            "id": m.payment_method_id,
            "label": views.card_label(m.brand, m.last4),
            "expiry": views.method_view(m, default_id="", used_by=[]).expiry,
            "current": m.payment_method_id == sub.payment_method_id,
            "checked": m.payment_method_id == preselected,
        }
        for m in methods
    ]
    return render(
        request,
        "payment_method_update.html",
        account.values(
            sub=view,
            options=options,
            dues=_dues_values(dues),
            decline=decline,
            errors=errors or {},
            action=view.links.payment_method,
            back_href=view.links.detail,
        ),
        status=status,
    )


async def edit_page(request: web.Request, account: Account) -> web.StreamResponse:
    """``GET …/payment-method``: saved cards, add one, what is owed, Confirm changes."""
    sub = await get_subscription(request, account, subscription_id_of(request))
    if views.enum_name(sub, "status") in views.PAST_STATUSES:
        return redirect(links_for(account, sub.subscription_id).detail)
    decline = ""
    declined = await _payment(request, account, request.query.get("declined", ""))
    if declined is not None and views.enum_name(declined, "status") == "failed":
        decline = views.decline_message(declined)
    session_id = request.query.get("card_session", "")
    if valid_id(session_id):
        decline = i18n.gettext("The card was not saved. Try again or use another card.")
    return await _choose_page(
        request, account, sub, chosen=request.query.get("chosen", ""), decline=decline
    )


def _hosted_url(url: str) -> str | None:
    """The payments page URL if it is an absolute http(s) URL (never a script: link)."""
    parts = urlsplit(url)
    return url if parts.scheme in ("http", "https") and parts.netloc else None


async def start_new_card(request: web.Request, account: Account, return_path: str) -> web.Response:
    """A hosted-page session to save a card; 303 to it (the card number never comes here)."""
    branding = account.business.branding
    session = await request.app[PAYMENTS_STUB].CreatePaymentSession(
        payments_pb2.CreatePaymentSessionRequest(
            **account.scope(),
            purpose=payments_pb2.PAYMENT_SESSION_PURPOSE_SAVE_METHOD,
            return_url=account.url(return_path),
            locale=i18n.current_lang(),
            branding=payments_pb2.Branding(
                business_name=account.business.name,
                accent_color=branding.primary_color,
                logo_url=safe_logo_url(branding.logo_url) or "",
            ),
        )
    )
    target = _hosted_url(session.url)
    if target is None:
        return error_page(request, 502)
    return redirect(target)


async def confirm(request: web.Request, account: Account) -> web.StreamResponse:
    """``POST …/payment-method``: add a card, or Confirm changes with the chosen one."""
    subscription_id = subscription_id_of(request)
    form = await read_form(request)
    sub = await get_subscription(request, account, subscription_id)
    if not tokens_match(account.csrf_token, form.get(CSRF_FIELD)):
        errors = {"form": csrf_failed_error()}
        return await _choose_page(request, account, sub, errors=errors, status=400)
    base = f"subscriptions/{subscription_id}/payment-method"
    if form.get("action") == "add_card" or form.get("payment_method_id") == NEW_METHOD:
        return await start_new_card(request, account, f"{base}/added")
    methods = await list_methods(request, account)
    choice = parse_method_choice(form, {m.payment_method_id for m in methods})
    if isinstance(choice, dict):
        return await _choose_page(request, account, sub, errors=choice, status=422)
    status = views.enum_name(sub, "status")
    if status in views.PAST_STATUSES:
        return redirect(links_for(account, subscription_id).detail)
    if status == "on_hold":
        dues = await _dues(request, account, sub)
        if dues is not None and dues_fingerprint(dues) != form.get("dues", ""):
            # The amount owed is not the one the customer saw: show it, charge nothing.
            errors = {
                "form": i18n.gettext("The amount due has changed. Check it and confirm again.")
            }
            return await _choose_page(
                request, account, sub, chosen=choice, errors=errors, status=409
            )
    elif choice == sub.payment_method_id:
        return redirect(links_for(account, subscription_id).detail + "?done=switched")
    reply = await request.app[SUBSCRIPTIONS_STUB].UpdatePaymentMethod(
        subscriptions_pb2.UpdatePaymentMethodRequest(
            **account.scope(),
            subscription_id=subscription_id,
            payment_method_id=choice,
            customer_present=True,
            return_url=account.url(f"{base}/done"),
        )
    )
    return _after_update(account, subscription_id, reply)


def _after_update(account: Account, subscription_id: str, reply: Any) -> web.Response:
    """Where the customer goes after UpdatePaymentMethod answered (always a 303)."""
    base = f"subscriptions/{subscription_id}/payment-method"
    if views.enum_name(reply, "result") != "charged":
        return redirect(links_for(account, subscription_id).detail + "?done=switched")
    payment = reply.payment
    outcome = views.enum_name(payment, "status")
    pay = quote(payment.payment_id, safe="")
    if outcome == "requires_customer_action":
        challenge = _hosted_url(payment.challenge_url)
        if challenge is not None:
            return redirect(challenge)
    if outcome == "failed":
        return redirect(account.path(f"{base}?declined={pay}"))
    return redirect(account.path(f"{base}/done?payment_id={pay}"))


async def card_added(request: web.Request, account: Account) -> web.StreamResponse:
    """``GET …/payment-method/added``: back from the hosted page; preselect the new card."""
    subscription_id = subscription_id_of(request)
    base = account.path(f"subscriptions/{subscription_id}/payment-method")
    session_id = request.query.get("payment_session_id", "")
    if not valid_id(session_id):
        return redirect(base)
    session = await request.app[PAYMENTS_STUB].GetPaymentSession(
        payments_pb2.GetPaymentSessionRequest(
            business_id=account.business_id, mode=account.mode, session_id=session_id
        )
    )
    if session.customer_id != account.customer_id:
        raise web.HTTPNotFound()
    if views.enum_name(session, "status") == "succeeded" and session.payment_method_id:
        return redirect(f"{base}?chosen={quote(session.payment_method_id, safe='')}")
    return redirect(f"{base}?card_session={quote(session_id, safe='')}")


async def done_page(request: web.Request, account: Account) -> web.StreamResponse:
    """``GET …/payment-method/done``: the confirmation (step 6), or where things stand."""
    subscription_id = subscription_id_of(request)
    sub = await get_subscription(request, account, subscription_id)
    payment = await _payment(request, account, request.query.get("payment_id", ""))
    if payment is None and sub.pending_payment_id:
        payment = await _payment(request, account, sub.pending_payment_id)
    if payment is not None and payment.subscription_id != subscription_id:
        payment = None
    status = views.enum_name(sub, "status")
    outcome = views.enum_name(payment, "status") if payment is not None else ""
    if status == "on_hold" and outcome == "failed" and payment is not None:
        pay = quote(payment.payment_id, safe="")
        return redirect(
            account.path(f"subscriptions/{subscription_id}/payment-method?declined={pay}")
        )
    if status == "active":
        state = "active"
    elif outcome == "requires_customer_action" or sub.challenge_url:
        state = "challenge"
    elif status == "on_hold":
        state = "processing"
    else:
        state = "other"
    methods = await list_methods(request, account)
    by_id = {m.payment_method_id: m for m in methods}
    view = views.subscription_view(sub, by_id, links_for(account, subscription_id))
    challenge = _hosted_url(
        (payment.challenge_url if payment is not None else "") or sub.challenge_url
    )
    return render(
        request,
        "payment_method_done.html",
        account.values(
            sub=view,
            state=state,
            payment=views.payment_view(payment) if payment is not None else None,
            challenge_href=challenge,
            refresh_href=account.path(f"subscriptions/{subscription_id}/payment-method/done"),
        ),
    )
