"""Subscriptions pages: the list, one subscription with its payments, cancel and undo,
pause and resume.

What the business lets its customers do (its portal settings, see
:mod:`gateway.web.portal_settings`) decides which actions are shown, and the
routes of an action it does not offer answer a 403 page and change nothing.
Undo of a scheduled cancellation and resume of a paused subscription are
always allowed.

Each page asks each backend one question (in parallel where there are two);
every request is scoped to the account's customer (see
:mod:`gateway.web.billing_scope`), so another customer's subscription id is
NOT_FOUND there and the same 404 page here. Forms are POST → 303 → GET, and
a repeated cancel or undo (double click, second tab, back + resubmit) lands on
the same result page instead of an error.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from billing.payments.v1 import payments_pb2
from billing.subscriptions.v1 import subscriptions_pb2
from billing_kit.errors import FailedPrecondition

from gateway.keys import PAYMENTS_STUB, SUBSCRIPTIONS_STUB
from gateway.web import billing_views as views
from gateway.web import i18n
from gateway.web.billing_forms import CancelChoice, parse_cancel, valid_id
from gateway.web.billing_scope import Account
from gateway.web.forms import read_form
from gateway.web.login import csrf_failed_error
from gateway.web.portal_settings import PortalSettingsView, not_offered_page, portal_settings_of
from gateway.web.rendering import error_page, redirect, render
from gateway.web.security import CSRF_FIELD, tokens_match

PAGE_SIZE = 100  # one page: a customer's subscriptions and cards are few
# The ?done= notices the detail page knows.
NOTICES = (
    "cancelled",
    "scheduled",
    "undone",
    "switched",
    "paused",
    "resumed",
    "change_cancelled",
)
# Pause and resume: (the status it makes, the notice shown after it).
_PAUSE_ACTIONS = {"pause": ("paused", "paused"), "resume": ("active", "resumed")}


def links_for(account: Account, subscription_id: str) -> views.Links:
    """Where a subscription's actions live on this account's site."""
    base = f"subscriptions/{subscription_id}"
    return views.Links(
        detail=account.path(base),
        cancel=account.path(f"{base}/cancel"),
        payment_method=account.path(f"{base}/payment-method"),
        pause=account.path(f"{base}/pause"),
        resume=account.path(f"{base}/resume"),
        change_plan=account.path(f"{base}/change-plan"),
        seats=account.path(f"{base}/seats"),
    )


def view_of(account: Account, sub: Any, methods: dict[str, Any]) -> views.SubscriptionView:
    """A subscription of this account as its pages show it, with the business's settings."""
    allowed = portal_settings_of(account.business)
    return views.subscription_view(
        sub,
        methods,
        links_for(account, sub.subscription_id),
        cancel_offered=allowed.allow_cancel,
        pause_offered=allowed.allow_pause,
    )


def hosted_url(url: str) -> str | None:
    """A hosted page's URL if it is an absolute http(s) URL (never a script: link)."""
    parts = urlsplit(url)
    return url if parts.scheme in ("http", "https") and parts.netloc else None


def changeable(sub: Any) -> bool:
    """Only an active subscription that is not ending, and has no change waiting for its
    payment (3-D Secure), can change plan or seats."""
    return (
        views.enum_name(sub, "status") == "active"
        and not sub.cancel_at_next_billing_date
        and not sub.pending_payment_id
    )


def offer_changes(
    view: views.SubscriptionView,
    sub: Any,
    settings: PortalSettingsView,
    *,
    other_plans: bool,
    addons_offered: bool = False,
) -> None:
    """Set the view's Change plan / seats / add-ons buttons (what the business allows).

    Add-on quantities are quantities: they follow ``allow_quantity_change`` and are
    changed on the seats page, offered only when the current plan offers add-ons.
    """
    ok = changeable(sub)
    view.can_change_plan = (
        ok and other_plans and settings.allow_plan_change and bool(view.links.change_plan)
    )
    view.can_change_seats = ok and settings.allow_quantity_change and bool(view.links.seats)
    view.can_change_addons = view.can_change_seats and addons_offered


