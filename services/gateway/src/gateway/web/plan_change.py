"""Change plan and seats in the portal (issue 14, items 2 and 3).

1. ``GET …/subscriptions/{id}/change-plan`` lists the plans the business lets
   this subscription switch to (``ListPlanOptions``: its plan group), each with
   its price per period, the current one marked; ``GET …/seats`` is the same
   page with the plan fixed, only the number of seats to choose. Both have one
   quantity field per add-on (``addon_<id>``, 0 = none) when add-ons are
   offered: the seats page the current plan's, the plan page every plan's;
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

Add-ons: ``ChangePlanRequest.addons`` replaces the subscription's (as Dodo:
empty removes them), so every request carries the add-ons the customer keeps;
a form without an add-on's field keeps its current quantity.

Double submits: the change's idempotency key derives from the subscription as
it was shown (plan, seats, add-ons, period, card), the choice and the declined payment
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
    name_scheduled_addons,
    plan_options,
    subscription_id_of,
)

# Without a limit from the business, still a sane bound for a typed number.
MAX_SEATS = 10_000
# An add-on's quantity field is ``addon_<addon id>`` (0 = none).
ADDON_PREFIX = "addon_"


@dataclass(frozen=True, slots=True)
class Choice:
    """A plan, number of seats and add-on quantities the customer picked.

    ``addons`` holds every add-on the form showed, zeros included, so that a
    link or form built from it says "none" for an add-on the customer removed
    (a missing field keeps the current quantity, see :func:`parse_choice`).
    """

    product_id: str
    quantity: int
    addons: tuple[tuple[str, int], ...] = ()

    @property
    def kept(self) -> dict[str, int]:
        """The add-ons the subscription has after the change: id → quantity (> 0)."""
        return {addon_id: n for addon_id, n in self.addons if n > 0}


@dataclass(frozen=True, slots=True)
class AddonRow:
    """One add-on the page offers: from the plans' offers, or one the subscription has."""

    addon_id: str
    name: str
    description: str
    unit_price: int
    max_quantity: int
    # The plans offering it (product id → name), in the page's order.
    offered_by: dict[str, str]
    current: int

    @property
    def field(self) -> str:
        """The form field of its quantity."""
        return f"{ADDON_PREFIX}{self.addon_id}"

    @property
    def most(self) -> int:
        """The largest quantity accepted (the business's limit, else a sane bound)."""
        return int(self.max_quantity) if self.max_quantity > 0 else MAX_SEATS


def current_addons(sub: Any) -> dict[str, int]:
    """The subscription's add-ons now: id → quantity (> 0)."""
    return {a.addon_id: int(a.quantity) for a in sub.addons if a.quantity > 0}


def addon_rows(sub: Any, options: list[Any]) -> list[AddonRow]:
    """The add-ons offered by ``options`` (in their order, each once) and then any the
    subscription has that none of them offers (so the customer can set it to 0)."""
    have = current_addons(sub)
    found: dict[str, Any] = {}
    offered_by: dict[str, dict[str, str]] = {}
    for option in options:
        for addon in option.addons:
            found.setdefault(addon.addon_id, addon)
            offered_by.setdefault(addon.addon_id, {})[option.product_id] = option.name
    rows = [
        AddonRow(
            addon_id=a.addon_id,
            name=a.name,
            description=a.description if a.HasField("description") else "",
            unit_price=int(a.unit_price),
            max_quantity=int(a.max_quantity),
            offered_by=offered_by[a.addon_id],
            current=have.get(a.addon_id, 0),
        )
        for a in found.values()
    ]
    rows += [
        AddonRow(
            addon_id=a.addon_id,
            name=a.name,
            description="",
            unit_price=int(a.unit_price),
            max_quantity=0,
            offered_by={},
            current=int(a.quantity),
        )
        for a in sub.addons
        if a.addon_id not in found and a.quantity > 0
    ]
    return rows


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


