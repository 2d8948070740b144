"""The rules of a PATCH: cancel now, at period end or undo; metadata, billing, billing date;
pause and resume."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from billing_kit.errors import InvalidArgument, Reason

from subscriptions.subscriptions import models as m
from subscriptions.subscriptions.models import (
    BillingAddress,
    CancellationFeedback,
    CancelledBy,
    Subscription,
)
from subscriptions.subscriptions.state_machine import Transition, transition


@dataclass(frozen=True)
class Changes:
    """A PATCH: ``None`` leaves a field alone."""

    cancel_at_next_billing_date: bool | None = None
    cancel_now: bool = False
    cancellation_feedback: CancellationFeedback | None = None
    cancellation_comment: str | None = None
    metadata: dict[str, str] | None = None
    billing: BillingAddress | None = None
    next_billing_date: datetime | None = None
    cancelled_by: CancelledBy = CancelledBy.MERCHANT
    # Dodo's PATCH status "paused" / "active": each goes alone (checked by ``check_alone``).
    pause: bool = False
    resume: bool = False

    def check_alone(self) -> None:
        """Pause and resume go alone, as Dodo's ``paused``/``active`` do (else 422)."""
        if not (self.pause or self.resume):
            return
        others = (
            self.cancel_at_next_billing_date is not None
            or self.cancel_now
            or self.cancellation_feedback is not None
            or self.cancellation_comment is not None
            or self.metadata is not None
            or self.billing is not None
            or self.next_billing_date is not None
            or (self.pause and self.resume)
        )
        if others:
            raise InvalidArgument(
                "pause and resume go alone: send no other change with them",
                reason=Reason.INVALID_SUBSCRIPTION_REQUEST,
                field="status",
            )


def resumed_billing_date(
    next_billing_date: datetime | None, paused_at: datetime, resumed_at: datetime
) -> datetime:
    """The next billing date after a resume: the unused part of the paid period is kept.

    ``resumed_at + (next_billing_date at pause - paused_at)``; a subscription paused at
    or after its due date (nothing unused) is due at once on resume.
    """
    if next_billing_date is None:
        return resumed_at
    unused = max(next_billing_date - paused_at, timedelta(0))
    return resumed_at + unused


def _pause_or_resume(
    sub: Subscription, changes: Changes, now: datetime
) -> tuple[Subscription, str]:
    if changes.pause:
        status = transition(Transition.PAUSE, sub.status)
        # next_billing_date and the anchor stay: the paid period at pause time is remembered.
        return sub.model_copy(update={"status": status, "paused_at": now}), m.SUBSCRIPTION_PAUSED
    status = transition(Transition.RESUME, sub.status)
    next_date = resumed_billing_date(sub.next_billing_date, sub.paused_at or now, now)
    # The next period starts there; later ones follow from it (as a billing-date change).
    return sub.model_copy(
        update={
            "status": status,
            "paused_at": None,
            "next_billing_date": next_date,
            "billing_anchor": next_date,
            "anchor_period": sub.period + 1,
        }
    ), m.SUBSCRIPTION_UNPAUSED


def apply_changes(sub: Subscription, changes: Changes, now: datetime) -> tuple[Subscription, str]:
    """The subscription after ``changes`` and the event type to emit (illegal: 409)."""
    updated, event = _apply_changes(sub, changes, now)
    return _follow_billing_date(updated), event


def _follow_billing_date(sub: Subscription) -> Subscription:
    """A scheduled plan change takes effect at the (possibly moved) next billing date; a
    subscription that will not renew any more drops it."""
    change = sub.scheduled_change
    if change is None:
        return sub
    if sub.next_billing_date is None:
        return sub.model_copy(update={"scheduled_change": None})
    if change.effective_at != sub.next_billing_date:
        moved = change.model_copy(update={"effective_at": sub.next_billing_date})
        return sub.model_copy(update={"scheduled_change": moved})
    return sub


def _apply_changes(sub: Subscription, changes: Changes, now: datetime) -> tuple[Subscription, str]:
    changes.check_alone()
    if changes.pause or changes.resume:
        return _pause_or_resume(sub, changes, now)
    update: dict[str, object] = {}
    event = m.SUBSCRIPTION_UPDATED
    feedback = {
        "cancellation_feedback": changes.cancellation_feedback,
        "cancellation_comment": changes.cancellation_comment,
        "cancelled_by": changes.cancelled_by,
    }
    if changes.cancel_now:
        update |= {
            "status": transition(Transition.CANCEL_NOW, sub.status),
            "cancelled_at": now,
            "next_billing_date": None,
            "paused_at": None,
            "amount_due": 0,
            **feedback,
        }
        event = m.SUBSCRIPTION_CANCELLED
    elif changes.cancel_at_next_billing_date is True and not sub.cancel_at_next_billing_date:
        transition(Transition.SCHEDULE_CANCEL, sub.status)
        update |= {"cancel_at_next_billing_date": True, **feedback}
    elif sub.cancel_at_next_billing_date and changes.cancel_at_next_billing_date is not False:
        # A cancel is already scheduled: new feedback replaces what it was given.
        if changes.cancellation_feedback or changes.cancellation_comment:
            update |= {k: v for k, v in feedback.items() if v is not None and k != "cancelled_by"}
    elif changes.cancel_at_next_billing_date is False and sub.cancel_at_next_billing_date:
        transition(Transition.UNDO_SCHEDULED_CANCEL, sub.status)
        update |= {
            "cancel_at_next_billing_date": False,
            "cancellation_feedback": None,
            "cancellation_comment": None,
            "cancelled_by": None,
        }
    if changes.metadata is not None:
        update["metadata"] = dict(changes.metadata)
    if changes.billing is not None:
        update["billing"] = changes.billing
    if changes.next_billing_date is not None:
        transition(Transition.CHANGE_BILLING_DATE, update.get("status", sub.status))  # type: ignore[arg-type]
        if changes.next_billing_date <= now:
            raise InvalidArgument(
                "next_billing_date must be in the future",
                reason=Reason.INVALID_SUBSCRIPTION_REQUEST,
                field="next_billing_date",
            )
        # The next period now starts there; later ones follow from it.
        update |= {
            "next_billing_date": changes.next_billing_date,
            "billing_anchor": changes.next_billing_date,
            "anchor_period": sub.period + 1,
        }
    return sub.model_copy(update=update), event
