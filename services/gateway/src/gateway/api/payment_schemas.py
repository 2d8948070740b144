"""Payments and payment methods of the merchant API, in the Dodo Payments shapes.

Fields the payments service does not track (refunds, disputes, tax, 3-D
Secure details…) are sent as Dodo's neutral values or left out; the gateway
README lists them. ``product_cart`` and ``billing`` are the payment's own
(null when the payment was made without them).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from billing.auth.v1 import auth_pb2
from billing.payments.v1 import payments_pb2
from billing_kit.field_rules import PageSize
from billing_kit.scoping import MAX_PAGE_NUMBER
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from gateway.api.parsing import Rfc3339
from gateway.api.schemas import SdkPages, _query_int

IntentStatus = Literal[
    "succeeded",
    "failed",
    "cancelled",
    "processing",
    "requires_customer_action",
    "requires_merchant_action",
    "requires_payment_method",
    "requires_confirmation",
    "requires_capture",
    "partially_captured",
    "partially_captured_and_capturable",
]
STATUS_TO_PROTO: dict[str, payments_pb2.PaymentStatus.ValueType] = {
    "succeeded": payments_pb2.PAYMENT_STATUS_SUCCEEDED,
    "failed": payments_pb2.PAYMENT_STATUS_FAILED,
    "processing": payments_pb2.PAYMENT_STATUS_PROCESSING,
    "requires_customer_action": payments_pb2.PAYMENT_STATUS_REQUIRES_CUSTOMER_ACTION,
    "cancelled": payments_pb2.PAYMENT_STATUS_CANCELLED,
}
_STATUS_NAME: dict[int, IntentStatus] = {
    payments_pb2.PAYMENT_STATUS_SUCCEEDED: "succeeded",
    payments_pb2.PAYMENT_STATUS_FAILED: "failed",
    payments_pb2.PAYMENT_STATUS_PROCESSING: "processing",
    payments_pb2.PAYMENT_STATUS_REQUIRES_CUSTOMER_ACTION: "requires_customer_action",
    payments_pb2.PAYMENT_STATUS_CANCELLED: "cancelled",
}
_CHARGE_TYPE_NAME: dict[int, Literal["new", "renewal", "plan_change", "on_demand"]] = {
    payments_pb2.CHARGE_TYPE_NEW: "new",
    payments_pb2.CHARGE_TYPE_RENEWAL: "renewal",
    payments_pb2.CHARGE_TYPE_ON_DEMAND: "on_demand",
    payments_pb2.CHARGE_TYPE_PLAN_CHANGE: "plan_change",
}


# The payments service walks an index with an offset, capped by the kit's scoping rules.
PaymentPageNumber = Annotated[int, Field(ge=0, le=MAX_PAGE_NUMBER)]


def _unsupported(value: Any) -> Any:
    if value is not None:
        raise ValueError("is not supported by this API")
    return value


class ListPaymentsQuery(SdkPages, BaseModel):
    """Query string of ``GET /payments`` (every parameter the Dodo SDK sends)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    page_size: Annotated[PageSize, BeforeValidator(_query_int)] = Field(
        default=10, description="Page size, at most 100."
    )
    # One-based, as the SDK's auto-pagination walks it (none, then 2, 3, …): 0 and 1 are
    # both the first page, as on GET /subscriptions and GET /products; zero-based, the
    # SDK skipped the second page.
    page_number: Annotated[PaymentPageNumber, BeforeValidator(_query_int)] = Field(
        default=0,
        description="Page number: 0 or 1 is the first page, 2 the second, … (as the SDK's "
        "auto-pagination asks for them).",
    )
    customer_id: str | None = Field(
        default=None, min_length=1, max_length=128, description="Only this customer's payments."
    )
    subscription_id: str | None = Field(
        default=None, min_length=1, max_length=128, description="Only this subscription's."
    )
    status: IntentStatus | None = Field(default=None, description="Only payments in this status.")
    created_at_gte: Rfc3339 | None = Field(
        default=None, description="Created at or after (ISO 8601 with a time zone)."
    )
    created_at_lte: Rfc3339 | None = Field(
        default=None, description="Created at or before (ISO 8601 with a time zone)."
    )
    brand_id: str | None = Field(default=None, description="Not supported (422).")
    currency: str | None = Field(default=None, description="Not supported (422).")
    product_id: str | None = Field(default=None, description="Not supported (422).")

    _refuse_unsupported = field_validator("brand_id", "currency", "product_id")(_unsupported)


class CustomerLimitedDetails(BaseModel):
    """Who paid."""

    customer_id: str
    email: str
    name: str
    metadata: dict[str, str] = Field(default_factory=dict)
    phone_number: str | None = None


class PaymentListItemOut(BaseModel):
    """One payment of ``GET /payments`` (Dodo's PaymentListResponse)."""

    payment_id: str
    business_id: str
    brand_id: str = Field(description="The business (one brand per business here).")
    created_at: datetime
    updated_at: datetime | None = None
    currency: str
    total_amount: int = Field(description="Minor units of `currency`.")
    customer: CustomerLimitedDetails
    metadata: dict[str, str]
    status: IntentStatus | None
    charge_type: Literal["new", "renewal", "plan_change", "on_demand"] | None
    subscription_id: str | None
    subscription_ids: list[str]
    payment_method: str | None = Field(description="`card`.")
    payment_method_id: str | None
    payment_method_type: str | None = Field(description="The card network, e.g. `visa`.")
    card_network: str | None
    card_last_four: str | None
    error_code: str | None
    error_message: str | None
    digital_products_delivered: bool = False
    has_license_key: bool = False
    includes_usage: bool = False
    is_multi_subscription: bool = False
    payment_provider: Literal["stripe", "adyen", "dodo"] = "dodo"
    retry_attempt: int = 0
    service_periods: list[dict[str, Any]] = Field(default_factory=list)