def _parse_addons(
    values: Any, sub: Any, options: list[Any], option: Any | None, errors: dict[str, str]
) -> tuple[tuple[str, int], ...]:
    """The add-on quantities asked for; problems go into ``errors`` by field.

    A field left out keeps the current quantity (a form that does not show
    add-ons never removes them), an empty one means none; an ``addon_…``
    field naming an add-on no plan here offers is refused as a whole.
    """
    rows = addon_rows(sub, options)
    known = {row.field for row in rows}
    if any(k.startswith(ADDON_PREFIX) and k not in known for k in values):
        errors["addons"] = i18n.gettext("Choose only the add-ons offered with your plan.")
    offered = {a.addon_id for a in option.addons} if option is not None else set()
    plan_name = option.name if option is not None else ""
    chosen: list[tuple[str, int]] = []
    for row in rows:
        raw = values.get(row.field)
        if raw is None:
            quantity = row.current
        else:
            raw = raw.strip()
            ok = raw == "" or (raw.isascii() and raw.isdigit() and len(raw) <= 6)
            quantity = int(raw) if ok and raw else 0
            if not ok or quantity > row.most:
                errors[row.field] = i18n.gettext(
                    "Enter a whole number from 0 to %(max)d (0 for none)."
                ) % {"max": row.most}
                continue
        if quantity > 0 and option is not None and row.addon_id not in offered:
            errors[row.field] = i18n.gettext(
                "%(plan)s does not offer this add-on: set it to 0 to switch."
            ) % {"plan": plan_name}
            continue
        chosen.append((row.addon_id, quantity))
    return tuple(chosen)


def parse_choice(values: Any, sub: Any, options: list[Any], what: str) -> Choice | dict[str, str]:
    """The plan, seats and add-ons asked for (``values``: query or form), or
    ``{field: message}``."""
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
    addons = _parse_addons(values, sub, _shown_options(sub, options, what), option, errors)
    choice = Choice(product_id=product_id, quantity=quantity, addons=addons)
    if not errors and _same(sub, choice):
        key = "quantity" if what == "seats" else "product_id"
        errors[key] = (
            i18n.gettext(
                "That is your current plan. Change the plan, the number of seats or the add-ons."
            )
            if addons
            else i18n.gettext(
                "That is your current plan. Choose a different plan or number of seats."
            )
        )
    if errors:
        return errors
    return choice


def _shown_options(sub: Any, options: list[Any], what: str) -> list[Any]:
    """The plans whose add-ons the page offers (the current one on the seats page)."""
    if what == "seats":
        return [o for o in options if o.product_id == sub.product_id]
    return options


def _same(sub: Any, choice: Choice) -> bool:
    """The choice is the subscription as it is: plan, seats and add-ons."""
    return (
        choice.product_id == sub.product_id
        and choice.quantity == sub.quantity
        and choice.kept == current_addons(sub)
    )


def _forbidden_part(sub: Any, choice: Choice, settings: PortalSettingsView) -> str:
    """``"plan"`` / ``"seats"`` when the choice changes what the business does not allow."""
    if choice.product_id != sub.product_id and not settings.allow_plan_change:
        return "plan"
    changed_addons = choice.kept != current_addons(sub)
    if (choice.quantity != sub.quantity or changed_addons) and not settings.allow_quantity_change:
        return "seats"
    return ""


def _period_price(option: Any, quantity: int, addons: dict[str, int]) -> int:
    """One period of a plan at ``quantity`` seats with ``addons`` at its offered prices."""
    prices = {a.addon_id: int(a.unit_price) for a in option.addons}
    return int(option.unit_price) * quantity + sum(
        prices.get(addon_id, 0) * n for addon_id, n in addons.items()
    )


def _is_downgrade(sub: Any, choice: Choice, options: list[Any]) -> bool:
    """A cheaper period than now (plan x seats + add-ons); the same price counts as an
    upgrade, so adding add-ons applies at once and removing them waits like a downgrade."""
    by_id = {o.product_id: o for o in options}
    current = by_id.get(sub.product_id)
    before = (
        _period_price(current, sub.quantity, current_addons(sub))
        if current is not None
        else sub.recurring_pre_tax_amount
    )
    after = _period_price(by_id[choice.product_id], choice.quantity, choice.kept)
    return after < int(before)


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
        # Dodo's rule: the add-ons sent replace the subscription's, so the kept ones go too.
        addons=[subs.AddonQuantity(addon_id=i, quantity=n) for i, n in choice.kept.items()],
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


def _addons_key(addons: dict[str, int]) -> str:
    return ",".join(f"{i}:{n}" for i, n in sorted(addons.items()))


def idempotency_key(sub: Any, choice: Choice, retry_of: str) -> str:
    """One change per (subscription as shown, choice, declined payment it retries after)."""
    parts = (
        sub.subscription_id,
        sub.product_id,
        str(sub.quantity),
        _addons_key(current_addons(sub)),
        str(sub.next_billing_date.seconds),
        sub.payment_method_id,
        choice.product_id,
        str(choice.quantity),
        _addons_key(choice.kept),
        retry_of,
    )
    digest = hashlib.sha256("|".join(parts).encode()).hexdigest()
    return f"portal-plan-change-{digest[:40]}"


