"""Bodies of the merchant ``/subscriptions`` API in Dodo's shapes (SDK 1.123).

Every field the SDK can send is declared; the ones we do not support accept
only null (``type: unsupported_field`` otherwise; services/subscriptions/README.md
lists them).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal, cast

from billing.subscriptions.v1 import subscriptions_pb2 as pb
from billing_kit.catalog_fields import TAX_CATEGORIES, TaxCategory, json_integer
from billing_kit.field_rules import (
    HTTP_URL_PATTERN,
    URL_MAX_LENGTH,
    EmailAddress,
    Metadata,
    PageSize,
    PersonName,
    PhoneNumber,
)
from billing_kit.scoping import MAX_PAGE_NUMBER
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    StringConstraints,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

from gateway.api.parsing import Rfc3339
from gateway.api.product_schemas import UNSUPPORTED, Unsupported
from gateway.api.schemas import Locale, QueryBool, SdkPages, _query_int

Status = Literal[
    "pending", "active", "on_hold", "paused", "cancelled", "failed", "expired", "past_due"
]
Interval = Literal["Day", "Week", "Month", "Year"]
Feedback = Literal[
    "too_expensive",
    "missing_features",
    "switched_service",
    "unused",
    "customer_service",
    "low_quality",
    "too_complex",
    "other",
]
CancelReason = Literal[
    "cancelled_by_customer",
    "cancelled_by_merchant",
    "cancelled_by_merchant_send_dunning",
    "cancelled_by_merchant_grace_period_expired",
    "dodo_team",
]
Text = Annotated[str, StringConstraints(max_length=500)]
SubscriptionId = Annotated[str, StringConstraints(min_length=1, max_length=128)]

STATUS_NAMES: dict[int, Status] = {
    pb.SUBSCRIPTION_STATUS_PENDING: "pending",
    pb.SUBSCRIPTION_STATUS_ACTIVE: "active",
    pb.SUBSCRIPTION_STATUS_ON_HOLD: "on_hold",
    pb.SUBSCRIPTION_STATUS_PAUSED: "paused",
    pb.SUBSCRIPTION_STATUS_CANCELLED: "cancelled",
    pb.SUBSCRIPTION_STATUS_FAILED: "failed",
    pb.SUBSCRIPTION_STATUS_EXPIRED: "expired",
    pb.SUBSCRIPTION_STATUS_PAST_DUE: "past_due",
}
STATUS_VALUES: dict[str, pb.SubscriptionStatus.ValueType] = {
    "pending": pb.SUBSCRIPTION_STATUS_PENDING,
    "active": pb.SUBSCRIPTION_STATUS_ACTIVE,
    "on_hold": pb.SUBSCRIPTION_STATUS_ON_HOLD,
    "paused": pb.SUBSCRIPTION_STATUS_PAUSED,
    "cancelled": pb.SUBSCRIPTION_STATUS_CANCELLED,
    "failed": pb.SUBSCRIPTION_STATUS_FAILED,
    "expired": pb.SUBSCRIPTION_STATUS_EXPIRED,
    "past_due": pb.SUBSCRIPTION_STATUS_PAST_DUE,
}
INTERVAL_NAMES: dict[int, Interval] = {
    pb.TIME_INTERVAL_DAY: "Day",
    pb.TIME_INTERVAL_WEEK: "Week",
    pb.TIME_INTERVAL_MONTH: "Month",
    pb.TIME_INTERVAL_YEAR: "Year",
}
FEEDBACK_VALUES: dict[str, pb.CancellationFeedback.ValueType] = {
    name.removeprefix("CANCELLATION_FEEDBACK_").lower(): pb.CancellationFeedback.ValueType(value)
    for name, value in pb.CancellationFeedback.items()
    if value != pb.CANCELLATION_FEEDBACK_UNSPECIFIED
}
FEEDBACK_NAMES = {value: name for name, value in FEEDBACK_VALUES.items()}
_CANCELLED_BY = {
    pb.CANCELLED_BY_CUSTOMER: "customer",
    pb.CANCELLED_BY_MERCHANT: "api_key",
}


# The subscriptions service's page bound (a larger page number is refused there).
PageNumber = Annotated[int, Field(ge=0, le=MAX_PAGE_NUMBER)]


def _only(*allowed: object) -> Any:
    """A BeforeValidator: values the SDK may send but we do not implement are unsupported."""

    def check(value: Any) -> Any:
        if value is not None and value not in allowed:
            raise PydanticCustomError(
                UNSUPPORTED, "Not supported by this server: {value}", {"value": value}
            )
        return value

    return BeforeValidator(check)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# Dodo's tax_id: free text; the subscriptions service keeps at most 64 characters.
TaxId = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class BillingAddressIn(_Body):
    """Dodo's BillingAddress."""

    country: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")] = Field(
        description="ISO 3166-1 alpha-2, upper case."
    )
    # The subscriptions service's limits (subscriptions.subscriptions.models.BillingAddress).
    city: Annotated[str, StringConstraints(max_length=200)] | None = None
    state: Annotated[str, StringConstraints(max_length=200)] | None = None
    street: Text | None = None
    zipcode: Annotated[str, StringConstraints(max_length=50)] | None = None

    def to_proto(self) -> pb.BillingAddress:
        """The wire form."""
        return pb.BillingAddress(
            country=self.country,
            city=self.city or "",
            state=self.state or "",
            street=self.street or "",
            zipcode=self.zipcode or "",
        )


