"""View models of the billing pages: proto messages in, what a template shows out.

Pure functions (no I/O): amounts and dates are formatted in the request's
language with Babel, statuses become a badge (label + tone), and the rules a
page shows — which subscriptions are "past", what can be cancelled, undone or
edited, which saved card may be removed — are decided here, once, so the
per-business and unified pages agree and the rules are unit-tested.

Enum values are read by their proto name (``SUBSCRIPTION_STATUS_ON_HOLD`` →
``on_hold``), which are Dodo's names, so a new enum number never shifts a badge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from babel.numbers import format_currency, get_currency_precision

from gateway.web import i18n
from gateway.web.i18n import N_

# Dodo's CancellationFeedback values, in the order the form offers them.
CANCELLATION_FEEDBACK: tuple[tuple[str, str], ...] = (
    ("too_expensive", N_("It is too expensive")),
    ("missing_features", N_("It is missing features I need")),
    ("switched_service", N_("I switched to another service")),
    ("unused", N_("I don't use it enough")),
    ("customer_service", N_("Customer service was not good enough")),
    ("low_quality", N_("Quality was lower than expected")),
    ("too_complex", N_("It is too complicated to use")),
    ("other", N_("Another reason")),
)
FEEDBACK_VALUES = frozenset(value for value, _ in CANCELLATION_FEEDBACK)

# A subscription in one of these is shown under "Past"; every other one is current.
PAST_STATUSES = frozenset({"cancelled", "expired", "failed"})

_STATUS_BADGES: dict[str, tuple[str, str]] = {
    "pending": (N_("Pending"), "neutral"),
    "active": (N_("Active"), "success"),
    "on_hold": (N_("On hold"), "warning"),
    "paused": (N_("Paused"), "neutral"),
    "past_due": (N_("Past due"), "warning"),
    "cancelled": (N_("Cancelled"), "muted"),
    "expired": (N_("Expired"), "muted"),
    "failed": (N_("Failed"), "danger"),
}

_PAYMENT_BADGES: dict[str, tuple[str, str]] = {
    "succeeded": (N_("Paid"), "success"),
    "failed": (N_("Failed"), "danger"),
    "processing": (N_("Processing"), "neutral"),
    "requires_customer_action": (N_("Needs your action"), "warning"),
    "cancelled": (N_("Cancelled"), "muted"),
}

_CHARGE_TYPES: dict[str, str] = {
    "new": N_("First payment"),
    "renewal": N_("Renewal"),
    "on_demand": N_("Charge"),
    "plan_change": N_("Plan change"),
}

_PER_ONE: dict[str, str] = {
    "day": N_("per day"),
    "week": N_("per week"),
    "month": N_("per month"),
    "year": N_("per year"),
}

_BRANDS = {
    "visa": "Visa",
    "mastercard": "Mastercard",
    "amex": "American Express",
    "american_express": "American Express",
    "discover": "Discover",
    "diners": "Diners Club",
    "jcb": "JCB",
    "unionpay": "UnionPay",
    "maestro": "Maestro",
}


def enum_name(message: Any, field_name: str) -> str:
    """A proto enum field's value as Dodo's lower-case name (``ON_HOLD`` → ``on_hold``).

    The generated names carry the enum's name as a prefix
    (``SUBSCRIPTION_STATUS_ON_HOLD``); the prefix is dropped. Unknown or
    unspecified values read as ``""``.
    """
    descriptor = message.DESCRIPTOR.fields_by_name[field_name]
    enum_type = descriptor.enum_type
    value = enum_type.values_by_number.get(getattr(message, field_name))
    if value is None:
        return ""
    prefix = "".join(
        ("_" + char if char.isupper() and index else char)
        for index, char in enumerate(enum_type.name)
    ).upper()
    name: str = value.name
    name = name.removeprefix(prefix + "_")
    return "" if name == "UNSPECIFIED" else name.lower()


# List pages format the same few prices and dates on every row and every request;
# Babel parses the locale's patterns on each call, which made formatting the
# largest per-row cost of a 20-business unified page (bench/README.md). Bounded
# caches keyed by (value, language) keep the output identical.
_FORMAT_CACHE_SIZE = 4096


@lru_cache(maxsize=64)
def _locale_of(lang: str) -> Locale:
    try:
        return Locale.parse(lang)
    except (UnknownLocaleError, ValueError):
        return Locale.parse(i18n.DEFAULT)


def _locale() -> Locale:
    return _locale_of(i18n.current_lang())


@lru_cache(maxsize=_FORMAT_CACHE_SIZE)
def _money(amount_minor: int, code: str, lang: str) -> str:
    digits = get_currency_precision(code)
    value = Decimal(amount_minor).scaleb(-digits)
    return format_currency(value, code, locale=_locale_of(lang))


def money(amount_minor: int, currency: str) -> str:
    """Integer minor units as money in the current language (``€ 9,99``, ``$9.99``)."""
    code = (currency or "").upper()
    if not code:
        return str(amount_minor)
    return _money(int(amount_minor), code, i18n.current_lang())


def interval(count: int, unit: str) -> str:
    """``per month`` / ``every 3 months`` in the current language (unit is Dodo's, any case)."""
    key = (unit or "").lower()
    if key not in _PER_ONE:
        return ""
    if count <= 1:
        return i18n.gettext(_PER_ONE[key])
    # One literal call per unit, so that extraction sees every plural form.
    if key == "day":
        text = i18n.ngettext("every %(num)d day", "every %(num)d days", count)
    elif key == "week":
        text = i18n.ngettext("every %(num)d week", "every %(num)d weeks", count)
    elif key == "month":
        text = i18n.ngettext("every %(num)d month", "every %(num)d months", count)
    else:
        text = i18n.ngettext("every %(num)d year", "every %(num)d years", count)
    return text % {"num": count}


def day(value: datetime | None) -> str:
    """A date (no time) in the current language, UTC as stored; ``""`` for none."""
    if value is None:
        return ""
    return _day(value.astimezone(UTC).date(), i18n.current_lang())


@lru_cache(maxsize=_FORMAT_CACHE_SIZE)
def _day(when: date, lang: str) -> str:
    return format_date(when, "medium", locale=_locale_of(lang))


def timestamp(message: Any, field_name: str) -> datetime | None:
    """A ``google.protobuf.Timestamp`` field as an aware UTC datetime, None when unset."""
    if not message.HasField(field_name):
        return None
    when: datetime = getattr(message, field_name).ToDatetime(tzinfo=UTC)
    return when


def card_label(brand: str, last4: str) -> str:
    """``Visa •••• 4242`` (the brand as people write it)."""
    if not last4:
        return ""
    name = _BRANDS.get((brand or "").lower(), (brand or i18n.gettext("Card")).title())
    return f"{name} •••• {last4}"


def badge(status: str, table: dict[str, tuple[str, str]]) -> dict[str, str]:
    """``{"label", "tone", "status"}`` of a status (tone picks the badge colour)."""
    label, tone = table.get(status, (status.replace("_", " ").capitalize() or "—", "neutral"))
    return {"label": i18n.gettext(label), "tone": tone, "status": status}


@dataclass(frozen=True, slots=True)
class Links:
    """Where a row's actions go: built by the page (per-business or unified)."""

    detail: str
    cancel: str
    payment_method: str
    # Confirmation pages of pause and resume ("" where the page offers none).
    pause: str = ""
    resume: str = ""
    # The change plan and seats pages ("" where the page offers none).
    change_plan: str = ""
    seats: str = ""


@dataclass(slots=True)
class SubscriptionView:
    """One subscription as its row, detail header and action buttons show it."""

    subscription_id: str
    product_name: str
    status: dict[str, str]
    price: str
    date_label: str
    date: str
    card: str
    links: Links
    is_past: bool
    can_cancel: bool
    cancel_scheduled: bool
    needs_payment: bool
    amount_due: str
    cancellation: dict[str, str] = field(default_factory=dict)
    business: Any = None
    can_pause: bool = False
    can_resume: bool = False
    # Whole days of the paid period kept for after a resume (paused ones only).
    paused_days_left: int = 0
    # Set by the page from what the business allows (see plan_change.offer_changes).
    can_change_plan: bool = False
    can_change_seats: bool = False
    # The plan offers add-ons and the business lets customers change quantities.
    can_change_addons: bool = False
    quantity: int = 1
    # A plan change waiting for the next billing date: plan, quantity, date, price,
    # and its add-ons (name, quantity).
    scheduled_change: dict[str, Any] = field(default_factory=dict)
    # The add-ons paid each period: id, name, quantity, price (per period, in the locale).
    addons: list[dict[str, Any]] = field(default_factory=list)


def subscription_view(
    sub: Any,
    methods: dict[str, Any],
    links: Links,
    business: Any = None,
    *,
    cancel_offered: bool = True,
    pause_offered: bool = True,
) -> SubscriptionView:
    """A ``subscriptions.v1.Subscription`` as the pages show it.

    ``methods``: the customer's saved methods by id (to show brand and last 4
    of the one the subscription uses). ``cancel_offered`` / ``pause_offered``:
    whether the business lets customers cancel / pause in the portal (its
    portal settings); undo of a scheduled cancellation and resume of a paused
    subscription do not depend on them. The date shown is the next renewal for
    a renewing subscription, the end date when a cancellation is scheduled,
    the day it ended for a past one.
    """
    status = enum_name(sub, "status")
    is_past = status in PAST_STATUSES
    next_billing = timestamp(sub, "next_billing_date")
    cancel_scheduled = bool(sub.cancel_at_next_billing_date) and not is_past
    if is_past:
        ended = (
            timestamp(sub, "cancelled_at")
            or timestamp(sub, "expires_at")
            or timestamp(sub, "next_billing_date")
        )
        date_label, date = i18n.gettext("Ended on"), day(ended)
    elif cancel_scheduled:
        date_label, date = i18n.gettext("Ends on"), day(next_billing)
    elif status == "on_hold":
        date_label, date = i18n.gettext("Payment due since"), day(next_billing)
    elif status == "paused":
        date_label, date = i18n.gettext("Paused since"), day(timestamp(sub, "paused_at"))
    elif next_billing is not None:
        date_label, date = i18n.gettext("Renews on"), day(next_billing)
    else:
        date_label, date = "", ""
    method = methods.get(sub.payment_method_id) if sub.payment_method_id else None
    amount = money(sub.recurring_pre_tax_amount, sub.currency)
    every = interval(sub.payment_frequency_count, enum_name(sub, "payment_frequency_interval"))
    cancellation: dict[str, str] = {}
    reason = dict(CANCELLATION_FEEDBACK).get(enum_name(sub, "cancellation_feedback"))
    if reason:
        cancellation["reason"] = i18n.gettext(reason)
    if sub.cancellation_comment:
        cancellation["comment"] = sub.cancellation_comment
    due = int(sub.amount_due) if status == "on_hold" else 0
    paused_at = timestamp(sub, "paused_at") if status == "paused" else None
    days_left = 0
    if paused_at is not None and next_billing is not None and next_billing > paused_at:
        # The resume rule credits the unused paid time (subscriptions README).
        days_left = (next_billing - paused_at).days
    return SubscriptionView(
        subscription_id=sub.subscription_id,
        product_name=sub.product_name or sub.product_id,
        status=badge(status, _STATUS_BADGES),
        price=f"{amount} {every}".strip(),
        date_label=date_label,
        date=date,
        card=card_label(method.brand, method.last4) if method is not None else "",
        links=links,
        is_past=is_past,
        can_cancel=cancel_offered
        and status in ("active", "on_hold", "paused", "past_due", "pending")
        and not cancel_scheduled,
        cancel_scheduled=cancel_scheduled,
        needs_payment=status == "on_hold",
        amount_due=money(due, sub.currency) if due > 0 else "",
        cancellation=cancellation,
        business=business,
        can_pause=pause_offered
        and status == "active"
        and not cancel_scheduled
        and bool(links.pause),
        can_resume=status == "paused" and bool(links.resume),
        paused_days_left=days_left,
        quantity=int(sub.quantity) or 1,
        scheduled_change=_scheduled_change(sub, every) if not is_past else {},
        addons=[
            {
                "id": a.addon_id,
                "name": a.name or a.addon_id,
                "quantity": int(a.quantity),
                "price": f"{money(a.unit_price * a.quantity, sub.currency)} {every}".strip(),
            }
            for a in sub.addons
            if a.quantity > 0
        ],
    )


def _scheduled_change(sub: Any, every: str) -> dict[str, Any]:
    """The subscription's scheduled plan change as the detail page states it ({} for none)."""
    if not sub.HasField("scheduled_change"):
        return {}
    change = sub.scheduled_change
    # The change names only ids: the names are the subscription's (a page that knows the
    # plans' offers fills in the others, see subscriptions.name_scheduled_addons).
    names = {a.addon_id: a.name for a in sub.addons}
    return {
        "plan": change.product_name or change.product_id,
        "quantity": int(change.quantity) or 1,
        "addons": [
            {"id": a.addon_id, "name": names.get(a.addon_id) or a.addon_id, "quantity": a.quantity}
            for a in change.addons
            if a.quantity > 0
        ],
        # Whether the subscription has add-ons now (then "no add-ons" is worth saying).
        "had_addons": any(a.quantity > 0 for a in sub.addons),
        "date": day(timestamp(change, "effective_at")),
        "price": f"{money(change.recurring_pre_tax_amount, sub.currency)} {every}".strip(),
    }


def split_current_and_past(
    views: list[SubscriptionView],
) -> tuple[list[SubscriptionView], list[SubscriptionView]]:
    """(current, past): on-hold ones first among the current (they need the customer)."""
    current = [v for v in views if not v.is_past]
    current.sort(key=lambda v: not v.needs_payment)
    return current, [v for v in views if v.is_past]


@dataclass(slots=True)
class PaymentView:
    """One payment as a row of a payments list."""

    payment_id: str
    date: str
    amount: str
    status: dict[str, str]
    kind: str
    card: str
    error: str
    subscription_id: str
    business: Any = None


def payment_view(payment: Any, business: Any = None) -> PaymentView:
    """A ``payments.v1.Payment`` as a row (the decline reason in its own words)."""
    status = enum_name(payment, "status")
    kind = _CHARGE_TYPES.get(enum_name(payment, "charge_type"), "")
    return PaymentView(
        payment_id=payment.payment_id,
        date=day(timestamp(payment, "created_at")),
        amount=money(payment.total_amount, payment.currency),
        status=badge(status, _PAYMENT_BADGES),
        kind=i18n.gettext(kind) if kind else "",
        card=card_label(payment.card_brand, payment.card_last_four),
        error=decline_message(payment) if status == "failed" else "",
        subscription_id=payment.subscription_id,
        business=business,
    )


@dataclass(slots=True)
class MethodView:
    """A saved card, with what may be done to it."""

    payment_method_id: str
    label: str
    expiry: str
    is_default: bool
    used_by: list[str]
    removable: bool
    business: Any = None


def method_view(
    method: Any, *, default_id: str, used_by: list[str], business: Any = None
) -> MethodView:
    """A ``payments.v1.PaymentMethod``; ``used_by``: product names of the current
    subscriptions that charge it (such a card needs a replacement before removal)."""
    expiry = ""
    if method.expiry_month and method.expiry_year:
        expiry = f"{method.expiry_month:02d}/{method.expiry_year % 100:02d}"
    return MethodView(
        payment_method_id=method.payment_method_id,
        label=card_label(method.brand, method.last4),
        expiry=expiry,
        is_default=method.payment_method_id == default_id,
        used_by=used_by,
        removable=not used_by,
        business=business,
    )


def methods_in_use(subscriptions: list[Any]) -> dict[str, list[str]]:
    """Payment method id → product names of the current subscriptions charging it."""
    used: dict[str, list[str]] = {}
    for sub in subscriptions:
        if enum_name(sub, "status") in PAST_STATUSES or not sub.payment_method_id:
            continue
        used.setdefault(sub.payment_method_id, []).append(sub.product_name or sub.product_id)
    return used


# Plain words for the processors' decline codes (Dodo/Stripe style codes).
_DECLINES: dict[str, str] = {
    "card_declined": N_("Your card was declined. Try another card."),
    "insufficient_funds": N_("Your card has insufficient funds. Try another card."),
    "expired_card": N_("Your card has expired. Try another card."),
    "requires_customer_action": N_(
        "Your bank needs you to confirm this payment, and it was not confirmed."
    ),
    "authentication_failed": N_(
        "Your bank could not confirm this payment. Try again or use another card."
    ),
}


def decline_message(payment: Any) -> str:
    """Why a payment failed, in plain words in the current language."""
    known = _DECLINES.get(payment.error_code)
    if known:
        return i18n.gettext(known)
    return i18n.gettext("The payment did not go through. Try another card.")
