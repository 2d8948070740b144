"""Webhook bodies: ``{business_id, type, timestamp, data}`` with ``data`` in the merchant
API's shape (``GET /payments/{id}``, ``GET /subscriptions/{id}``).

The event carries the producer's fields; the customer's email and name come
from this service's own recipient directory (learned from auth's customer
events). What neither has is sent as the API's neutral value; the README lists
the gaps.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from billing_kit.events import CloudEvent
from billing_kit.scoping import Mode
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from notifications.models import Recipient
from notifications.webhooks.models import (
    LICENSE_KEY_EVENT_TYPES,
    PAYMENT_EVENT_TYPES,
    SUBSCRIPTION_EVENT_TYPES,
)


class EventScope(BaseModel):
    """What every delivered event's data must say: whose it is."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    business_id: str = Field(min_length=1, max_length=128, description="the owning business")
    mode: Mode = Field(description='"test" or "live"')


class PaymentEventIn(EventScope):
    """The fields of payments' ``PaymentEventData`` a webhook shows (others ignored)."""

    payment_id: str = Field(min_length=1, description="pay_…")
    customer_id: str = Field(min_length=1, description="the paying customer")
    subscription_id: str = Field(default="", description="the subscription paid, or empty")
    total_amount: int = Field(ge=0, description="minor units")
    currency: str = Field(description="ISO 4217")
    status: str = Field(description="Dodo's IntentStatus")
    charge_type: str = Field(default="new", description="new, renewal, on_demand or plan_change")
    payment_method_id: str = Field(default="", description="the method charged")
    card_brand: str = Field(default="", description="e.g. visa")
    card_last_four: str = Field(default="", description="last four digits")
    error_code: str = Field(default="", description="why it failed")
    error_message: str = Field(default="", description="plain words")
    metadata: dict[str, str] = Field(default_factory=dict, description="caller's key-values")
    created_at: AwareDatetime = Field(description="when the charge was asked for")
    updated_at: AwareDatetime = Field(description="last status change")
    lines: list[dict[str, Any]] = Field(default_factory=list, description="what was bought")
    billing: dict[str, Any] | None = Field(default=None, description="billing address")


class AddonIn(BaseModel):
    """Dodo's AddonCartResponseItem, as subscriptions' events carry it."""

    addon_id: str = Field(min_length=1, description="adn_…")
    quantity: int = Field(ge=1, description="units paid each period")


class SubscriptionEventIn(EventScope):
    """The fields of subscriptions' ``SubscriptionEventData`` a webhook shows."""

    subscription_id: str = Field(min_length=1, description="sub_…")
    customer_id: str = Field(min_length=1, description="the subscribing customer")
    product_id: str = Field(description="the product")
    status: str = Field(description="status after the change")
    recurring_pre_tax_amount: int = Field(description="minor units per period")
    currency: str = Field(description="ISO 4217")
    quantity: int = Field(default=1, description="units")
    previous_billing_date: AwareDatetime | None = Field(default=None, description="period start")
    next_billing_date: AwareDatetime | None = Field(default=None, description="next renewal")
    cancel_at_next_billing_date: bool = Field(default=False, description="cancel scheduled")
    cancelled_at: AwareDatetime | None = Field(default=None, description="when cancelled")
    cancellation_feedback: str | None = Field(default=None, description="Dodo's feedback")
    cancellation_comment: str | None = Field(default=None, description="free text")
    payment_method_id: str | None = Field(default=None, description="method renewals charge")
    amount_due: int = Field(default=0, description="owed now")
    payment_id: str | None = Field(default=None, description="the payment behind the change")
    created_at: AwareDatetime | None = Field(default=None, description="when it was created")
    product_name: str = Field(default="", description="the product's name")
    tax_inclusive: bool = Field(default=False, description="price includes tax")
    payment_frequency_count: int = Field(default=1, description="renewal every n intervals")
    payment_frequency_interval: str = Field(default="Month", description="renewal interval")
    subscription_period_count: int = Field(default=1, description="term in intervals")
    subscription_period_interval: str = Field(default="Year", description="term interval")
    trial_period_days: int = Field(default=0, description="trial days")
    expires_at: AwareDatetime | None = Field(default=None, description="end of the term")
    cancelled_by: str | None = Field(default=None, description="who cancelled")
    metadata: dict[str, str] = Field(default_factory=dict, description="merchant key-values")
    billing: dict[str, Any] | None = Field(default=None, description="billing address")
    on_demand: bool = Field(default=False, description="charged on demand")
    paused_at: AwareDatetime | None = Field(default=None, description="when paused, while paused")
    addons: list[AddonIn] = Field(default_factory=list, description="add-ons paid each period")