class ExistingCustomerIn(_Body):
    """Attach an existing customer."""

    customer_id: Annotated[str, StringConstraints(min_length=1, max_length=128)]


class NewCustomerIn(_Body):
    """Create (or reuse, by email) a customer."""

    email: EmailAddress
    name: PersonName | None = None
    phone_number: PhoneNumber | None = None
    create_new_customer: bool | None = None


_HTTP_URL: dict[str, JsonValue] = {
    "type": "string",
    "pattern": HTTP_URL_PATTERN,
    "maxLength": URL_MAX_LENGTH,
}


class AddonIn(_Body):
    """Dodo's AttachAddonParam."""

    addon_id: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    quantity: Annotated[int, Field(ge=1, le=10_000), BeforeValidator(json_integer)] = Field(
        description="Units of this add-on (at most the add-on's max_quantity when it sets one)."
    )

    def to_proto(self) -> pb.AddonQuantity:
        """The wire form."""
        return pb.AddonQuantity(addon_id=self.addon_id, quantity=self.quantity)


# A product offers at most 20 add-ons, each taken once.
AddonsIn = Annotated[list[AddonIn], Field(max_length=20)]


class CreateSubscriptionBody(_Body):
    """``POST /subscriptions``."""

    # A payment link needs a return_url and takes neither a saved method nor a trial.
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "if": {"properties": {"payment_link": {"const": True}}, "required": ["payment_link"]},
            "then": {
                "required": ["return_url"],
                "properties": {
                    "return_url": _HTTP_URL,
                    "payment_method_id": {"type": "null"},
                    "trial_period_days": {"type": "null"},
                },
            },
        },
    )

    billing: BillingAddressIn
    customer: ExistingCustomerIn | NewCustomerIn
    product_id: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    quantity: Annotated[int, Field(ge=1, le=10_000), BeforeValidator(json_integer)]
    metadata: Metadata | None = None
    payment_method_id: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = None
    trial_period_days: (
        Annotated[int, Field(ge=0, le=10_000), BeforeValidator(json_integer)] | None
    ) = None
    return_url: Annotated[str, StringConstraints(max_length=2000)] | None = None
    payment_link: bool | None = Field(
        default=None,
        description="true: the first period is paid on the hosted page (needs return_url).",
    )
    addons: AddonsIn | None = Field(
        default=None,
        description="Add-ons the product offers (its addons), each once; charged with the "
        "first period and every renewal. One the product does not offer, archived, in "
        "another currency or over its max_quantity: 409 ADDON_UNAVAILABLE.",
    )
    allowed_payment_method_types: Unsupported
    billing_currency: Unsupported
    customer_business_name: Unsupported
    discount_code: Unsupported
    discount_codes: Unsupported
    force_3ds: Unsupported
    mandate_min_amount_inr_paise: Unsupported
    on_demand: Unsupported
    one_time_product_cart: Unsupported
    redirect_immediately: bool | None = None
    require_phone_number: bool | None = None
    short_link: Unsupported
    show_saved_payment_methods: bool | None = None
    tax_id: TaxId | None = Field(
        default=None, description="The buyer's tax id (e.g. a VAT number); printed on invoices."
    )


