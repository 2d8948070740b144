"""Proto <-> model conversions of the payments contract (no rules here)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from billing.payments.v1 import payments_pb2
from billing_kit.errors import InvalidArgument
from billing_kit.scoping import mode_to_proto
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import ValidationError

from payments.charges.models import BillingAddress, ChargeType, Payment, PaymentLine, PaymentStatus
from payments.hosted.models import PaymentSession, SessionPurpose, SessionStatus
from payments.methods.models import PaymentMethod

STATUS_TO_PROTO: dict[PaymentStatus, payments_pb2.PaymentStatus.ValueType] = {
    PaymentStatus.SUCCEEDED: payments_pb2.PAYMENT_STATUS_SUCCEEDED,
    PaymentStatus.FAILED: payments_pb2.PAYMENT_STATUS_FAILED,
    PaymentStatus.PROCESSING: payments_pb2.PAYMENT_STATUS_PROCESSING,
    PaymentStatus.REQUIRES_CUSTOMER_ACTION: payments_pb2.PAYMENT_STATUS_REQUIRES_CUSTOMER_ACTION,
    PaymentStatus.CANCELLED: payments_pb2.PAYMENT_STATUS_CANCELLED,
}
STATUS_FROM_PROTO = {v: k for k, v in STATUS_TO_PROTO.items()}
CHARGE_TYPE_TO_PROTO: dict[ChargeType, payments_pb2.ChargeType.ValueType] = {
    ChargeType.NEW: payments_pb2.CHARGE_TYPE_NEW,
    ChargeType.RENEWAL: payments_pb2.CHARGE_TYPE_RENEWAL,
    ChargeType.ON_DEMAND: payments_pb2.CHARGE_TYPE_ON_DEMAND,
    ChargeType.PLAN_CHANGE: payments_pb2.CHARGE_TYPE_PLAN_CHANGE,
}
CHARGE_TYPE_FROM_PROTO = {v: k for k, v in CHARGE_TYPE_TO_PROTO.items()}
PURPOSE_TO_PROTO: dict[SessionPurpose, payments_pb2.PaymentSessionPurpose.ValueType] = {
    SessionPurpose.SAVE_METHOD: payments_pb2.PAYMENT_SESSION_PURPOSE_SAVE_METHOD,
    SessionPurpose.PAY: payments_pb2.PAYMENT_SESSION_PURPOSE_PAY,
}
PURPOSE_FROM_PROTO = {v: k for k, v in PURPOSE_TO_PROTO.items()}
SESSION_STATUS_TO_PROTO: dict[SessionStatus, payments_pb2.PaymentSessionStatus.ValueType] = {
    SessionStatus.OPEN: payments_pb2.PAYMENT_SESSION_STATUS_OPEN,
    # Charged, waiting for a 3-D Secure answer: still open for the customer.
    SessionStatus.CHARGED: payments_pb2.PAYMENT_SESSION_STATUS_OPEN,
    SessionStatus.SUCCEEDED: payments_pb2.PAYMENT_SESSION_STATUS_SUCCEEDED,
    SessionStatus.FAILED: payments_pb2.PAYMENT_SESSION_STATUS_FAILED,
    SessionStatus.EXPIRED: payments_pb2.PAYMENT_SESSION_STATUS_EXPIRED,
}


def timestamp(moment: datetime) -> Timestamp:
    """A protobuf Timestamp of an aware datetime."""
    value = Timestamp()
    value.FromDatetime(moment)
    return value


def payment_method_to_proto(method: PaymentMethod) -> payments_pb2.PaymentMethod:
    """The wire form of a saved payment method."""
    message = payments_pb2.PaymentMethod(
        payment_method_id=method.payment_method_id,
        business_id=method.business_id,
        mode=mode_to_proto(method.mode),
        customer_id=method.customer_id,
        brand=method.brand,
        last4=method.last4,
        expiry_month=method.expiry_month,
        expiry_year=method.expiry_year,
        fingerprint=method.fingerprint,
        created_at=timestamp(method.created_at),
        is_default=method.is_default,
        card_holder_name=method.card_holder_name,
    )
    if method.last_used_at is not None:
        message.last_used_at.CopyFrom(timestamp(method.last_used_at))
    return message


def payment_to_proto(payment: Payment) -> payments_pb2.Payment:
    """The wire form of a payment."""
    return payments_pb2.Payment(
        payment_id=payment.payment_id,
        business_id=payment.business_id,
        mode=mode_to_proto(payment.mode),
        customer_id=payment.customer_id,
        subscription_id=payment.subscription_id,
        total_amount=payment.total_amount,
        currency=payment.currency,
        status=STATUS_TO_PROTO[payment.status],
        charge_type=CHARGE_TYPE_TO_PROTO[payment.charge_type],
        payment_method_id=payment.payment_method_id,
        card_brand=payment.card_brand,
        card_last_four=payment.card_last_four,
        error_code=payment.error_code,
        error_message=payment.error_message,
        challenge_url=payment.challenge_url,
        idempotency_key=payment.idempotency_key,
        created_at=timestamp(payment.created_at),
        updated_at=timestamp(payment.updated_at),
        metadata=payment.metadata,
        description=payment.description,
        lines=[line_to_proto(line) for line in payment.lines],
        billing=billing_to_proto(payment.billing),
        tax_id=payment.tax_id,
    )


def line_to_proto(line: PaymentLine) -> payments_pb2.PaymentLine:
    """The wire form of one payment line."""
    return payments_pb2.PaymentLine(
        product_id=line.product_id,
        product_name=line.product_name,
        quantity=line.quantity,
        unit_amount=line.unit_amount,
    )


def billing_to_proto(billing: BillingAddress | None) -> payments_pb2.BillingAddress | None:
    """The wire form of a billing address (None: the field stays unset)."""
    if billing is None:
        return None
    return payments_pb2.BillingAddress(
        country=billing.country,
        city=billing.city or "",
        state=billing.state or "",
        street=billing.street or "",
        zipcode=billing.zipcode or "",
    )


def lines_from_proto(lines: Iterable[payments_pb2.PaymentLine]) -> list[PaymentLine]:
    """A request's lines; a bad one is INVALID_ARGUMENT naming it (``lines[i]``)."""
    found: list[PaymentLine] = []
    for index, line in enumerate(lines):
        try:
            found.append(
                PaymentLine(
                    product_id=line.product_id,
                    product_name=line.product_name,
                    quantity=line.quantity,
                    unit_amount=line.unit_amount,
                )
            )
        except ValidationError:
            raise InvalidArgument(
                "each line needs a product_id, a quantity of 1 or more and a unit_amount >= 0",
                field=f"lines[{index}]",
            ) from None
    return found