class CustomerOut(BaseModel):
    """Dodo's CustomerLimitedDetails."""

    customer_id: str
    email: str
    name: str
    metadata: dict[str, str] = Field(default_factory=dict)
    phone_number: str | None = None


class PaymentData(BaseModel):
    """Dodo's Payment, as ``GET /payments/{payment_id}`` renders it."""

    payment_id: str
    business_id: str
    brand_id: str
    created_at: datetime
    updated_at: datetime | None
    currency: str
    total_amount: int
    customer: CustomerOut
    metadata: dict[str, str]
    status: str | None
    charge_type: str | None
    subscription_id: str | None
    subscription_ids: list[str]
    payment_method: str | None = "card"
    payment_method_id: str | None
    payment_method_type: str | None
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
    is_update_payment_method: bool = False
    settlement_amount: int
    settlement_currency: str
    disputes: list[dict[str, Any]] = Field(default_factory=list)
    refunds: list[dict[str, Any]] = Field(default_factory=list)
    tax: int | None = None
    billing: dict[str, Any] | None = None
    product_cart: list[dict[str, Any]] | None = None


class SubscriptionCustomerOut(BaseModel):
    """The customer as ``GET /subscriptions/{id}`` shows it."""

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


class SubscriptionData(BaseModel):
    """Dodo's Subscription, as ``GET /subscriptions/{id}`` renders it, plus the webhook extras."""

    subscription_id: str
    status: str
    product_id: str
    product_name: str | None
    quantity: int
    recurring_pre_tax_amount: int
    currency: str
    tax_inclusive: bool
    payment_frequency_count: int
    payment_frequency_interval: str
    subscription_period_count: int
    subscription_period_interval: str
    trial_period_days: int
    # None only for an event written before the producer sent it.
    created_at: datetime | None
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
    customer: SubscriptionCustomerOut
    brand_id: str
    addons: list[dict[str, Any]] = Field(default_factory=list)
    meters: list[Any] = Field(default_factory=list)
    credit_entitlement_cart: list[Any] = Field(default_factory=list)
    meter_credit_entitlement_cart: list[Any] = Field(default_factory=list)
    discounts: list[Any] = Field(default_factory=list)
    amount_due: int
    paused_at: datetime | None = None
    # Webhook-only fields of Dodo's subscription events.
    past_due_ends_at: datetime | None = None
    payment_id: str | None = None


# The API's cancelled_by.actor_type for the subscriptions service's CancelledBy.
_CANCELLED_BY = {"customer": "customer", "merchant": "api_key"}


def _customer(customer_id: str, recipient: Recipient | None) -> CustomerOut:
    return CustomerOut(
        customer_id=customer_id,
        email=recipient.email if recipient else "",
        name=recipient.name if recipient else "",
    )