def _pause_and_resume_alone_schema(schema: dict[str, Any]) -> None:
    """Say in the document what the validator checks: with ``status`` ``paused`` or
    ``active``, every other field is absent or null."""
    others = [name for name in schema.get("properties", {}) if name != "status"]
    schema["if"] = {
        "properties": {"status": {"enum": ["paused", "active"]}},
        "required": ["status"],
    }
    schema["then"] = {"properties": {name: {"type": "null"} for name in others}}


class UpdateSubscriptionBody(_Body):
    """``PATCH /subscriptions/{id}``."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, json_schema_extra=_pause_and_resume_alone_schema
    )

    billing: BillingAddressIn | None = None
    cancel_at_next_billing_date: bool | None = None
    cancel_reason: CancelReason | None = None
    cancellation_comment: Annotated[str, StringConstraints(max_length=1000)] | None = None
    cancellation_feedback: Feedback | None = None
    metadata: Metadata | None = None
    next_billing_date: Rfc3339 | None = None
    status: Annotated[
        Literal["cancelled", "paused", "active"] | None, _only("cancelled", "paused", "active")
    ] = Field(
        default=None,
        description=(
            "`cancelled` cancels now; `paused` pauses an active subscription and `active` "
            "resumes a paused one (each of these two alone in the body)."
        ),
    )
    credit_entitlement_cart: Unsupported
    customer_business_name: Unsupported
    customer_name: Unsupported
    disable_on_demand: Unsupported
    pause: Unsupported
    subscription_period_count: Unsupported
    subscription_period_interval: Unsupported
    tax_id: Unsupported

    @model_validator(mode="after")
    def _pause_and_resume_go_alone(self) -> UpdateSubscriptionBody:
        # Dodo: `paused` and `active` must be sent alone; any other field with them is a 422.
        # A field sent as null changes nothing (the SDK and the document allow it), so
        # only fields with a value count.
        others = {
            name for name in self.model_fields_set - {"status"} if getattr(self, name) is not None
        }
        if self.status in ("paused", "active") and others:
            raise ValueError(f'status "{self.status}" must be sent alone')
        return self


class UpdatePaymentMethodBody(_Body):
    """``POST /subscriptions/{id}/update-payment-method`` (the SDK sends the union flat)."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "if": {"properties": {"type": {"const": "new"}}},
            "then": {"required": ["return_url"], "properties": {"return_url": _HTTP_URL}},
            "else": {
                "required": ["payment_method_id"],
                "properties": {"payment_method_id": {"type": "string", "minLength": 1}},
            },
        },
    )

    type: Literal["existing", "new"] = Field(
        description=(
            '"existing" with payment_method_id, or "new": a hosted page that saves the card '
            "(and for an on_hold subscription pays the dues with it)."
        )
    )
    payment_method_id: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = None
    return_url: Annotated[str, StringConstraints(max_length=2000)] | None = None
    allowed_payment_method_types: Unsupported


class ChargeBody(_Body):
    """``POST /subscriptions/{id}/charge``."""

    product_price: Annotated[int, Field(ge=1, le=100_000_000), BeforeValidator(json_integer)]
    product_currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] | None = None
    product_description: Annotated[str, StringConstraints(max_length=500)] | None = None
    metadata: Metadata | None = None
    adaptive_currency_fees_inclusive: Unsupported
    customer_balance_config: Unsupported


