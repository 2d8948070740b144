"""Pause and resume as pure rules: the resume date, what goes alone, what the state allows,
and what a paused subscription's license keys do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from billing_kit.errors import InvalidArgument
from subscriptions.licenses.service import subscription_entitles
from subscriptions.subscriptions.changes import Changes, apply_changes, resumed_billing_date
from subscriptions.subscriptions.models import Subscription, TimeInterval
from subscriptions.subscriptions.models import SubscriptionStatus as S
from subscriptions.subscriptions.periods import add_intervals, boundary
from subscriptions.subscriptions.state_machine import IllegalTransition

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
GRACE = timedelta(days=7)


def _active(**more: object) -> Subscription:
    sub = Subscription(
        subscription_id="sub_1",
        business_id="bus_1",
        mode="test",
        customer_id="cus_1",
        product_id="pdt_1",
        status=S.ACTIVE,
        recurring_pre_tax_amount=1000,
        currency="EUR",
        created_at=T0,
        billing_anchor=T0,
        anchor_period=0,
        period=0,
        previous_billing_date=T0,
    )
    sub = sub.model_copy(update={"next_billing_date": boundary(sub, 1), **more})
    return sub


@pytest.mark.parametrize(
    ("paused_after", "paused_for", "expected_after_resume"),
    [
        # 31-day March period: paused 10 days in, 21 days unused, resumed 40 days later.
        (timedelta(days=10), timedelta(days=40), timedelta(days=21)),
        # Paused in its last second: one second is kept.
        (timedelta(days=31) - timedelta(seconds=1), timedelta(days=3), timedelta(seconds=1)),
        # Paused at once: the whole period is kept.
        (timedelta(0), timedelta(hours=5), timedelta(days=31)),
    ],
)
def test_resume_credits_the_unused_part_of_the_paid_period(
    paused_after: timedelta, paused_for: timedelta, expected_after_resume: timedelta
) -> None:
    paused, _ = apply_changes(_active(), Changes(pause=True), T0 + paused_after)
    resumed_at = T0 + paused_after + paused_for
    resumed, event = apply_changes(paused, Changes(resume=True), resumed_at)
    assert event == "subscription.unpaused"
    assert resumed.status is S.ACTIVE and resumed.paused_at is None
    assert resumed.next_billing_date == resumed_at + expected_after_resume
    # Later renewals follow one interval after the new date, not the old anchor.
    assert resumed.next_billing_date is not None
    assert boundary(resumed, resumed.period + 2) == add_intervals(
        resumed.next_billing_date, 1, TimeInterval.MONTH
    )


def test_paused_at_or_after_the_due_date_is_due_at_resume() -> None:
    due = T0 + timedelta(days=31)
    assert resumed_billing_date(due, due + timedelta(days=2), due + timedelta(days=9)) == (
        due + timedelta(days=9)
    )


def test_pause_keeps_the_paid_period_and_records_when() -> None:
    sub = _active()
    paused, event = apply_changes(sub, Changes(pause=True), T0 + timedelta(days=3))
    assert event == "subscription.paused"
    assert paused.status is S.PAUSED and paused.paused_at == T0 + timedelta(days=3)
    assert paused.next_billing_date == sub.next_billing_date
    assert paused.billing_anchor == sub.billing_anchor


@pytest.mark.parametrize(
    "other",
    [
        {"metadata": {"a": "b"}},
        {"cancel_at_next_billing_date": True},
        {"next_billing_date": T0 + timedelta(days=40)},
        {"resume": True},
    ],
)
def test_pause_goes_alone(other: dict[str, object]) -> None:
    with pytest.raises(InvalidArgument) as err:
        apply_changes(_active(), Changes(pause=True, **other), T0)  # type: ignore[arg-type]
    assert err.value.field == "status"


@pytest.mark.parametrize(
    ("status", "changes"),
    [
        (S.PAUSED, Changes(pause=True)),
        (S.ON_HOLD, Changes(pause=True)),
        (S.CANCELLED, Changes(pause=True)),
        (S.PENDING, Changes(pause=True)),
        (S.ACTIVE, Changes(resume=True)),
        (S.ON_HOLD, Changes(resume=True)),
        (S.CANCELLED, Changes(resume=True)),
    ],
)
def test_pause_only_from_active_and_resume_only_from_paused(status: S, changes: Changes) -> None:
    sub = _active(status=status, paused_at=T0 if status is S.PAUSED else None)
    with pytest.raises(IllegalTransition):
        apply_changes(sub, changes, T0 + timedelta(days=1))


def test_a_paused_subscription_can_be_cancelled_now_and_shows_no_pause_after() -> None:
    paused, _ = apply_changes(_active(), Changes(pause=True), T0 + timedelta(days=1))
    cancelled, event = apply_changes(paused, Changes(cancel_now=True), T0 + timedelta(days=2))
    assert event == "subscription.cancelled"
    assert cancelled.status is S.CANCELLED and cancelled.paused_at is None


def test_a_scheduled_cancel_survives_the_pause_and_moves_with_the_resume() -> None:
    sub = _active(cancel_at_next_billing_date=True)
    paused, _ = apply_changes(sub, Changes(pause=True), T0 + timedelta(days=1))
    assert paused.cancel_at_next_billing_date
    resumed, _ = apply_changes(paused, Changes(resume=True), T0 + timedelta(days=11))
    assert resumed.cancel_at_next_billing_date
    assert resumed.next_billing_date == T0 + timedelta(days=41)


def test_keys_of_a_paused_subscription_work_until_the_period_paid_at_pause_ends() -> None:
    paused, _ = apply_changes(_active(), Changes(pause=True), T0 + timedelta(days=10))
    end = T0 + timedelta(days=31)
    assert subscription_entitles(paused, end - timedelta(seconds=1), GRACE)
    assert not subscription_entitles(paused, end, GRACE)  # no grace for a pause
    assert not subscription_entitles(paused, end + timedelta(days=60), GRACE)
    resumed, _ = apply_changes(paused, Changes(resume=True), end + timedelta(days=60))
    assert subscription_entitles(resumed, end + timedelta(days=60), GRACE)