def name_scheduled_addons(view: views.SubscriptionView, options: list[Any]) -> None:
    """Name a scheduled change's add-ons the subscription does not have yet (from the
    plans' offers), so the page never shows a bare id where a name is known."""
    names = {a.addon_id: a.name for o in options for a in o.addons}
    for addon in view.scheduled_change.get("addons", []):
        if addon["name"] == addon["id"] and addon["id"] in names:
            addon["name"] = names[addon["id"]]


async def plan_options(request: web.Request, account: Account, subscription_id: str) -> list[Any]:
    """The plans this subscription may switch to (the current one included), cheapest first."""
    reply = await request.app[SUBSCRIPTIONS_STUB].ListPlanOptions(
        subscriptions_pb2.ListPlanOptionsRequest(**account.scope(), subscription_id=subscription_id)
    )
    return list(reply.options)


async def list_methods(request: web.Request, account: Account) -> list[Any]:
    """The account's saved cards (newest first)."""
    reply = await request.app[PAYMENTS_STUB].ListPaymentMethods(
        payments_pb2.ListPaymentMethodsRequest(**account.scope(), page_size=PAGE_SIZE)
    )
    return list(reply.payment_methods)


async def list_subscriptions(request: web.Request, account: Account) -> list[Any]:
    """The account's subscriptions (newest first)."""
    reply = await request.app[SUBSCRIPTIONS_STUB].ListSubscriptions(
        subscriptions_pb2.ListSubscriptionsRequest(**account.scope(), page_size=PAGE_SIZE)
    )
    return list(reply.subscriptions)


async def get_subscription(request: web.Request, account: Account, subscription_id: str) -> Any:
    """One of the account's subscriptions; NOT_FOUND (→ 404 page) for anyone else's."""
    return await request.app[SUBSCRIPTIONS_STUB].GetSubscription(
        subscriptions_pb2.GetSubscriptionRequest(**account.scope(), subscription_id=subscription_id)
    )


def subscription_id_of(request: web.Request) -> str:
    """The URL's subscription id; a malformed one is a 404 like an unknown one."""
    subscription_id = request.match_info["subscription_id"]
    if not valid_id(subscription_id):
        raise web.HTTPNotFound()
    return subscription_id


async def subscriptions_page(request: web.Request, account: Account) -> web.StreamResponse:
    """``GET …/subscriptions``: current ones (on hold first) and past ones."""
    subs, methods = await asyncio.gather(
        list_subscriptions(request, account), list_methods(request, account)
    )
    by_id = {m.payment_method_id: m for m in methods}
    rows = [view_of(account, s, by_id) for s in subs]
    current, past = views.split_current_and_past(rows)
    return render(
        request,
        "subscriptions.html",
        account.values(current=current, past=past, unified_list=False),
    )


async def subscription_page(request: web.Request, account: Account) -> web.StreamResponse:
    """``GET …/subscriptions/{id}``: the subscription, its card and its payments."""
    subscription_id = subscription_id_of(request)
    sub, methods, payments = await asyncio.gather(
        get_subscription(request, account, subscription_id),
        list_methods(request, account),
        request.app[PAYMENTS_STUB].ListPayments(
            payments_pb2.ListPaymentsRequest(
                business_id=account.business_id,
                mode=account.mode,
                customer_ids=[account.customer_id],
                subscription_id=subscription_id,
                page_size=PAGE_SIZE,
            )
        ),
    )
    by_id = {m.payment_method_id: m for m in methods}
    view = view_of(account, sub, by_id)
    settings = portal_settings_of(account.business)
    other_plans = addons_offered = False
    if changeable(sub) and (settings.allow_plan_change or settings.allow_quantity_change):
        # One question tells both: other plans to switch to, and the add-ons of this one.
        options = await plan_options(request, account, subscription_id)
        other_plans = any(not o.current for o in options)
        addons_offered = any(o.current and len(o.addons) > 0 for o in options)
        name_scheduled_addons(view, options)
    offer_changes(view, sub, settings, other_plans=other_plans, addons_offered=addons_offered)
    notice = request.query.get("done")
    waiting = ""
    if views.enum_name(sub, "status") == "active" and sub.pending_payment_id:
        # A plan change waits for the bank (3-D Secure): the way back to it.
        waiting = hosted_url(sub.challenge_url) or ""
    return render(
        request,
        "subscription_detail.html",
        account.values(
            sub=view,
            payments=[views.payment_view(p) for p in payments.payments],
            notice=notice if notice in NOTICES else None,
            undo_action=account.path(f"subscriptions/{subscription_id}/undo-cancel"),
            challenge_href=waiting,
            cancel_change_action=account.path(
                f"subscriptions/{subscription_id}/change-plan/cancel-scheduled"
            ),
            back_href=account.path("subscriptions"),
        ),
    )


