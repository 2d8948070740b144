"""Billing periods and dues: the one place that decides which period is charged.

Rules (also in the service README):

* Periods are numbered from an anchor: ``boundary(n) = anchor + (n - anchor_period)
  x payment interval``, computed from the anchor every time (never by adding
  to the previous date), so 31 January renews on 28/29 February and then on
  31 March again instead of drifting to the 28th.
* A renewal charges period ``period + 1`` (it starts at ``next_billing_date``);
  its idempotency key is ``(subscription, period start)``, so a retried or
  duplicated renewal returns the same payment instead of charging again.
* A subscription that was down (scheduler stopped, clock advanced) catches up
  one charge per missed period, oldest first, each with its own key.
* When a renewal fails the subscription goes ``on_hold`` and the unpaid period
  is not served. Its **dues** are one period's price (``recurring_pre_tax_amount``).
  Paying them starts a fresh period at the moment of payment (the anchor moves
  there) and the next renewal is one interval later: the time spent on hold is
  neither charged nor given away. Each attempt to pay the dues of one hold
  uses the key ``(subscription, unpaid period, attempt)``; the attempt number
  only moves after a decline (which charged nothing), so a repeated request
  can never pay the same dues twice.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime, timedelta

from subscriptions.subscriptions.models import Subscription, TimeInterval


def add_intervals(start: datetime, count: int, interval: TimeInterval) -> datetime:
    """``start`` moved by ``count`` intervals (negative: back); months clamp to the last day."""
    if interval is TimeInterval.DAY:
        return start + timedelta(days=count)
    if interval is TimeInterval.WEEK:
        return start + timedelta(weeks=count)
    months = count * (12 if interval is TimeInterval.YEAR else 1)
    index = start.year * 12 + (start.month - 1) + months
    year, month = divmod(index, 12)
    day = min(start.day, calendar.monthrange(year, month + 1)[1])
    return start.replace(year=year, month=month + 1, day=day)


def boundary(sub: Subscription, n: int) -> datetime:
    """When period ``n`` of ``sub`` starts."""
    if sub.billing_anchor is None:
        raise ValueError("subscription has no billing anchor")
    steps = (n - sub.anchor_period) * sub.payment_frequency_count
    return add_intervals(sub.billing_anchor, steps, sub.payment_frequency_interval)


def renewal_key(sub: Subscription) -> str:
    """Idempotency key of the renewal charge of the next period (subscription, period start)."""
    start = boundary(sub, sub.period + 1)
    return f"{sub.subscription_id}:renewal:{start.isoformat()}"


def first_charge_key(subscription_id: str) -> str:
    """Idempotency key of the first period's charge at creation."""
    return f"{subscription_id}:period:0"


@dataclass(frozen=True)
class Dues:
    """What an on_hold subscription owes and what paying it buys."""

    amount: int
    currency: str
    unpaid_period: int
    period_start: datetime
    period_end: datetime
    idempotency_key: str


def dues_of(sub: Subscription, now: datetime) -> Dues:
    """The dues of an on_hold ``sub`` if paid at ``now`` (see the module rules)."""
    period_end = add_intervals(now, sub.payment_frequency_count, sub.payment_frequency_interval)
    unpaid = sub.period + 1
    return Dues(
        amount=sub.recurring_pre_tax_amount,
        currency=sub.currency,
        unpaid_period=unpaid,
        period_start=now,
        period_end=period_end,
        idempotency_key=f"{sub.subscription_id}:dues:{unpaid}:attempt:{sub.dues_attempts}",
    )


def after_paid_dues(sub: Subscription, dues: Dues) -> dict[str, object]:
    """The fields that change when ``dues`` are paid: re-anchored at the payment time."""
    return {
        "billing_anchor": dues.period_start,
        "anchor_period": dues.unpaid_period,
        "period": dues.unpaid_period,
        "previous_billing_date": dues.period_start,
        "next_billing_date": dues.period_end,
        "amount_due": 0,
        "dues_attempts": 0,
    }


def after_renewal(sub: Subscription) -> dict[str, object]:
    """The fields that change when the next period's renewal is paid."""
    paid = sub.period + 1
    return {
        "period": paid,
        "previous_billing_date": boundary(sub, paid),
        "next_billing_date": boundary(sub, paid + 1),
    }