def shown_fingerprint(preview: Any) -> str:
    """What the Confirm form promised: charged now, currency, whether it is scheduled, the
    new price per period and each add-on's unit price (so a changed add-on price is caught
    even when nothing is charged now). Only full-period prices go in besides the charge,
    so the seconds between preview and Confirm change nothing the charge does not."""
    addons = sorted(
        f"{line.id}:{int(line.quantity)}:{int(line.unit_price)}"
        for line in preview.line_items
        if line.type == "addon" and line.amount >= 0
    )
    addons += sorted(
        f"{a.addon_id}:{int(a.quantity)}:{int(a.unit_price)}" for a in preview.new_plan.addons
    )
    digest = hashlib.sha256("|".join(addons).encode()).hexdigest()[:12]
    return (
        f"{int(preview.immediate_amount)}-{preview.currency}-{int(preview.scheduled)}"
        f"-{int(preview.new_plan.recurring_pre_tax_amount)}-{digest}"
    )


def _query(choice: Choice, **more: str) -> str:
    addons = {f"{ADDON_PREFIX}{i}": str(n) for i, n in choice.addons}
    return urlencode(
        {"product_id": choice.product_id, "quantity": choice.quantity, **addons, **more}
    )


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
    every = _interval_of(current) if current is not None else ""
    addons = [
        _addon_input(
            row,
            (chosen or {}).get(row.field),
            sub.currency,
            every,
            all_plans=len(_shown_options(sub, options, what)),
        )
        for row in addon_rows(sub, _shown_options(sub, options, what))
    ]
    errors = dict(errors or {})
    if not settings.allow_quantity_change:
        # The add-ons are hidden fields here: say what is wrong next to the plans.
        hidden = [m for k, m in errors.items() if k.startswith(ADDON_PREFIX) or k == "addons"]
        if hidden and "product_id" not in errors:
            errors["product_id"] = hidden[0]
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
            addons=addons,
            product_id=sub.product_id,
            errors=errors,
            action=paths["preview"],
            back_href=paths["detail"],
        ),
        status=status,
    )


def _typed(values: Any) -> dict[str, str]:
    """What the customer typed, to show again in the fields (bounded; autoescaped)."""
    fields = [k for k in ("product_id", "quantity") if k in values]
    fields += [k for k in values if k.startswith(ADDON_PREFIX) and valid_id(k)]
    return {k: str(values.get(k) or "")[:64] for k in fields}


def _addon_input(
    row: AddonRow, typed: str | None, currency: str, every: str, *, all_plans: int
) -> dict[str, Any]:
    """An add-on's quantity field as the page shows it (what was typed, else the current)."""
    # Name the plans offering it only when some plan on the page does not.
    only = list(row.offered_by.values()) if 0 < len(row.offered_by) < all_plans else []
    return {
        "id": row.addon_id,
        "field": row.field,
        "input_id": f"addon-{row.addon_id}",
        "name": row.name,
        "description": row.description,
        "price": views.money(row.unit_price, currency),
        "every": every,
        "max_quantity": row.max_quantity,
        "value": typed if typed is not None else str(row.current),
        "only_on": ", ".join(only),
        "not_offered": not row.offered_by,
    }


async def change_page(request: web.Request, account: Account) -> web.StreamResponse:
    """``GET …/change-plan`` and ``…/seats``: the plans with their prices, the seats and
    add-ons; the preview's "Choose again" link brings the choice back in the query."""
    subscription_id = subscription_id_of(request)
    what = _what_of(request)
    settings = portal_settings_of(account.business)
    if not _allowed(settings, what):
        return _refused(request, account)
    sub = await get_subscription(request, account, subscription_id)
    options = await plan_options(request, account, subscription_id)
    return await _render_choose(
        request, account, sub, options, what, settings, chosen=_typed(request.query)
    )


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


def _line_view(line: Any, currency: str) -> dict[str, Any]:
    """A preview line: what it is for, and its amount (a credit shown as one, unsigned)."""
    amount = int(line.amount)
    return {
        "kind": line.type,
        "name": line.name or line.id,
        "quantity": int(line.quantity) or 1,
        "credit": amount < 0,
        "amount": views.money(abs(amount), line.currency or currency),
    }


def _addons_view(
    addons: Any, names: dict[str, str], currency: str, every: str
) -> list[dict[str, Any]]:
    """Add-ons with their price per period: ``addons`` are SubscriptionAddon-like."""
    return [
        {
            "id": a.addon_id,
            "name": a.name or names.get(a.addon_id, a.addon_id),
            "quantity": int(a.quantity),
            "price": f"{views.money(a.unit_price * a.quantity, currency)} {every}".strip(),
        }
        for a in addons
        if a.quantity > 0
    ]