ProrationBillingMode = Literal[
    "prorated_immediately",
    "full_immediately",
    "difference_immediately",
    "do_not_bill",
    "prorated_immediately_keep_cycle",
]
PRORATION_VALUES: dict[str, pb.ProrationBillingMode.ValueType] = {
    "prorated_immediately": pb.PRORATION_BILLING_MODE_PRORATED_IMMEDIATELY,
    "full_immediately": pb.PRORATION_BILLING_MODE_FULL_IMMEDIATELY,
    "difference_immediately": pb.PRORATION_BILLING_MODE_DIFFERENCE_IMMEDIATELY,
    "do_not_bill": pb.PRORATION_BILLING_MODE_DO_NOT_BILL,
    "prorated_immediately_keep_cycle": pb.PRORATION_BILLING_MODE_PRORATED_IMMEDIATELY_KEEP_CYCLE,
}


class ChangePlanBody(_Body):
    """``POST /subscriptions/{id}/change-plan`` and ``.../change-plan/preview`` (one body)."""

    product_id: Annotated[str, StringConstraints(min_length=1, max_length=128)] = Field(
        description="The new product: another recurring product of the business in the "
        "subscription's currency, or the current one (a quantity change)."
    )
    proration_billing_mode: ProrationBillingMode = Field(
        description="How the change is charged now (rules in the subscriptions README)."
    )
    quantity: Annotated[int, Field(ge=1, le=10_000), BeforeValidator(json_integer)] = Field(
        description="Units of the new plan (at most the product's max_quantity when set)."
    )
    effective_at: Literal["immediately", "next_billing_date"] | None = Field(
        default=None,
        description="immediately (default) or next_billing_date (scheduled; the renewal "
        "then charges the new price).",
    )
    on_payment_failure: Literal["prevent_change", "apply_change"] | None = Field(
        default=None,
        description="prevent_change: a declined charge changes nothing; apply_change "
        "(default): the change applies and the subscription goes on_hold for the new plan.",
    )
    cancel_scheduled_change_plan: bool | None = Field(
        default=None, description="Replace a scheduled change with this one."
    )
    metadata: Metadata | None = None
    return_url: Annotated[str, StringConstraints(max_length=2000)] | None = None
    addons: AddonsIn | None = Field(
        default=None,
        description="Add-ons of the new plan, each offered by the new product, each once. "
        "As Dodo: leaving it empty or out removes the existing ones.",
    )
    collect_via_payment_link: Annotated[Literal[False] | None, _only(False)] = Field(
        default=None, description="Not supported here: only null or false is accepted."
    )
    cancel_older_payment_link: Annotated[Literal[False] | None, _only(False)] = Field(
        default=None, description="Not supported here: only null or false is accepted."
    )
    adaptive_currency_fees_inclusive: Unsupported
    discount_code: Unsupported
    discount_codes: Unsupported


def _tax_category(value: str) -> TaxCategory:
    # The service snapshots the add-on's category; "saas" only covers a line without one.
    return cast(TaxCategory, value) if value in TAX_CATEGORIES else "saas"


class ImmediateChargeAddonLineOut(BaseModel):
    """Dodo's ImmediateChargeLineItemAddon (a credit for the old quantity is negative)."""

    type: Literal["addon"] = "addon"
    id: str
    name: str
    description: str | None = None
    currency: str
    quantity: int
    unit_price: int
    proration_factor: float
    tax_category: TaxCategory
    tax_inclusive: bool
    tax: int | None = None
    tax_rate: float = Field(default=0.0, description="Amounts are pre-tax here: always 0.")
    subtotal: int = Field(description="Extension: this line's signed amount, minor units.")


