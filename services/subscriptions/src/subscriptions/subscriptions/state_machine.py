"""The subscription state machine: ONE table of (use case, from) -> to.

A use case asks :func:`transition` for the status it leads to; a pair that is
not in the table is an illegal state change (``IllegalTransition``: gRPC
FAILED_PRECONDITION, HTTP 409 with ``x-should-retry: false``). The README
prints this table.
"""

from __future__ import annotations

from enum import StrEnum

from billing_kit.errors import FailedPrecondition, Reason

from subscriptions.subscriptions.models import SubscriptionStatus as S


class Transition(StrEnum):
    """The use cases that change a subscription's status."""

    FIRST_PAYMENT_SUCCEEDED = "first_payment_succeeded"
    FIRST_PAYMENT_REQUIRES_ACTION = "first_payment_requires_action"
    FIRST_PAYMENT_FAILED = "first_payment_failed"
    RENEWAL_SUCCEEDED = "renewal_succeeded"
    RENEWAL_FAILED = "renewal_failed"
    DUES_PAID = "dues_paid"
    CANCEL_NOW = "cancel_now"
    SCHEDULE_CANCEL = "schedule_cancel"
    UNDO_SCHEDULED_CANCEL = "undo_scheduled_cancel"
    CANCEL_AT_PERIOD_END = "cancel_at_period_end"
    EXPIRE = "expire"
    SWITCH_PAYMENT_METHOD = "switch_payment_method"
    CHARGE_ON_DEMAND = "charge_on_demand"
    CHANGE_BILLING_DATE = "change_billing_date"
    PAUSE = "pause"
    RESUME = "resume"
    CHANGE_PLAN = "change_plan"
    PLAN_CHANGE_UNPAID = "plan_change_unpaid"


TABLE: dict[Transition, dict[S, S]] = {
    Transition.FIRST_PAYMENT_SUCCEEDED: {S.PENDING: S.ACTIVE},
    Transition.FIRST_PAYMENT_REQUIRES_ACTION: {S.PENDING: S.PENDING},
    Transition.FIRST_PAYMENT_FAILED: {S.PENDING: S.FAILED},
    Transition.RENEWAL_SUCCEEDED: {S.ACTIVE: S.ACTIVE},
    Transition.RENEWAL_FAILED: {S.ACTIVE: S.ON_HOLD},
    Transition.DUES_PAID: {S.ON_HOLD: S.ACTIVE},
    Transition.CANCEL_NOW: {
        S.PENDING: S.CANCELLED,
        S.ACTIVE: S.CANCELLED,
        S.ON_HOLD: S.CANCELLED,
        S.PAUSED: S.CANCELLED,
        S.PAST_DUE: S.CANCELLED,
    },
    Transition.SCHEDULE_CANCEL: {S.ACTIVE: S.ACTIVE, S.PAUSED: S.PAUSED},
    Transition.UNDO_SCHEDULED_CANCEL: {S.ACTIVE: S.ACTIVE, S.PAUSED: S.PAUSED},
    Transition.CANCEL_AT_PERIOD_END: {S.ACTIVE: S.CANCELLED},
    Transition.EXPIRE: {S.ACTIVE: S.EXPIRED},
    Transition.SWITCH_PAYMENT_METHOD: {S.ACTIVE: S.ACTIVE, S.PENDING: S.PENDING},
    Transition.CHARGE_ON_DEMAND: {S.ACTIVE: S.ACTIVE},
    Transition.CHANGE_BILLING_DATE: {S.ACTIVE: S.ACTIVE},
    Transition.PAUSE: {S.ACTIVE: S.PAUSED},
    Transition.RESUME: {S.PAUSED: S.ACTIVE},
    Transition.CHANGE_PLAN: {S.ACTIVE: S.ACTIVE},
    # A declined plan-change charge with on_payment_failure=apply_change.
    Transition.PLAN_CHANGE_UNPAID: {S.ACTIVE: S.ON_HOLD},
}


class IllegalTransition(FailedPrecondition):
    """The subscription's status does not allow this change (retrying will not help)."""

    def __init__(self, use_case: Transition, status: S) -> None:
        super().__init__(
            f"a subscription that is {status.value} cannot {use_case.value.replace('_', ' ')}",
            reason=Reason.SUBSCRIPTION_STATE_CONFLICT,
        )
        self.use_case = use_case
        self.status = status


def transition(use_case: Transition, status: S) -> S:
    """The status ``use_case`` leads to from ``status``, or :class:`IllegalTransition`."""
    target = TABLE[use_case].get(status)
    if target is None:
        raise IllegalTransition(use_case, status)
    return target


def allows(use_case: Transition, status: S) -> bool:
    """True when ``use_case`` may run on a subscription in ``status``."""
    return status in TABLE[use_case]


def table_markdown() -> str:
    """The table as Markdown (printed in the README; a test keeps the two equal)."""
    lines = ["| use case | from → to |", "|---|---|"]
    for use_case, moves in TABLE.items():
        cells = ", ".join(f"`{a.value}` → `{b.value}`" for a, b in moves.items())
        lines.append(f"| `{use_case.value}` | {cells} |")
    return "\n".join(lines)