class ProductCartOut(BaseModel):
    """One item of a payment's ``product_cart`` (Dodo's ProductCart)."""

    product_id: str
    quantity: int


class BillingAddressOut(BaseModel):
    """Dodo's BillingAddress."""

    country: str = Field(description="ISO 3166-1 alpha-2.")
    city: str | None = None
    state: str | None = None
    street: str | None = None
    zipcode: str | None = None


class PaymentOut(PaymentListItemOut):
    """``GET /payments/{payment_id}`` (Dodo's Payment)."""

    billing: BillingAddressOut | None = Field(
        default=None, description="The buyer's billing address; null when none was given."
    )
    product_cart: list[ProductCartOut] | None = Field(
        default=None, description="What was bought; null when the payment has no lines."
    )

    is_update_payment_method: bool = False
    settlement_amount: int
    settlement_currency: str
    disputes: list[dict[str, Any]] = Field(default_factory=list)
    refunds: list[dict[str, Any]] = Field(default_factory=list)
    tax: int | None = None


def payment_list_item(
    payment: payments_pb2.Payment, customer: auth_pb2.Customer
) -> PaymentListItemOut:
    """A payment of the list, with its customer's details."""
    return PaymentListItemOut(
        payment_id=payment.payment_id,
        business_id=payment.business_id,
        brand_id=payment.business_id,
        created_at=_time(payment.created_at),
        updated_at=_time(payment.updated_at),
        currency=payment.currency,
        total_amount=payment.total_amount,
        customer=CustomerLimitedDetails(
            customer_id=customer.customer_id,
            email=customer.email,
            name=customer.name,
            metadata=dict(customer.metadata),
            phone_number=customer.phone_number or None,
        ),
        metadata=dict(payment.metadata),
        status=_STATUS_NAME.get(payment.status),
        charge_type=_CHARGE_TYPE_NAME.get(payment.charge_type),
        subscription_id=payment.subscription_id or None,
        subscription_ids=[payment.subscription_id] if payment.subscription_id else [],
        payment_method="card",
        payment_method_id=payment.payment_method_id or None,
        payment_method_type=payment.card_brand or None,
        card_network=payment.card_brand or None,
        card_last_four=payment.card_last_four or None,
        error_code=payment.error_code or None,
        error_message=payment.error_message or None,
    )


def payment_out(payment: payments_pb2.Payment, customer: auth_pb2.Customer) -> PaymentOut:
    """A payment as ``GET /payments/{payment_id}`` returns it."""
    billing = None
    if payment.HasField("billing"):
        address = payment.billing
        billing = BillingAddressOut(
            country=address.country,
            city=address.city or None,
            state=address.state or None,
            street=address.street or None,
            zipcode=address.zipcode or None,
        )
    cart = [ProductCartOut(product_id=x.product_id, quantity=x.quantity) for x in payment.lines]
    return PaymentOut(
        **payment_list_item(payment, customer).model_dump(),
        settlement_amount=payment.total_amount,
        settlement_currency=payment.currency,
        billing=billing,
        product_cart=cart or None,
    )


class PaymentListOut(BaseModel):
    """One page of payments."""

    items: list[PaymentListItemOut]


class PaymentMethodCardOut(BaseModel):
    """The card of a saved method (never its number)."""

    card_holder_name: str | None = None
    card_issuing_country: str | None = None
    card_network: str | None = None
    card_type: str | None = None
    expiry_month: str | None = Field(default=None, description="Two digits, `01`-`12`.")
    expiry_year: str | None = Field(default=None, description="Four digits.")
    last4_digits: str | None = None


class PaymentMethodOut(BaseModel):
    """A saved method (Dodo's CustomerRetrievePaymentMethodsResponse item)."""

    payment_method: Literal["card"] = "card"
    payment_method_id: str
    card: PaymentMethodCardOut | None = None
    last_used_at: datetime | None = None
    payment_method_type: str | None = Field(default=None, description="`credit`.")
    recurring_enabled: bool | None = True

    @classmethod
    def from_proto(cls, method: payments_pb2.PaymentMethod) -> PaymentMethodOut:
        """Render payments' message."""
        return cls(
            payment_method_id=method.payment_method_id,
            card=PaymentMethodCardOut(
                card_holder_name=method.card_holder_name or None,
                card_network=method.brand,
                expiry_month=f"{method.expiry_month:02d}",
                expiry_year=f"{method.expiry_year:04d}",
                last4_digits=method.last4,
            ),
            last_used_at=_time(method.last_used_at) if method.HasField("last_used_at") else None,
            payment_method_type="credit",
        )


class PaymentMethodListOut(BaseModel):
    """``GET /customers/{customer_id}/payment-methods`` (not paginated)."""

    items: list[PaymentMethodOut]


def _time(ts: Timestamp) -> datetime:
    return ts.ToDatetime(tzinfo=UTC)