def payment_data(event: PaymentEventIn, recipient: Recipient | None) -> PaymentData:
    """``data`` of a ``payment.*`` webhook, field for field as the merchant API shows it."""
    return PaymentData(
        payment_id=event.payment_id,
        business_id=event.business_id,
        brand_id=event.business_id,
        created_at=event.created_at,
        updated_at=event.updated_at,
        currency=event.currency,
        total_amount=event.total_amount,
        customer=_customer(event.customer_id, recipient),
        metadata=event.metadata,
        status=event.status or None,
        charge_type=event.charge_type or None,
        subscription_id=event.subscription_id or None,
        subscription_ids=[event.subscription_id] if event.subscription_id else [],
        payment_method_id=event.payment_method_id or None,
        payment_method_type=event.card_brand or None,
        card_network=event.card_brand or None,
        card_last_four=event.card_last_four or None,
        error_code=event.error_code or None,
        error_message=event.error_message or None,
        settlement_amount=event.total_amount,
        settlement_currency=event.currency,
        billing=_billing_out(event.billing),
        product_cart=[
            {"product_id": line["product_id"], "quantity": line["quantity"]} for line in event.lines
        ]
        or None,
    )


def _billing_out(billing: dict[str, Any] | None) -> dict[str, Any] | None:
    """Dodo's BillingAddress as the API renders it: empty parts are null."""
    if not billing:
        return None
    return {
        "country": billing.get("country"),
        **{k: billing.get(k) or None for k in ("city", "state", "street", "zipcode")},
    }


def subscription_data(event: SubscriptionEventIn, recipient: Recipient | None) -> SubscriptionData:
    """``data`` of a ``subscription.*`` webhook (the fields the event carries)."""
    billing = event.billing or {}
    by = _CANCELLED_BY.get(event.cancelled_by or "")
    return SubscriptionData(
        subscription_id=event.subscription_id,
        status=event.status,
        product_id=event.product_id,
        product_name=event.product_name or None,
        quantity=event.quantity or 1,
        recurring_pre_tax_amount=event.recurring_pre_tax_amount,
        currency=event.currency,
        tax_inclusive=event.tax_inclusive,
        payment_frequency_count=event.payment_frequency_count,
        payment_frequency_interval=event.payment_frequency_interval,
        subscription_period_count=event.subscription_period_count,
        subscription_period_interval=event.subscription_period_interval,
        trial_period_days=event.trial_period_days,
        created_at=event.created_at,
        previous_billing_date=event.previous_billing_date,
        next_billing_date=event.next_billing_date,
        expires_at=event.expires_at,
        cancelled_at=event.cancelled_at,
        cancel_at_next_billing_date=event.cancel_at_next_billing_date,
        cancellation_feedback=event.cancellation_feedback,
        cancellation_comment=event.cancellation_comment or None,
        cancelled_by={"actor_type": by} if by else None,
        payment_method_id=event.payment_method_id or None,
        has_payment_method=bool(event.payment_method_id),
        on_demand=event.on_demand,
        metadata=event.metadata,
        # As the API: a subscription without an address shows the default country.
        billing=BillingOut(
            country=billing.get("country") or "US",
            city=billing.get("city") or None,
            state=billing.get("state") or None,
            street=billing.get("street") or None,
            zipcode=billing.get("zipcode") or None,
        ),
        customer=SubscriptionCustomerOut(
            customer_id=event.customer_id,
            email=recipient.email if recipient else "",
            name=recipient.name if recipient else "",
        ),
        brand_id=event.business_id,
        amount_due=event.amount_due,
        paused_at=event.paused_at,
        payment_id=event.payment_id if event.payment_id else None,
        addons=[addon.model_dump() for addon in event.addons],
    )


class LicenseKeyEventIn(EventScope):
    """The fields of subscriptions' ``LicenseKeyCreatedData`` a webhook shows."""

    license_key_id: str = Field(min_length=1, description="lic_…")
    customer_id: str = Field(min_length=1, description="the key's owner")
    product_id: str = Field(min_length=1, description="the product it unlocks")
    source: Literal["auto", "import", "manual"] = Field(description="how it was made")
    payment_id: str = Field(default="", description="the payment that bought it, or empty")
    subscription_id: str = Field(default="", description="the subscription it follows")
    key_sealed: str = Field(min_length=1, repr=False, description="the key, sealed")
    activations_limit: int | None = Field(default=None, ge=0, description="null = unlimited")
    expires_at: AwareDatetime | None = Field(default=None, description="null = never")
    instances_count: int = Field(default=0, ge=0, description="activations so far")
    disabled: bool = Field(default=False, description="disabled by the merchant")
    created_at: AwareDatetime | None = Field(default=None, description="when it was issued")