def billing_from_proto(
    message: payments_pb2.CreatePaymentSessionRequest | payments_pb2.ChargeRequest,
) -> BillingAddress | None:
    """A request's billing address (unset: None); a bad one is INVALID_ARGUMENT."""
    if not message.HasField("billing"):
        return None
    billing = message.billing
    try:
        return BillingAddress(
            country=billing.country,
            city=billing.city or None,
            state=billing.state or None,
            street=billing.street or None,
            zipcode=billing.zipcode or None,
        )
    except ValidationError:
        raise InvalidArgument(
            "billing.country must be an ISO 3166-1 alpha-2 code such as IT", field="billing"
        ) from None


def session_to_proto(session: PaymentSession, url: str) -> payments_pb2.PaymentSession:
    """The wire form of a hosted payment session."""
    return payments_pb2.PaymentSession(
        session_id=session.session_id,
        url=url,
        business_id=session.business_id,
        mode=mode_to_proto(session.mode),
        customer_id=session.customer_id,
        purpose=PURPOSE_TO_PROTO[session.purpose],
        status=SESSION_STATUS_TO_PROTO[session.status],
        return_url=session.return_url,
        payment_method_id=session.payment_method_id,
        payment_id=session.payment_id,
        expires_at=timestamp(session.expires_at),
        created_at=timestamp(session.created_at),
        error_message=session.error_message,
    )