class ImmediateChargeLineOut(BaseModel):
    """Dodo's ImmediateChargeLineItemSubscription (a credit for the old plan is negative)."""

    type: Literal["subscription"] = "subscription"
    id: str
    product_id: str
    name: str | None = None
    description: str | None = None
    currency: str
    quantity: int
    unit_price: int
    proration_factor: float
    tax_inclusive: bool
    tax: int | None = None
    tax_rate: float | None = None
    subtotal: int = Field(description="Extension: this line's signed amount, minor units.")


class ImmediateChargeSummaryOut(BaseModel):
    """Dodo's ImmediateChargeSummary."""

    currency: str
    customer_credits: int
    customer_credits_currency: str
    settlement_amount: int
    settlement_currency: str
    total_amount: int = Field(description="Charged now, minor units.")
    tax: int | None = None
    settlement_tax: int | None = None


class ImmediateChargeOut(BaseModel):
    """Dodo's ImmediateCharge."""

    effective_at: datetime
    line_items: list[
        Annotated[ImmediateChargeLineOut | ImmediateChargeAddonLineOut, Field(discriminator="type")]
    ]
    summary: ImmediateChargeSummaryOut


class AdvanceClockBody(_Body):
    """``POST /test-helpers/clock/advance``: exactly one of ``seconds`` or ``to``."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={"oneOf": [{"required": ["seconds"]}, {"required": ["to"]}]},
    )

    seconds: (
        Annotated[int, Field(ge=1, le=20 * 366 * 86_400), BeforeValidator(json_integer)]
        | SkipJsonSchema[None]
    ) = Field(default=None, description="How far forward to move (seconds).")
    to: Rfc3339 | SkipJsonSchema[None] = Field(
        default=None, description="Move to this instant (never before the clock's now: 409)."
    )

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        # The document offers no null here: absent is the only way to leave one out.
        if isinstance(data, dict):
            for name in ("seconds", "to"):
                if name in data and data[name] is None:
                    raise ValueError(f"{name} must not be null; leave it out")
        return data


class ListSubscriptionsQuery(SdkPages, _Body):
    """Query string of ``GET /subscriptions``."""

    page_size: Annotated[PageSize, BeforeValidator(_query_int)] = 10
    page_number: Annotated[PageNumber, BeforeValidator(_query_int)] = Field(
        default=0,
        description=(
            "Page to return. The SDK's auto-pagination asks without it, then for 2, 3, …: "
            "0 and 1 both mean the first page."
        ),
    )
    status: Status | None = None
    customer_id: Annotated[str, StringConstraints(max_length=128)] | None = None
    product_id: Annotated[str, StringConstraints(max_length=128)] | None = None
    cancel_at_next_billing_date: QueryBool | None = None
    created_at_gte: Rfc3339 | None = None
    created_at_lte: Rfc3339 | None = None
    brand_id: Annotated[str, StringConstraints(max_length=128)] | None = None
    locale: Locale | None = None


class RetrieveQuery(_Body):
    """Query string of ``GET /subscriptions/{id}``."""

    locale: Locale | None = None


class CustomerLimitedOut(BaseModel):
    """Dodo's CustomerLimitedDetails."""

    customer_id: str
    email: str
    name: str


class BillingOut(BaseModel):
    """Dodo's BillingAddress."""

    country: str
    city: str | None = None
    state: str | None = None
    street: str | None = None
    zipcode: str | None = None


def _time(stamp: Timestamp) -> datetime:
    return stamp.ToDatetime(tzinfo=UTC)


class AddonCartOut(BaseModel):
    """Dodo's AddonCartResponseItem."""

    addon_id: str
    quantity: int


class ScheduledChangeAddonOut(BaseModel):
    """Dodo's ScheduledPlanChange addon."""

    addon_id: str
    name: str
    quantity: int


