"""The period and dues rules: which period a charge pays for, so none is charged
twice or given away."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from subscriptions.subscriptions.models import Subscription, SubscriptionStatus, TimeInterval
from subscriptions.subscriptions.periods import (
    add_intervals,
    after_paid_dues,
    after_renewal,
    boundary,
    dues_of,
    renewal_key,
)

JAN31 = datetime(2026, 1, 31, 9, 0, tzinfo=UTC)


def _sub(**changes: object) -> Subscription:
    fields: dict[str, object] = {
        "subscription_id": "sub_1",
        "business_id": "bus_1",
        "mode": "test",
        "customer_id": "cus_1",
        "product_id": "pdt_1",
        "status": SubscriptionStatus.ACTIVE,
        "recurring_pre_tax_amount": 1000,
        "currency": "EUR",
        "created_at": JAN31,
        "billing_anchor": JAN31,
        "anchor_period": 0,
        "period": 0,
        "next_billing_date": datetime(2026, 2, 28, 9, 0, tzinfo=UTC),
    }
    fields.update(changes)
    return Subscription.model_validate(fields)


def test_monthly_periods_do_not_drift_after_a_short_month() -> None:
    sub = _sub()
    assert [boundary(sub, n).date().isoformat() for n in range(4)] == [
        "2026-01-31",
        "2026-02-28",
        "2026-03-31",
        "2026-04-30",
    ]


def test_intervals_of_days_weeks_and_years() -> None:
    leap = datetime(2028, 2, 29, tzinfo=UTC)
    assert add_intervals(leap, 1, TimeInterval.YEAR) == datetime(2029, 2, 28, tzinfo=UTC)
    assert add_intervals(leap, 2, TimeInterval.WEEK) == leap + timedelta(days=14)
    assert add_intervals(leap, 3, TimeInterval.DAY) == leap + timedelta(days=3)


def test_each_renewal_pays_the_next_period_under_its_own_key() -> None:
    sub = _sub()
    first_key = renewal_key(sub)
    renewed = sub.model_copy(update=after_renewal(sub))
    assert renewed.previous_billing_date == datetime(2026, 2, 28, 9, 0, tzinfo=UTC)
    assert renewed.next_billing_date == datetime(2026, 3, 31, 9, 0, tzinfo=UTC)
    assert renewal_key(renewed) != first_key
    # The same state asks for the same key: a retried renewal cannot charge twice.
    assert renewal_key(sub) == first_key


def test_dues_are_one_period_starting_when_paid() -> None:
    held = _sub(status=SubscriptionStatus.ON_HOLD, amount_due=1000)
    paid_at = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)  # ten days into the hold
    dues = dues_of(held, paid_at)
    assert (dues.amount, dues.currency) == (1000, "EUR")
    assert (dues.period_start, dues.period_end) == (
        paid_at,
        datetime(2026, 4, 10, 12, 0, tzinfo=UTC),
    )
    reactivated = held.model_copy(update=after_paid_dues(held, dues))
    # The next renewal is one interval after the payment: the hold was neither charged nor given.
    assert reactivated.next_billing_date == datetime(2026, 4, 10, 12, 0, tzinfo=UTC)
    assert reactivated.amount_due == 0
    assert renewal_key(reactivated) != dues.idempotency_key


def test_a_repeated_dues_request_reuses_its_key_and_a_declined_one_does_not() -> None:
    held = _sub(status=SubscriptionStatus.ON_HOLD, amount_due=1000)
    later = datetime(2026, 3, 11, tzinfo=UTC)
    assert (
        dues_of(held, later).idempotency_key
        == dues_of(held, later + timedelta(hours=1)).idempotency_key
    )
    after_decline = held.model_copy(update={"dues_attempts": 1})
    assert dues_of(after_decline, later).idempotency_key != dues_of(held, later).idempotency_key