def _cancel_values(account: Account, view: views.SubscriptionView, **more: Any) -> dict[str, Any]:
    return account.values(
        sub=view,
        ask_reason=portal_settings_of(account.business).ask_cancel_reason,
        reasons=[(value, i18n.gettext(label)) for value, label in views.CANCELLATION_FEEDBACK],
        action=view.links.cancel,
        undo_action=account.path(f"subscriptions/{view.subscription_id}/undo-cancel"),
        errors={},
        chosen={"when": "period_end", "feedback": "", "comment": ""},
        **more,
    )


async def cancel_page(request: web.Request, account: Account) -> web.StreamResponse:
    """``GET …/subscriptions/{id}/cancel``: when, why (optional), and a confirmation."""
    subscription_id = subscription_id_of(request)
    sub = await get_subscription(request, account, subscription_id)
    view = view_of(account, sub, {})
    if not portal_settings_of(account.business).allow_cancel and not (
        view.cancel_scheduled or view.is_past
    ):
        # The page of a scheduled cancellation only offers its undo: always allowed.
        return not_offered_page(request, account, subscription_id)
    return render(request, "subscription_cancel.html", _cancel_values(account, view))


def _feedback_enum(value: str) -> subscriptions_pb2.CancellationFeedback.ValueType:
    if not value:
        return subscriptions_pb2.CANCELLATION_FEEDBACK_UNSPECIFIED
    return subscriptions_pb2.CancellationFeedback.Value(f"CANCELLATION_FEEDBACK_{value.upper()}")


def _already_done(sub: Any, choice: CancelChoice) -> bool:
    """True when the subscription already is what this cancel asked for (a repeat)."""
    status = views.enum_name(sub, "status")
    if choice.when == "now":
        return status == "cancelled"
    return bool(sub.cancel_at_next_billing_date) or status == "cancelled"


async def cancel(request: web.Request, account: Account) -> web.StreamResponse:
    """``POST …/subscriptions/{id}/cancel``: cancel now or at the end of the period."""
    subscription_id = subscription_id_of(request)
    allowed = portal_settings_of(account.business)
    if not allowed.allow_cancel:
        return not_offered_page(request, account, subscription_id)
    form = await read_form(request)
    if not allowed.ask_cancel_reason:
        # Not asked, so not taken: a crafted form cannot record a reason.
        form = {k: v for k, v in form.items() if k not in ("feedback", "comment")}
    sub = await get_subscription(request, account, subscription_id)
    view = view_of(account, sub, {})
    chosen = {k: (form.get(k) or "")[:2000] for k in ("when", "feedback", "comment")}
    if not tokens_match(account.csrf_token, form.get(CSRF_FIELD)):
        errors = {"form": csrf_failed_error()}
        values = _cancel_values(account, view)
        values.update(errors=errors, chosen=chosen)
        return render(request, "subscription_cancel.html", values, status=400)
    choice = parse_cancel(form)
    if isinstance(choice, dict):
        values = _cancel_values(account, view)
        values.update(errors=choice, chosen=chosen)
        return render(request, "subscription_cancel.html", values, status=422)
    done = "cancelled" if choice.when == "now" else "scheduled"
    if _already_done(sub, choice):
        return redirect(account.path(f"subscriptions/{subscription_id}?done={done}"))
    try:
        await request.app[SUBSCRIPTIONS_STUB].CancelSubscription(
            subscriptions_pb2.CancelSubscriptionRequest(
                **account.scope(),
                subscription_id=subscription_id,
                at_period_end=choice.when == "period_end",
                cancellation_feedback=_feedback_enum(choice.feedback),
                cancellation_comment=choice.comment,
            )
        )
    except FailedPrecondition:
        # A concurrent tab may have won: same outcome ⇒ same page; else the refusal.
        again = await get_subscription(request, account, subscription_id)
        if not _already_done(again, choice):
            raise
    return redirect(account.path(f"subscriptions/{subscription_id}?done={done}"))


