"""Conversions between subscriptions protos and domain models."""

from __future__ import annotations

from datetime import UTC, datetime

from billing.subscriptions.v1 import subscriptions_pb2 as pb
from billing_kit.errors import InvalidArgument, Reason, describe_validation_error
from billing_kit.scoping import mode_to_proto
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import ValidationError

from subscriptions.subscriptions.models import (
    BillingAddress,
    CancellationFeedback,
    CancelledBy,
    Subscription,
    SubscriptionStatus,
    TimeInterval,
)
from subscriptions.subscriptions.payments_client import ChargeResult, ChargeStatus
from subscriptions.subscriptions.periods import Dues
from subscriptions.subscriptions.test_clock import ClockReading

STATUS_TO_PROTO: dict[SubscriptionStatus, pb.SubscriptionStatus.ValueType] = {
    SubscriptionStatus.PENDING: pb.SUBSCRIPTION_STATUS_PENDING,
    SubscriptionStatus.ACTIVE: pb.SUBSCRIPTION_STATUS_ACTIVE,
    SubscriptionStatus.ON_HOLD: pb.SUBSCRIPTION_STATUS_ON_HOLD,
    SubscriptionStatus.CANCELLED: pb.SUBSCRIPTION_STATUS_CANCELLED,
    SubscriptionStatus.EXPIRED: pb.SUBSCRIPTION_STATUS_EXPIRED,
    SubscriptionStatus.FAILED: pb.SUBSCRIPTION_STATUS_FAILED,
    SubscriptionStatus.PAUSED: pb.SUBSCRIPTION_STATUS_PAUSED,
    SubscriptionStatus.PAST_DUE: pb.SUBSCRIPTION_STATUS_PAST_DUE,
}
_STATUS_FROM_PROTO: dict[int, SubscriptionStatus] = {int(v): k for k, v in STATUS_TO_PROTO.items()}
INTERVAL_TO_PROTO: dict[TimeInterval, pb.TimeInterval.ValueType] = {
    TimeInterval.DAY: pb.TIME_INTERVAL_DAY,
    TimeInterval.WEEK: pb.TIME_INTERVAL_WEEK,
    TimeInterval.MONTH: pb.TIME_INTERVAL_MONTH,
    TimeInterval.YEAR: pb.TIME_INTERVAL_YEAR,
}
FEEDBACK_TO_PROTO: dict[CancellationFeedback, pb.CancellationFeedback.ValueType] = {
    CancellationFeedback(name.lower()): value
    for name, value in pb.CancellationFeedback.items()
    if value != pb.CANCELLATION_FEEDBACK_UNSPECIFIED
    for name in [name.removeprefix("CANCELLATION_FEEDBACK_")]
}
_FEEDBACK_FROM_PROTO: dict[int, CancellationFeedback] = {
    int(v): k for k, v in FEEDBACK_TO_PROTO.items()
}
_CANCELLED_BY: dict[CancelledBy, pb.CancelledBy.ValueType] = {
    CancelledBy.CUSTOMER: pb.CANCELLED_BY_CUSTOMER,
    CancelledBy.MERCHANT: pb.CANCELLED_BY_MERCHANT,
    CancelledBy.SYSTEM: pb.CANCELLED_BY_SYSTEM,
}
_OUTCOME: dict[ChargeStatus, pb.ChargeOutcome.Status.ValueType] = {
    ChargeStatus.SUCCEEDED: pb.ChargeOutcome.STATUS_SUCCEEDED,
    ChargeStatus.FAILED: pb.ChargeOutcome.STATUS_FAILED,
    ChargeStatus.REQUIRES_CUSTOMER_ACTION: pb.ChargeOutcome.STATUS_REQUIRES_CUSTOMER_ACTION,
    ChargeStatus.PROCESSING: pb.ChargeOutcome.STATUS_PROCESSING,
}


def timestamp(moment: datetime) -> Timestamp:
    """A protobuf Timestamp of an aware datetime."""
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def from_timestamp(stamp: Timestamp) -> datetime:
    """An aware UTC datetime of a protobuf Timestamp."""
    return stamp.ToDatetime(tzinfo=UTC)


def status_from_proto(value: int) -> SubscriptionStatus | None:
    """None for UNSPECIFIED (no filter)."""
    return _STATUS_FROM_PROTO.get(value)


