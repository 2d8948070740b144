"""Change plan and seats in the portal (issue 14, items 2 and 3).

1. ``GET …/subscriptions/{id}/change-plan`` lists the plans the business lets
   this subscription switch to (``ListPlanOptions``: its plan group), each with
   its price per period, the current one marked; ``GET …/seats`` is the same
   page with the plan fixed, only the number of seats to choose;
2. the choice goes by GET (nothing changes yet) to ``…/change-plan/preview``,
   which asks ``PreviewChangePlan`` and shows what is charged now, what each
   period costs afterwards and from when, with a **Confirm** form carrying the
   same choice, the amount shown and the CSRF token;
3. ``POST …/change-plan`` previews again (an amount the customer did not see is
   never charged: the page is shown again with the new amount), then calls
   ``ChangePlan`` as the customer: upgrades (a dearer period) at once, prorated,
   and refused when the charge fails (``prevent_change``); downgrades as the
   business chose (at the next billing date by default, else at once);
4. a card that asks for 3-D Secure goes to the challenge page, which returns to
   ``…/change-plan/done``; that page re-reads the subscription: changed (the
   new plan and its next renewal), scheduled, still processing (the change
   completes on the payment event), or declined → back to the preview with
   the reason in plain words and the plan as it was.

Double submits: the change's idempotency key derives from the subscription as
it was shown (plan, seats, period, card), the choice and the declined payment
the page was retrying after, so a double click, a second tab or back +
resubmit is one change and one charge, while a retry after a decline is a new
attempt. What the business allows (:func:`portal_settings_of`) is checked on
every route, not only by hiding the buttons.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from billing.payments.v1 import payments_pb2
from billing.subscriptions.v1 import subscriptions_pb2 as subs
from billing_kit.errors import FailedPrecondition, NotFound

from gateway.keys import PAYMENTS_STUB, SUBSCRIPTIONS_STUB
from gateway.web import billing_views as views
from gateway.web import i18n
from gateway.web.billing_forms import valid_id
from gateway.web.billing_scope import Account
from gateway.web.forms import read_form
from gateway.web.login import csrf_failed_error
from gateway.web.portal_settings import PortalSettingsView, not_offered_page, portal_settings_of
from gateway.web.rendering import error_page, redirect, render
from gateway.web.security import CSRF_FIELD, tokens_match
from gateway.web.subscriptions import (
    changeable,
    get_subscription,
    hosted_url,
    links_for,
    list_methods,
    plan_options,
    subscription_id_of,
)

# Without a limit from the business, still a sane bound for a typed number.
MAX_SEATS = 10_000


@dataclass(frozen=True, slots=True)
class Choice:
    """A plan and number of seats the customer picked."""

    product_id: str
    quantity: int


def _paths(account: Account, subscription_id: str) -> dict[str, str]:
    base = f"subscriptions/{subscription_id}"
    return {
        "detail": account.path(base),
        "plans": account.path(f"{base}/change-plan"),
        "seats": account.path(f"{base}/seats"),
        "preview": account.path(f"{base}/change-plan/preview"),
        "confirm": account.path(f"{base}/change-plan"),
        "done": account.path(f"{base}/change-plan/done"),
    }


def _refused(request: web.Request, account: Account) -> web.Response:
    """The business does not let customers do this here: the portal's 403 page."""
    return not_offered_page(request, account, request.match_info["subscription_id"])


def _interval_of(option: Any) -> str:
    return views.interval(
        option.payment_frequency_count, views.enum_name(option, "payment_frequency_interval")
    )


def _option_view(option: Any) -> dict[str, Any]:
    price = views.money(option.unit_price, option.currency)
    return {
        "id": option.product_id,
        "name": option.name,
        "description": option.description if option.HasField("description") else "",
        "price": f"{price} {_interval_of(option)}".strip(),
        "amount": price,
        "every": _interval_of(option),
        "current": option.current,
        "max_quantity": option.max_quantity,
    }


def _max_seats(option: Any | None) -> int:
    if option is None or option.max_quantity <= 0:
        return MAX_SEATS
    return int(option.max_quantity)