class ScheduledChangeOut(BaseModel):
    """Dodo's ScheduledPlanChange."""

    id: str
    product_id: str
    product_name: str | None = None
    product_description: str | None = None
    quantity: int
    addons: list[ScheduledChangeAddonOut] = Field(default_factory=list)
    effective_at: datetime
    created_at: datetime

    @classmethod
    def from_proto(cls, change: pb.ScheduledPlanChange) -> ScheduledChangeOut:
        """Render the service's message."""
        names = {addon.addon_id: addon.name for addon in change.addon_details}
        return cls(
            id=change.id,
            product_id=change.product_id,
            product_name=change.product_name or None,
            quantity=change.quantity,
            addons=[
                ScheduledChangeAddonOut(
                    addon_id=addon.addon_id,
                    name=names.get(addon.addon_id, addon.addon_id),
                    quantity=addon.quantity,
                )
                for addon in change.addons
            ],
            effective_at=_time(change.effective_at),
            created_at=_time(change.created_at),
        )


class SubscriptionOut(BaseModel):
    """Dodo's Subscription."""

    subscription_id: str
    status: Status
    product_id: str
    product_name: str | None
    quantity: int
    recurring_pre_tax_amount: int
    currency: str
    tax_inclusive: bool
    payment_frequency_count: int
    payment_frequency_interval: Interval
    subscription_period_count: int
    subscription_period_interval: Interval
    trial_period_days: int
    created_at: datetime
    previous_billing_date: datetime | None
    next_billing_date: datetime | None
    expires_at: datetime | None
    cancelled_at: datetime | None
    cancel_at_next_billing_date: bool
    cancellation_feedback: str | None
    cancellation_comment: str | None
    cancelled_by: dict[str, Any] | None
    payment_method_id: str | None
    has_payment_method: bool
    on_demand: bool
    metadata: dict[str, str]
    billing: BillingOut
    tax_id: str | None = Field(default=None, description="The buyer's tax id, when given.")
    customer: CustomerLimitedOut
    brand_id: str
    addons: list[AddonCartOut] = Field(
        default_factory=list, description="The add-ons paid each period (in the amount)."
    )
    meters: list[Any] = Field(default_factory=list)
    credit_entitlement_cart: list[Any] = Field(default_factory=list)
    meter_credit_entitlement_cart: list[Any] = Field(default_factory=list)
    discounts: list[Any] = Field(default_factory=list)
    amount_due: int = Field(description="Minor units owed now (> 0 only when on_hold).")
    paused_at: datetime | None = Field(
        default=None, description="When it was paused, while it is paused; null otherwise."
    )
    scheduled_change: ScheduledChangeOut | None = Field(
        default=None, description="A plan change waiting for next_billing_date; null when none."
    )

    @classmethod
    def from_proto(cls, sub: pb.Subscription, customer: CustomerLimitedOut) -> SubscriptionOut:
        """Render the subscriptions service's message."""

        def opt(name: str) -> datetime | None:
            return _time(getattr(sub, name)) if sub.HasField(name) else None  # type: ignore[arg-type]

        billing = sub.billing
        by = _CANCELLED_BY.get(sub.cancelled_by)
        return cls(
            subscription_id=sub.subscription_id,
            status=STATUS_NAMES.get(sub.status, "pending"),
            product_id=sub.product_id,
            product_name=sub.product_name or None,
            quantity=sub.quantity or 1,
            recurring_pre_tax_amount=sub.recurring_pre_tax_amount,
            currency=sub.currency,
            tax_inclusive=sub.tax_inclusive,
            payment_frequency_count=sub.payment_frequency_count or 1,
            payment_frequency_interval=INTERVAL_NAMES.get(sub.payment_frequency_interval, "Month"),
            subscription_period_count=sub.subscription_period_count or 1,
            subscription_period_interval=INTERVAL_NAMES.get(
                sub.subscription_period_interval, "Year"
            ),
            trial_period_days=sub.trial_period_days,
            created_at=_time(sub.created_at),
            previous_billing_date=opt("previous_billing_date"),
            next_billing_date=opt("next_billing_date"),
            expires_at=opt("expires_at"),
            cancelled_at=opt("cancelled_at"),
            cancel_at_next_billing_date=sub.cancel_at_next_billing_date,
            cancellation_feedback=FEEDBACK_NAMES.get(sub.cancellation_feedback),
            cancellation_comment=sub.cancellation_comment or None,
            cancelled_by={"actor_type": by} if by else None,
            payment_method_id=sub.payment_method_id or None,
            has_payment_method=bool(sub.payment_method_id),
            on_demand=sub.on_demand,
            metadata=dict(sub.metadata),
            billing=BillingOut(
                country=billing.country or "US",
                city=billing.city or None,
                state=billing.state or None,
                street=billing.street or None,
                zipcode=billing.zipcode or None,
            ),
            tax_id=sub.tax_id or None,
            customer=customer,
            brand_id=sub.business_id,
            amount_due=sub.amount_due,
            paused_at=opt("paused_at"),
            addons=[AddonCartOut(addon_id=a.addon_id, quantity=a.quantity) for a in sub.addons],
            scheduled_change=(
                ScheduledChangeOut.from_proto(sub.scheduled_change)
                if sub.HasField("scheduled_change")
                else None
            ),
        )