def feedback_from_proto(value: int) -> CancellationFeedback | None:
    """None for UNSPECIFIED."""
    return _FEEDBACK_FROM_PROTO.get(value)


def billing_from_proto(message: pb.BillingAddress) -> BillingAddress:
    """A billing address (empty strings are absent); a bad one is INVALID_ARGUMENT naming it."""
    try:
        return BillingAddress(
            country=message.country,
            city=message.city or None,
            state=message.state or None,
            street=message.street or None,
            zipcode=message.zipcode or None,
        )
    except ValidationError as exc:
        field = ".".join(["billing", *(str(p) for p in exc.errors()[0]["loc"])])
        raise InvalidArgument(
            f"billing is not valid: {describe_validation_error(exc)}",
            reason=Reason.INVALID_SUBSCRIPTION_REQUEST,
            field=field,
        ) from None


def subscription_to_proto(sub: Subscription) -> pb.Subscription:
    """The wire form of a subscription."""
    message = pb.Subscription(
        subscription_id=sub.subscription_id,
        business_id=sub.business_id,
        mode=mode_to_proto(sub.mode),
        customer_id=sub.customer_id,
        product_id=sub.product_id,
        status=STATUS_TO_PROTO[sub.status],
        recurring_pre_tax_amount=sub.recurring_pre_tax_amount,
        currency=sub.currency,
        created_at=timestamp(sub.created_at),
        product_name=sub.product_name,
        quantity=sub.quantity,
        tax_inclusive=sub.tax_inclusive,
        payment_frequency_count=sub.payment_frequency_count,
        payment_frequency_interval=INTERVAL_TO_PROTO[sub.payment_frequency_interval],
        subscription_period_count=sub.subscription_period_count,
        subscription_period_interval=INTERVAL_TO_PROTO[sub.subscription_period_interval],
        trial_period_days=sub.trial_period_days,
        cancel_at_next_billing_date=sub.cancel_at_next_billing_date,
        cancellation_comment=sub.cancellation_comment or "",
        payment_method_id=sub.payment_method_id or "",
        metadata=sub.metadata,
        tax_id=sub.tax_id,
        amount_due=sub.amount_due,
        pending_payment_id=sub.pending_payment_id or "",
        challenge_url=sub.challenge_url or "",
        on_demand=sub.on_demand,
    )
    for name in (
        "next_billing_date",
        "previous_billing_date",
        "expires_at",
        "cancelled_at",
        "updated_at",
        "paused_at",
    ):
        value = getattr(sub, name)
        if value is not None:
            getattr(message, name).CopyFrom(timestamp(value))
    if sub.cancellation_feedback is not None:
        message.cancellation_feedback = FEEDBACK_TO_PROTO[sub.cancellation_feedback]
    if sub.cancelled_by is not None:
        message.cancelled_by = _CANCELLED_BY[sub.cancelled_by]
    if sub.billing is not None:
        message.billing.CopyFrom(
            pb.BillingAddress(
                country=sub.billing.country,
                city=sub.billing.city or "",
                state=sub.billing.state or "",
                street=sub.billing.street or "",
                zipcode=sub.billing.zipcode or "",
            )
        )
    return message


def outcome_to_proto(result: ChargeResult) -> pb.ChargeOutcome:
    """A charge's outcome on the wire."""
    return pb.ChargeOutcome(
        payment_id=result.payment_id,
        status=_OUTCOME[result.status],
        amount=result.amount,
        currency=result.currency,
        error_code=result.error_code,
        error_message=result.error_message,
        challenge_url=result.challenge_url,
    )


def dues_to_proto(dues: Dues | None) -> pb.Dues:
    """Dues on the wire (amount 0 when nothing is owed)."""
    if dues is None:
        return pb.Dues()
    return pb.Dues(
        amount=dues.amount,
        currency=dues.currency,
        period_start=timestamp(dues.period_start),
        period_end=timestamp(dues.period_end),
        next_billing_date=timestamp(dues.period_end),
    )


def clock_to_proto(reading: ClockReading) -> pb.TestClock:
    """A business's clock on the wire."""
    return pb.TestClock(
        business_id=reading.business_id,
        now=timestamp(reading.now),
        offset_seconds=reading.offset_seconds,
    )