def parse_choice(values: Any, sub: Any, options: list[Any], what: str) -> Choice | dict[str, str]:
    """The plan and seats asked for (``values``: query or form), or ``{field: message}``."""
    errors: dict[str, str] = {}
    product_id = sub.product_id if what == "seats" else (values.get("product_id") or "")
    by_id = {o.product_id: o for o in options}
    option = by_id.get(product_id)
    if option is None:
        errors["product_id"] = i18n.gettext("Choose one of the plans.")
    raw = (values.get("quantity") or "").strip()
    quantity = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 6 else 0
    most = _max_seats(option)
    if not 1 <= quantity <= most:
        errors["quantity"] = i18n.gettext("Enter a whole number of seats from 1 to %(max)d.") % {
            "max": most
        }
    if not errors and product_id == sub.product_id and quantity == sub.quantity:
        key = "quantity" if what == "seats" else "product_id"
        errors[key] = i18n.gettext(
            "That is your current plan. Choose a different plan or number of seats."
        )
    if errors:
        return errors
    return Choice(product_id=product_id, quantity=quantity)


def _forbidden_part(sub: Any, choice: Choice, settings: PortalSettingsView) -> str:
    """``"plan"`` / ``"seats"`` when the choice changes what the business does not allow."""
    if choice.product_id != sub.product_id and not settings.allow_plan_change:
        return "plan"
    if choice.quantity != sub.quantity and not settings.allow_quantity_change:
        return "seats"
    return ""


def _is_downgrade(sub: Any, choice: Choice, options: list[Any]) -> bool:
    """A cheaper period than now (plan x seats); the same price counts as an upgrade."""
    by_id = {o.product_id: o for o in options}
    current = by_id.get(sub.product_id)
    before = (
        current.unit_price * sub.quantity if current is not None else sub.recurring_pre_tax_amount
    )
    return int(by_id[choice.product_id].unit_price * choice.quantity) < int(before)


def change_request(
    account: Account,
    sub: Any,
    choice: Choice,
    options: list[Any],
    settings: PortalSettingsView,
    **more: Any,
) -> subs.ChangePlanRequest:
    """The ChangePlan / PreviewChangePlan request of a portal choice.

    Upgrades apply at once, prorated, and a failed charge leaves the plan as it
    was; downgrades follow the business's ``downgrade_timing`` (at the next
    billing date: nothing is charged now; at once: prorated, a credit is not paid
    out). A change already scheduled is replaced by this one (the customer saw it).
    """
    scheduled = _is_downgrade(sub, choice, options) and settings.downgrades_at_next_billing_date
    return subs.ChangePlanRequest(
        **account.scope(),
        subscription_id=sub.subscription_id,
        product_id=choice.product_id,
        quantity=choice.quantity,
        proration_billing_mode=subs.PRORATION_BILLING_MODE_PRORATED_IMMEDIATELY,
        effective_at=(
            subs.PLAN_CHANGE_EFFECTIVE_AT_NEXT_BILLING_DATE
            if scheduled
            else subs.PLAN_CHANGE_EFFECTIVE_AT_IMMEDIATELY
        ),
        on_payment_failure=subs.ON_PAYMENT_FAILURE_PREVENT_CHANGE,
        cancel_scheduled_change_plan=sub.HasField("scheduled_change"),
        **more,
    )


def idempotency_key(sub: Any, choice: Choice, retry_of: str) -> str:
    """One change per (subscription as shown, choice, declined payment it retries after)."""
    parts = (
        sub.subscription_id,
        sub.product_id,
        str(sub.quantity),
        str(sub.next_billing_date.seconds),
        sub.payment_method_id,
        choice.product_id,
        str(choice.quantity),
        retry_of,
    )
    digest = hashlib.sha256("|".join(parts).encode()).hexdigest()
    return f"portal-plan-change-{digest[:40]}"


def shown_fingerprint(preview: Any) -> str:
    """What the Confirm form promised: charged now, currency, and whether it is scheduled."""
    return f"{int(preview.immediate_amount)}-{preview.currency}-{int(preview.scheduled)}"


def _query(choice: Choice, **more: str) -> str:
    return urlencode({"product_id": choice.product_id, "quantity": choice.quantity, **more})


def _what_of(request: web.Request) -> str:
    return "seats" if request.path.rstrip("/").endswith("/seats") else "plan"