class LicenseKeyData(BaseModel):
    """Dodo's ``LicenseKey``, field for field as ``GET /license_keys/{id}`` answers.

    ``key`` is empty in the stored body: the worker puts the key in, opened from
    the delivery's sealed copy, just before each attempt (:func:`with_license_key`).
    """

    id: str
    brand_id: str = Field(description="the business id (one brand per business here)")
    business_id: str
    created_at: datetime
    customer_id: str
    instances_count: int
    key: str
    product_id: str
    source: Literal["auto", "import", "manual"]
    status: Literal["active", "expired", "disabled"]
    activations_limit: int | None
    expires_at: datetime | None
    payment_id: str | None
    subscription_id: str | None


def license_key_data(event: LicenseKeyEventIn, at: datetime) -> LicenseKeyData:
    """The key as the merchant API shows it, its status as of ``at`` (the event's time)."""
    status: Literal["active", "expired", "disabled"] = "active"
    if event.disabled:
        status = "disabled"
    elif event.expires_at is not None and at >= event.expires_at:
        status = "expired"
    return LicenseKeyData(
        id=event.license_key_id,
        brand_id=event.business_id,
        business_id=event.business_id,
        created_at=event.created_at or at,
        customer_id=event.customer_id,
        instances_count=event.instances_count,
        key="",
        product_id=event.product_id,
        source=event.source,
        status=status,
        activations_limit=event.activations_limit,
        expires_at=event.expires_at,
        payment_id=event.payment_id or None,
        subscription_id=event.subscription_id or None,
    )


def sealed_license_key_of(event: CloudEvent) -> str:
    """The sealed key a license key event carries ("" for other events)."""
    if event.type in LICENSE_KEY_EVENT_TYPES:
        value = event.data.get("key_sealed")
        return value if isinstance(value, str) else ""
    return ""


def with_license_key(body: str, key: str) -> str:
    """``body`` with ``data.key`` filled in; the same bytes for the same key every time
    (key order kept, the separators of :func:`webhook_body`)."""
    payload = json.loads(body)
    payload["data"]["key"] = key
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def customer_of(event_type: str, data: dict[str, Any]) -> str | None:
    """The customer id a payment or subscription event is about (for the directory lookup)."""
    if event_type in PAYMENT_EVENT_TYPES or event_type in SUBSCRIPTION_EVENT_TYPES:
        value = data.get("customer_id")
        return value if isinstance(value, str) and value else None
    return None


def event_data(event: CloudEvent, recipient: Recipient | None) -> dict[str, Any]:
    """The Dodo-shaped ``data`` of ``event`` (ValidationError when the data is bad)."""
    if event.type in PAYMENT_EVENT_TYPES:
        model: BaseModel = payment_data(PaymentEventIn.model_validate(event.data), recipient)
        return model.model_dump(mode="json")
    if event.type in SUBSCRIPTION_EVENT_TYPES:
        model = subscription_data(SubscriptionEventIn.model_validate(event.data), recipient)
        return model.model_dump(mode="json")
    if event.type in LICENSE_KEY_EVENT_TYPES:
        key = license_key_data(LicenseKeyEventIn.model_validate(event.data), event.time)
        return key.model_dump(mode="json")
    # Later types: the producer's data, minus our internal mode.
    EventScope.model_validate(event.data)
    return {k: v for k, v in event.data.items() if k != "mode"}


def webhook_body(event: CloudEvent, data: dict[str, Any], business_id: str) -> str:
    """The exact bytes every attempt sends (and signs)."""
    payload = {
        "business_id": business_id,
        "type": event.type,
        "timestamp": _iso(event.time),
        "data": data,
    }
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def _iso(moment: datetime) -> str:
    text = moment.isoformat()
    return text.replace("+00:00", "Z")