async def undo_cancel(request: web.Request, account: Account) -> web.StreamResponse:
    """``POST …/subscriptions/{id}/undo-cancel``: keep a subscription scheduled to end."""
    subscription_id = subscription_id_of(request)
    form = await read_form(request)
    if not tokens_match(account.csrf_token, form.get(CSRF_FIELD)):
        return error_page(request, 400)
    sub = await get_subscription(request, account, subscription_id)
    if views.enum_name(sub, "status") in views.PAST_STATUSES:
        return redirect(account.path(f"subscriptions/{subscription_id}"))
    if sub.cancel_at_next_billing_date:
        await request.app[SUBSCRIPTIONS_STUB].UpdateSubscription(
            subscriptions_pb2.UpdateSubscriptionRequest(
                **account.scope(),
                subscription_id=subscription_id,
                cancel_at_next_billing_date=False,
            )
        )
    return redirect(account.path(f"subscriptions/{subscription_id}?done=undone"))


def _pause_values(
    account: Account, view: views.SubscriptionView, action: str, **more: Any
) -> dict[str, Any]:
    links = view.links
    return account.values(
        sub=view,
        what=action,
        action=links.pause if action == "pause" else links.resume,
        errors={},
        **more,
    )


def _pause_action(request: web.Request) -> str:
    # The route's last path segment: "pause" or "resume".
    return "pause" if request.path.rstrip("/").endswith("/pause") else "resume"


async def pause_page(request: web.Request, account: Account) -> web.StreamResponse:
    """``GET …/subscriptions/{id}/pause`` and ``…/resume``: what happens, and a confirmation."""
    subscription_id = subscription_id_of(request)
    sub = await get_subscription(request, account, subscription_id)
    view = view_of(account, sub, {})
    action = _pause_action(request)
    if action == "pause" and not portal_settings_of(account.business).allow_pause:
        return not_offered_page(request, account, subscription_id)
    return render(request, "subscription_pause.html", _pause_values(account, view, action))


async def pause_or_resume(request: web.Request, account: Account) -> web.StreamResponse:
    """``POST …/subscriptions/{id}/pause`` and ``…/resume`` (Dodo's PATCH status
    ``paused`` / ``active``); a repeat lands on the same result page."""
    subscription_id = subscription_id_of(request)
    action = _pause_action(request)
    # Resuming a paused subscription stays allowed whatever the settings.
    if action == "pause" and not portal_settings_of(account.business).allow_pause:
        return not_offered_page(request, account, subscription_id)
    after, done = _PAUSE_ACTIONS[action]
    form = await read_form(request)
    sub = await get_subscription(request, account, subscription_id)
    view = view_of(account, sub, {})
    if not tokens_match(account.csrf_token, form.get(CSRF_FIELD)):
        values = _pause_values(account, view, action)
        values.update(errors={"form": csrf_failed_error()})
        return render(request, "subscription_pause.html", values, status=400)
    result = account.path(f"subscriptions/{subscription_id}?done={done}")
    if views.enum_name(sub, "status") == after:
        return redirect(result)
    try:
        await request.app[SUBSCRIPTIONS_STUB].UpdateSubscription(
            subscriptions_pb2.UpdateSubscriptionRequest(
                **account.scope(),
                subscription_id=subscription_id,
                pause=action == "pause",
                resume=action == "resume",
            )
        )
    except FailedPrecondition:
        # A concurrent tab may have won: same outcome ⇒ same page; else the refusal.
        again = await get_subscription(request, account, subscription_id)
        if views.enum_name(again, "status") != after:
            raise
    return redirect(result)