def _allowed(settings: PortalSettingsView, what: str) -> bool:
    return settings.allow_quantity_change if what == "seats" else settings.allow_plan_change


async def _render_choose(
    request: web.Request,
    account: Account,
    sub: Any,
    options: list[Any],
    what: str,
    settings: PortalSettingsView,
    *,
    errors: dict[str, str] | None = None,
    chosen: dict[str, str] | None = None,
    status: int = 200,
) -> web.Response:
    paths = _paths(account, sub.subscription_id)
    view = views.subscription_view(sub, {}, links_for(account, sub.subscription_id))
    current = next((o for o in options if o.current), None)
    picked = (chosen or {}).get("product_id") or sub.product_id
    items = [dict(_option_view(o), checked=o.product_id == picked) for o in options]
    return render(
        request,
        "subscription_change_plan.html",
        account.values(
            sub=view,
            what=what,
            options=items,
            other_plans=len(options) > 1,
            possible=changeable(sub),
            seats_editable=settings.allow_quantity_change,
            quantity=(chosen or {}).get("quantity") or str(sub.quantity or 1),
            max_quantity=_max_seats(current),
            current=_option_view(current) if current is not None else None,
            product_id=sub.product_id,
            errors=errors or {},
            action=paths["preview"],
            back_href=paths["detail"],
        ),
        status=status,
    )


async def change_page(request: web.Request, account: Account) -> web.StreamResponse:
    """``GET …/change-plan`` and ``…/seats``: the plans with their prices, the seats."""
    subscription_id = subscription_id_of(request)
    what = _what_of(request)
    settings = portal_settings_of(account.business)
    if not _allowed(settings, what):
        return _refused(request, account)
    sub = await get_subscription(request, account, subscription_id)
    options = await plan_options(request, account, subscription_id)
    return await _render_choose(request, account, sub, options, what, settings)


async def _payment(request: web.Request, account: Account, payment_id: str) -> Any | None:
    if not valid_id(payment_id):
        return None
    try:
        payment = await request.app[PAYMENTS_STUB].GetPayment(
            payments_pb2.GetPaymentRequest(
                business_id=account.business_id,
                mode=account.mode,
                customer_id=account.customer_id,
                payment_id=payment_id,
            )
        )
    except NotFound:
        return None
    return payment


def _preview_values(sub: Any, preview: Any, choice: Choice, options: list[Any]) -> dict[str, Any]:
    new = preview.new_plan
    option = next(o for o in options if o.product_id == choice.product_id)
    every = views.interval(
        new.payment_frequency_count or option.payment_frequency_count,
        views.enum_name(new, "payment_frequency_interval")
        or views.enum_name(option, "payment_frequency_interval"),
    )
    recurring = new.recurring_pre_tax_amount or option.unit_price * choice.quantity
    currency = new.currency or preview.currency or option.currency
    renews = views.timestamp(new, "next_billing_date") or views.timestamp(preview, "effective_at")
    return {
        "plan": option.name,
        "quantity": choice.quantity,
        "seats_changed": choice.quantity != sub.quantity,
        "plan_changed": choice.product_id != sub.product_id,
        "now": views.money(preview.immediate_amount, preview.currency or currency),
        "charged_now": preview.immediate_amount > 0,
        "then": f"{views.money(recurring, currency)} {every}".strip(),
        "effective": views.day(views.timestamp(preview, "effective_at")),
        "next_billing": views.day(renews),
        "scheduled": preview.scheduled,
        "fingerprint": shown_fingerprint(preview),
    }


