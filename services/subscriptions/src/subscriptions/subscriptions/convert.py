"""Conversions between subscriptions protos and domain models."""

from __future__ import annotations

from datetime import UTC, datetime

from billing.subscriptions.v1 import subscriptions_pb2 as pb
from billing_kit.errors import InvalidArgument, Reason, describe_validation_error
from billing_kit.scoping import mode_from_proto, mode_to_proto
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import ValidationError

from subscriptions.addons.models import Addon
from subscriptions.products.models import RecurringPrice
from subscriptions.subscriptions.models import (
    BillingAddress,
    CancellationFeedback,
    CancelledBy,
    ScheduledPlanChange,
    Subscription,
    SubscriptionStatus,
    TimeInterval,
)
from subscriptions.subscriptions.payments_client import ChargeResult, ChargeStatus
from subscriptions.subscriptions.periods import Dues
from subscriptions.subscriptions.plan_changes import (
    APPLY_CHANGE,
    PREVENT_CHANGE,
    EffectiveAt,
    PlanChangePreview,
    PlanChangeRequest,
    PlanOption,
)
from subscriptions.subscriptions.proration import ProrationMode
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
        addons=[
            pb.SubscriptionAddon(
                addon_id=addon.addon_id,
                name=addon.name,
                quantity=addon.quantity,
                unit_price=addon.unit_price,
            )
            for addon in sub.addons
        ],
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
    if sub.scheduled_change is not None:
        message.scheduled_change.CopyFrom(scheduled_change_to_proto(sub.scheduled_change))
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


def scheduled_change_to_proto(change: ScheduledPlanChange) -> pb.ScheduledPlanChange:
    """Dodo's ScheduledPlanChange on the wire."""
    return pb.ScheduledPlanChange(
        id=change.id,
        product_id=change.product_id,
        product_name=change.product_name,
        quantity=change.quantity,
        addons=[
            pb.AddonQuantity(addon_id=addon.addon_id, quantity=addon.quantity)
            for addon in change.addons
        ],
        effective_at=timestamp(change.effective_at),
        recurring_pre_tax_amount=change.recurring_pre_tax_amount,
        created_at=timestamp(change.created_at),
    )


PRORATION_FROM_PROTO: dict[int, ProrationMode] = {
    pb.PRORATION_BILLING_MODE_PRORATED_IMMEDIATELY: ProrationMode.PRORATED_IMMEDIATELY,
    pb.PRORATION_BILLING_MODE_FULL_IMMEDIATELY: ProrationMode.FULL_IMMEDIATELY,
    pb.PRORATION_BILLING_MODE_DIFFERENCE_IMMEDIATELY: ProrationMode.DIFFERENCE_IMMEDIATELY,
    pb.PRORATION_BILLING_MODE_DO_NOT_BILL: ProrationMode.DO_NOT_BILL,
    pb.PRORATION_BILLING_MODE_PRORATED_IMMEDIATELY_KEEP_CYCLE: (
        ProrationMode.PRORATED_IMMEDIATELY_KEEP_CYCLE
    ),
}


def plan_change_request(request: pb.ChangePlanRequest) -> PlanChangeRequest:
    """A ChangePlanRequest as the use case reads it (unspecified enums: Dodo's defaults)."""
    mode = PRORATION_FROM_PROTO.get(request.proration_billing_mode)
    if mode is None:
        raise InvalidArgument(
            "proration_billing_mode is required",
            reason=Reason.INVALID_SUBSCRIPTION_REQUEST,
            field="proration_billing_mode",
        )
    effective = (
        EffectiveAt.NEXT_BILLING_DATE
        if request.effective_at == pb.PLAN_CHANGE_EFFECTIVE_AT_NEXT_BILLING_DATE
        else EffectiveAt.IMMEDIATELY
    )
    failure = (
        PREVENT_CHANGE
        if request.on_payment_failure == pb.ON_PAYMENT_FAILURE_PREVENT_CHANGE
        else APPLY_CHANGE
    )
    return PlanChangeRequest(
        business_id=request.business_id,
        mode=mode_from_proto(request.mode),
        subscription_id=request.subscription_id,
        product_id=request.product_id,
        quantity=request.quantity,
        proration_mode=mode,
        effective_at=effective,
        on_payment_failure=failure,
        customer_id=request.customer_id or None,
        addons=tuple((a.addon_id, a.quantity) for a in request.addons),
        cancel_scheduled=request.cancel_scheduled_change_plan,
        metadata=dict(request.metadata),
        customer_present=request.customer_present,
        return_url=request.return_url,
        idempotency_key=request.idempotency_key,
    )


def preview_to_proto(preview: PlanChangePreview) -> pb.PlanChangePreview:
    """What a change does (or did) on the wire."""
    return pb.PlanChangePreview(
        effective_at=timestamp(preview.effective_at),
        line_items=[
            pb.PlanChangeLine(
                type=line.kind,
                id=line.product_id,
                name=line.name,
                quantity=line.quantity,
                unit_price=line.unit_price,
                proration_factor=line.proration_factor,
                amount=line.amount,
                currency=preview.currency,
                tax_inclusive=preview.tax_inclusive,
                tax_category=line.tax_category,
            )
            for line in preview.lines
        ],
        immediate_amount=preview.immediate_amount,
        currency=preview.currency,
        new_plan=subscription_to_proto(preview.new_plan),
        scheduled=preview.scheduled,
    )


def addon_option_to_proto(addon: Addon) -> pb.AddonOption:
    """An add-on a customer may choose on a plan."""
    message = pb.AddonOption(
        addon_id=addon.addon_id,
        name=addon.name,
        unit_price=addon.price,
        max_quantity=addon.max_quantity,
    )
    if addon.description is not None:
        message.description = addon.description
    return message


def plan_option_to_proto(option: PlanOption) -> pb.PlanOption:
    """One plan a subscription may switch to."""
    product = option.product
    price = product.price
    message = pb.PlanOption(
        product_id=product.product_id,
        name=product.name,
        unit_price=option.unit_price,
        currency=price.currency,
        max_quantity=product.max_quantity,
        current=option.current,
        upgrade=option.upgrade,
        addons=[addon_option_to_proto(addon) for addon in option.addons],
    )
    if product.description is not None:
        message.description = product.description
    if isinstance(price, RecurringPrice):
        message.payment_frequency_count = price.payment_frequency_count
        message.payment_frequency_interval = INTERVAL_TO_PROTO[
            TimeInterval(price.payment_frequency_interval)
        ]
    return message