class SubscriptionListOut(BaseModel):
    """One page of subscriptions."""

    items: list[SubscriptionOut]


class CreateSubscriptionOut(BaseModel):
    """Dodo's SubscriptionCreateResponse."""

    subscription_id: str
    payment_id: str
    customer: CustomerLimitedOut
    metadata: dict[str, str]
    recurring_pre_tax_amount: int
    payment_method_required: bool = True
    addons: list[AddonCartOut] = Field(default_factory=list)
    payment_link: str | None = Field(
        default=None, description="The 3-D Secure page when the first charge needs the customer."
    )
    client_secret: str | None = None
    expires_on: datetime | None = None
    discount_ids: list[str] | None = None


class PaymentLinkOut(BaseModel):
    """Dodo's update-payment-method response."""

    payment_id: str | None = None
    payment_link: str | None = None
    client_secret: str | None = None
    expires_on: datetime | None = None


class ChargeOut(BaseModel):
    """Dodo's SubscriptionChargeResponse."""

    payment_id: str


class ClockOut(BaseModel):
    """A business's test clock."""

    business_id: str
    now: datetime
    offset_seconds: int


class PreviewChangePlanOut(BaseModel):
    """Dodo's SubscriptionPreviewChangePlanResponse."""

    immediate_charge: ImmediateChargeOut
    new_plan: SubscriptionOut

    @classmethod
    def from_proto(
        cls, preview: pb.PlanChangePreview, customer: CustomerLimitedOut
    ) -> PreviewChangePlanOut:
        """Render the service's preview."""
        currency = preview.currency
        lines: list[ImmediateChargeLineOut | ImmediateChargeAddonLineOut] = [
            ImmediateChargeAddonLineOut(
                id=line.id,
                name=line.name or line.id,
                currency=line.currency or currency,
                quantity=line.quantity,
                unit_price=line.unit_price,
                proration_factor=line.proration_factor,
                tax_category=_tax_category(line.tax_category),
                tax_inclusive=line.tax_inclusive,
                subtotal=line.amount,
            )
            if line.type == "addon"
            else ImmediateChargeLineOut(
                id=line.id,
                product_id=line.id,
                name=line.name or None,
                currency=line.currency or currency,
                quantity=line.quantity,
                unit_price=line.unit_price,
                proration_factor=line.proration_factor,
                tax_inclusive=line.tax_inclusive,
                subtotal=line.amount,
            )
            for line in preview.line_items
        ]
        return cls(
            immediate_charge=ImmediateChargeOut(
                effective_at=_time(preview.effective_at),
                line_items=lines,
                summary=ImmediateChargeSummaryOut(
                    currency=currency,
                    customer_credits=0,
                    customer_credits_currency=currency,
                    settlement_amount=preview.immediate_amount,
                    settlement_currency=currency,
                    total_amount=preview.immediate_amount,
                ),
            ),
            new_plan=SubscriptionOut.from_proto(preview.new_plan, customer),
        )