async def _render_preview(
    request: web.Request,
    account: Account,
    sub: Any,
    options: list[Any],
    choice: Choice,
    settings: PortalSettingsView,
    *,
    decline: str = "",
    retry_of: str = "",
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> web.Response:
    preview = await request.app[SUBSCRIPTIONS_STUB].PreviewChangePlan(
        change_request(account, sub, choice, options, settings)
    )
    paths = _paths(account, sub.subscription_id)
    methods = {m.payment_method_id: m for m in await list_methods(request, account)}
    view = views.subscription_view(sub, methods, links_for(account, sub.subscription_id))
    only_seats = choice.product_id == sub.product_id
    back = paths["seats"] if only_seats and settings.allow_quantity_change else paths["plans"]
    return render(
        request,
        "subscription_change_preview.html",
        account.values(
            sub=view,
            choice=choice,
            card=view.card,
            from_seats=only_seats and settings.allow_quantity_change,
            preview=_preview_values(sub, preview, choice, options),
            decline=decline,
            retry_of=retry_of,
            errors=errors or {},
            action=paths["confirm"],
            back_href=f"{back}?{_query(choice)}",
        ),
        status=status,
    )


async def _checked(
    request: web.Request, account: Account, values: Any
) -> tuple[Any, list[Any], Choice, PortalSettingsView] | web.Response:
    """The subscription, its options and a valid, allowed choice; else the page to answer."""
    subscription_id = subscription_id_of(request)
    settings = portal_settings_of(account.business)
    seats_only = values.get("from") == "seats" or not settings.allow_plan_change
    what = "seats" if seats_only else "plan"
    if not _allowed(settings, what):
        return _refused(request, account)
    sub = await get_subscription(request, account, subscription_id)
    asked = values.get("product_id") or sub.product_id
    if asked != sub.product_id and not settings.allow_plan_change:
        return _refused(request, account)
    options = await plan_options(request, account, subscription_id)
    choice = parse_choice(values, sub, options, what)
    if isinstance(choice, dict):
        chosen = {k: str(values.get(k) or "")[:64] for k in ("product_id", "quantity")}
        return await _render_choose(
            request, account, sub, options, what, settings, errors=choice, chosen=chosen, status=422
        )
    forbidden = _forbidden_part(sub, choice, settings)
    if forbidden:
        return _refused(request, account)
    return sub, options, choice, settings


async def preview_page(request: web.Request, account: Account) -> web.StreamResponse:
    """``GET …/change-plan/preview?product_id=…&quantity=…``: what the change costs."""
    checked = await _checked(request, account, request.query)
    if isinstance(checked, web.Response):
        return checked
    sub, options, choice, settings = checked
    if not changeable(sub):
        return redirect(_paths(account, sub.subscription_id)["detail"])
    decline = ""
    retry_of = ""
    declined = await _payment(request, account, request.query.get("declined", ""))
    if (
        declined is not None
        and declined.subscription_id == sub.subscription_id
        and views.enum_name(declined, "status") == "failed"
    ):
        decline = views.decline_message(declined)
        retry_of = declined.payment_id
    return await _render_preview(
        request, account, sub, options, choice, settings, decline=decline, retry_of=retry_of
    )


def _done_path(account: Account, sub_id: str, choice: Choice, payment_id: str = "") -> str:
    more = {"payment_id": payment_id} if payment_id else {}
    return f"{_paths(account, sub_id)['done']}?{_query(choice, **more)}"


def _already(sub: Any, choice: Choice) -> bool:
    """The subscription already is (or is scheduled to become) the choice: a repeat."""
    if sub.product_id == choice.product_id and sub.quantity == choice.quantity:
        return True
    change = sub.scheduled_change if sub.HasField("scheduled_change") else None
    return bool(
        change is not None
        and change.product_id == choice.product_id
        and change.quantity == choice.quantity
    )


async def confirm(request: web.Request, account: Account) -> web.StreamResponse:
    """``POST …/change-plan``: Confirm → ChangePlan as previewed (303 to the outcome)."""
    form = await read_form(request)
    if not tokens_match(account.csrf_token, form.get(CSRF_FIELD)):
        return error_page(request, 400, csrf_failed_error())
    subscription_id = subscription_id_of(request)
    sub = await get_subscription(request, account, subscription_id)
    choice_values = {"product_id": form.get("product_id", ""), "quantity": form.get("quantity", "")}
    if _already(sub, _loose_choice(choice_values)):
        # Back + resubmit or a second tab after the change went through: its result page.
        return redirect(_done_path(account, subscription_id, _loose_choice(choice_values)))
    checked = await _checked(request, account, choice_values)
    if isinstance(checked, web.Response):
        return checked
    sub, options, choice, settings = checked
    if not changeable(sub):
        raise FailedPrecondition("the subscription cannot change plan now")
    retry_of = form.get("retry_of", "")
    retry_of = retry_of if valid_id(retry_of) else ""
    preview = await request.app[SUBSCRIPTIONS_STUB].PreviewChangePlan(
        change_request(account, sub, choice, options, settings)
    )
    if shown_fingerprint(preview) != form.get("shown", ""):
        errors = {"form": i18n.gettext("The price has changed. Check it and confirm again.")}
        return await _render_preview(
            request, account, sub, options, choice, settings, errors=errors, status=409
        )
    reply = await request.app[SUBSCRIPTIONS_STUB].ChangePlan(
        change_request(
            account,
            sub,
            choice,
            options,
            settings,
            customer_present=True,
            return_url=account.url(
                f"subscriptions/{subscription_id}/change-plan/done?{_query(choice)}"
            ),
            idempotency_key=idempotency_key(sub, choice, retry_of),
        )
    )
    if not reply.HasField("payment") or not reply.payment.payment_id:
        return redirect(_done_path(account, subscription_id, choice))
    payment = reply.payment
    outcome = views.enum_name(payment, "status")
    if outcome == "requires_customer_action":
        challenge = hosted_url(payment.challenge_url)
        if challenge is not None:
            return redirect(challenge)
    if outcome == "failed":
        query = _query(choice, declined=payment.payment_id)
        return redirect(f"{_paths(account, subscription_id)['preview']}?{query}")
    return redirect(_done_path(account, subscription_id, choice, payment.payment_id))


def _loose_choice(values: dict[str, str]) -> Choice:
    raw = values.get("quantity", "")
    quantity = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 6 else 0
    product_id = values.get("product_id", "")
    return Choice(product_id=product_id if valid_id(product_id) else "", quantity=quantity)


async def done_page(request: web.Request, account: Account) -> web.StreamResponse:
    """``GET …/change-plan/done``: changed, scheduled, awaiting the bank, or processing."""
    subscription_id = subscription_id_of(request)
    choice = _loose_choice({k: request.query.get(k, "") for k in ("product_id", "quantity")})
    sub = await get_subscription(request, account, subscription_id)
    payment = await _payment(request, account, request.query.get("payment_id", ""))
    if payment is not None and payment.subscription_id != subscription_id:
        payment = None
    outcome = views.enum_name(payment, "status") if payment is not None else ""
    change = sub.scheduled_change if sub.HasField("scheduled_change") else None
    if sub.product_id == choice.product_id and sub.quantity == choice.quantity:
        state = "changed"
    elif (
        change is not None
        and change.product_id == choice.product_id
        and change.quantity == choice.quantity
    ):
        state = "scheduled"
    elif outcome == "failed" and payment is not None and choice.product_id:
        query = _query(choice, declined=payment.payment_id)
        return redirect(f"{_paths(account, subscription_id)['preview']}?{query}")
    elif outcome == "requires_customer_action":
        state = "challenge"
    elif payment is not None and outcome in ("processing", "succeeded"):
        state = "processing"
    else:
        state = "other"
    view = views.subscription_view(sub, {}, links_for(account, subscription_id))
    challenge = hosted_url(payment.challenge_url) if payment is not None else None
    return render(
        request,
        "subscription_change_done.html",
        account.values(
            sub=view,
            state=state,
            quantity=sub.quantity,
            payment=views.payment_view(payment) if payment is not None else None,
            challenge_href=challenge,
            refresh_href=request.path_qs,
        ),
    )


async def cancel_scheduled(request: web.Request, account: Account) -> web.StreamResponse:
    """``POST …/change-plan/cancel-scheduled``: keep the current plan (a repeat is fine)."""
    subscription_id = subscription_id_of(request)
    form = await read_form(request)
    if not tokens_match(account.csrf_token, form.get(CSRF_FIELD)):
        return error_page(request, 400, csrf_failed_error())
    sub = await get_subscription(request, account, subscription_id)
    done = _paths(account, subscription_id)["detail"] + "?done=change_cancelled"
    if not sub.HasField("scheduled_change"):
        return redirect(done)
    try:
        await request.app[SUBSCRIPTIONS_STUB].CancelScheduledChange(
            subs.CancelScheduledChangeRequest(**account.scope(), subscription_id=subscription_id)
        )
    except FailedPrecondition:
        # A second tab won: nothing is scheduled any more, which is what was asked.
        again = await get_subscription(request, account, subscription_id)
        if again.HasField("scheduled_change"):
            raise
    return redirect(done)