def _preview_values(sub: Any, preview: Any, choice: Choice, options: list[Any]) -> dict[str, Any]:
    new = preview.new_plan
    option = next(o for o in options if o.product_id == choice.product_id)
    every = views.interval(
        new.payment_frequency_count or option.payment_frequency_count,
        views.enum_name(new, "payment_frequency_interval")
        or views.enum_name(option, "payment_frequency_interval"),
    )
    recurring = new.recurring_pre_tax_amount or _period_price(option, choice.quantity, choice.kept)
    currency = new.currency or preview.currency or option.currency
    # The add-ons after the change: the service's snapshot, else the offer's prices.
    offered = {a.addon_id: a for a in option.addons}
    after = list(new.addons) or [
        subs.SubscriptionAddon(
            addon_id=i, name=offered[i].name, quantity=n, unit_price=offered[i].unit_price
        )
        for i, n in choice.kept.items()
        if i in offered
    ]
    renews = views.timestamp(new, "next_billing_date") or views.timestamp(preview, "effective_at")
    return {
        "plan": option.name,
        "quantity": choice.quantity,
        "seats_changed": choice.quantity != sub.quantity,
        "plan_changed": choice.product_id != sub.product_id,
        "addons": _addons_view(after, {}, currency, every),
        "addons_before": _addons_view(sub.addons, {}, sub.currency, every),
        "lines": [_line_view(line, currency) for line in preview.line_items],
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
        chosen = _typed(values)
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
    return _same(sub, choice) or _scheduled_is(sub, choice)


def _scheduled_is(sub: Any, choice: Choice) -> bool:
    """The change scheduled on the subscription is this choice (plan, seats, add-ons)."""
    if not sub.HasField("scheduled_change"):
        return False
    change = sub.scheduled_change
    addons = {a.addon_id: int(a.quantity) for a in change.addons if a.quantity > 0}
    return (
        change.product_id == choice.product_id
        and change.quantity == choice.quantity
        and addons == choice.kept
    )


async def confirm(request: web.Request, account: Account) -> web.StreamResponse:
    """``POST …/change-plan``: Confirm → ChangePlan as previewed (303 to the outcome)."""
    form = await read_form(request)
    if not tokens_match(account.csrf_token, form.get(CSRF_FIELD)):
        return error_page(request, 400, csrf_failed_error())
    subscription_id = subscription_id_of(request)
    sub = await get_subscription(request, account, subscription_id)
    choice_values = {
        k: v
        for k, v in form.items()
        if k in ("product_id", "quantity") or k.startswith(ADDON_PREFIX)
    }
    choice_values.setdefault("product_id", "")
    choice_values.setdefault("quantity", "")
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


def _number(raw: str) -> int:
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 6 else 0


def _loose_choice(values: Any) -> Choice:
    """The choice a link or form names, unchecked: only compared with the subscription."""
    product_id = values.get("product_id", "")
    addons = tuple(
        (key.removeprefix(ADDON_PREFIX), _number(values.get(key, "")))
        for key in values
        if key.startswith(ADDON_PREFIX) and valid_id(key.removeprefix(ADDON_PREFIX))
    )
    return Choice(
        product_id=product_id if valid_id(product_id) else "",
        quantity=_number(values.get("quantity", "")),
        addons=addons,
    )


async def done_page(request: web.Request, account: Account) -> web.StreamResponse:
    """``GET …/change-plan/done``: changed, scheduled, awaiting the bank, or processing."""
    subscription_id = subscription_id_of(request)
    choice = _loose_choice(request.query)
    sub = await get_subscription(request, account, subscription_id)
    payment = await _payment(request, account, request.query.get("payment_id", ""))
    if payment is not None and payment.subscription_id != subscription_id:
        payment = None
    outcome = views.enum_name(payment, "status") if payment is not None else ""
    if _same(sub, choice):
        state = "changed"
    elif _scheduled_is(sub, choice):
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
    if state == "scheduled" and any(
        a["name"] == a["id"] for a in view.scheduled_change.get("addons", [])
    ):
        # Add-ons new with the change are named by the plans' offers only.
        name_scheduled_addons(view, await plan_options(request, account, subscription_id))
    challenge = hosted_url(payment.challenge_url) if payment is not None else None
    every = _interval_of(sub)
    return render(
        request,
        "subscription_change_done.html",
        account.values(
            sub=view,
            state=state,
            quantity=sub.quantity,
            addons=_addons_view(sub.addons, {}, sub.currency, every),
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
