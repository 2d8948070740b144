"""Domain models of the subscription aggregate (Dodo Payments' shape)."""

from __future__ import annotations

from enum import StrEnum

from billing_kit.scoping import Mode
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

SUBSCRIPTION_PREFIX = "sub_"

# Event types (Dodo webhook names); the data of each is SubscriptionEventData.
SUBSCRIPTION_ACTIVE = "subscription.active"
SUBSCRIPTION_RENEWED = "subscription.renewed"
SUBSCRIPTION_ON_HOLD = "subscription.on_hold"
SUBSCRIPTION_CANCELLED = "subscription.cancelled"
SUBSCRIPTION_EXPIRED = "subscription.expired"
SUBSCRIPTION_FAILED = "subscription.failed"
SUBSCRIPTION_UPDATED = "subscription.updated"
# A merchant or customer paused / resumed an active subscription (Dodo's webhook names).
SUBSCRIPTION_PAUSED = "subscription.paused"
SUBSCRIPTION_UNPAUSED = "subscription.unpaused"
# A plan, quantity or price change took effect (Dodo's webhook name).
SUBSCRIPTION_PLAN_CHANGED = "subscription.plan_changed"
SCHEDULED_CHANGE_PREFIX = "spc_"
# Emitted once per period, the business's renewal_reminder_days before a renewal.
SUBSCRIPTION_RENEWAL_REMINDER = "subscription.renewal_reminder"


class SubscriptionStatus(StrEnum):
    """The Dodo Payments subscription statuses, stored as these strings."""

    PENDING = "pending"
    ACTIVE = "active"
    ON_HOLD = "on_hold"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    FAILED = "failed"
    EXPIRED = "expired"
    PAST_DUE = "past_due"


class TimeInterval(StrEnum):
    """Dodo's TimeInterval."""

    DAY = "Day"
    WEEK = "Week"
    MONTH = "Month"
    YEAR = "Year"


class CancellationFeedback(StrEnum):
    """Dodo's CancellationFeedback values."""

    TOO_EXPENSIVE = "too_expensive"
    MISSING_FEATURES = "missing_features"
    SWITCHED_SERVICE = "switched_service"
    UNUSED = "unused"
    CUSTOMER_SERVICE = "customer_service"
    LOW_QUALITY = "low_quality"
    TOO_COMPLEX = "too_complex"
    OTHER = "other"


class CancelledBy(StrEnum):
    """Who cancelled or scheduled the cancel."""

    CUSTOMER = "customer"
    MERCHANT = "merchant"
    SYSTEM = "system"


class BillingAddress(BaseModel):
    """Dodo's BillingAddress."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    country: str = Field(pattern=r"^[A-Z]{2}$")
    city: str | None = Field(default=None, max_length=200)
    state: str | None = Field(default=None, max_length=200)
    street: str | None = Field(default=None, max_length=500)
    zipcode: str | None = Field(default=None, max_length=50)


class PriceTerms(BaseModel):
    """The product's recurring price, snapshotted at creation: later product edits
    do not change what an existing subscription costs or how often it renews."""

    model_config = ConfigDict(frozen=True)

    product_name: str = ""
    unit_price: int = Field(ge=0, description="minor units, one unit, before tax")
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    tax_inclusive: bool = False
    payment_frequency_count: int = Field(ge=1)
    payment_frequency_interval: TimeInterval
    subscription_period_count: int = Field(ge=1)
    subscription_period_interval: TimeInterval
    trial_period_days: int = Field(default=0, ge=0, le=10_000)


class SubscriptionAddon(BaseModel):
    """One add-on a subscription pays for each period, snapshotted like the plan: later
    edits of the add-on do not change what an existing subscription costs."""

    model_config = ConfigDict(frozen=True)

    addon_id: str = Field(min_length=1)
    name: str = ""
    unit_price: int = Field(ge=0, description="minor units, one unit per period, before tax")
    quantity: int = Field(ge=1)
    # Dodo's tax category of the add-on (its preview lines carry it).
    tax_category: str = "saas"

    @property
    def amount(self) -> int:
        """One period of this add-on (unit price x quantity)."""
        return self.unit_price * self.quantity


def addons_amount(addons: tuple[SubscriptionAddon, ...]) -> int:
    """One period of every add-on together."""
    return sum(addon.amount for addon in addons)


class PlanTarget(BaseModel):
    """What a plan change makes of the subscription: the new product's snapshot."""

    model_config = ConfigDict(frozen=True)

    product_id: str = Field(min_length=1)
    product_name: str = ""
    product_description: str | None = None
    unit_price: int = Field(ge=0, description="minor units, one unit, before tax")
    quantity: int = Field(ge=1)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    tax_inclusive: bool = False
    payment_frequency_count: int = Field(ge=1)
    # Stored as the plain string (a nested enum would not encode).
    payment_frequency_interval: str
    # The new plan's add-ons (Dodo: a change without add-ons removes the existing ones).
    addons: tuple[SubscriptionAddon, ...] = ()

    @property
    def recurring_pre_tax_amount(self) -> int:
        """One period of the new plan: unit price x quantity plus every add-on's period."""
        return self.unit_price * self.quantity + addons_amount(self.addons)


class ScheduledPlanChange(PlanTarget):
    """A change waiting for ``effective_at`` (= next_billing_date), applied by the renewal."""

    id: str = Field(min_length=1, description="spc_…")
    effective_at: AwareDatetime
    created_at: AwareDatetime
    # "apply_change" or "prevent_change": what a declined renewal at the new price does.
    on_payment_failure: str = "apply_change"


class PendingPlanChange(PlanTarget):
    """An immediate change whose charge waits for 3-D Secure (``pending_payment_id``)."""

    requested_at: AwareDatetime
    # A ProrationMode value: whether the cycle restarts at requested_at.
    proration_mode: str
    on_payment_failure: str = "apply_change"
    idempotency_key: str
    cancel_scheduled: bool = False


class Subscription(BaseModel):
    """A customer's subscription to one product.

    Billing periods are numbered: period ``n`` is
    ``[boundary(n), boundary(n + 1))`` with ``boundary(n) = billing_anchor +
    (n - anchor_period) payment intervals`` (see :mod:`.periods`). ``period`` is
    the paid (or trial, -1) period in force; ``next_billing_date`` is
    ``boundary(period + 1)``, when the next one is due.
    """

    model_config = ConfigDict(frozen=True)

    subscription_id: str = Field(min_length=1)
    business_id: str = Field(min_length=1)
    mode: Mode
    customer_id: str = Field(min_length=1)
    product_id: str = Field(min_length=1)
    status: SubscriptionStatus
    recurring_pre_tax_amount: int = Field(ge=0, description="minor units of currency")
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    next_billing_date: AwareDatetime | None = None
    created_at: AwareDatetime
    # Fields below have defaults so records written by the first slice still read.
    product_name: str = ""
    quantity: int = Field(default=1, ge=1)
    tax_inclusive: bool = False
    payment_frequency_count: int = Field(default=1, ge=1)
    payment_frequency_interval: TimeInterval = TimeInterval.MONTH
    subscription_period_count: int = Field(default=10, ge=1)
    subscription_period_interval: TimeInterval = TimeInterval.YEAR
    trial_period_days: int = 0
    previous_billing_date: AwareDatetime | None = None
    expires_at: AwareDatetime | None = None
    cancelled_at: AwareDatetime | None = None
    cancel_at_next_billing_date: bool = False
    cancellation_feedback: CancellationFeedback | None = None
    cancellation_comment: str | None = None
    cancelled_by: CancelledBy | None = None
    payment_method_id: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    billing: BillingAddress | None = None
    # The buyer's tax id (e.g. a VAT number) as the merchant gave it; printed on invoices.
    tax_id: str = Field(default="", max_length=64)
    amount_due: int = Field(default=0, ge=0)
    pending_payment_id: str | None = None
    challenge_url: str | None = None
    on_demand: bool = False
    updated_at: AwareDatetime | None = None
    # When it was paused, while it is paused (Dodo's ``paused_at``); None otherwise.
    # next_billing_date keeps the end of the paid period at pause time meanwhile.
    paused_at: AwareDatetime | None = None
    # Period bookkeeping (not in Dodo's shape).
    billing_anchor: AwareDatetime | None = None
    anchor_period: int = 0
    period: int = 0
    # Declined attempts to pay the dues of the current hold (a new key per attempt).
    dues_attempts: int = 0
    # Plan changes: the one scheduled for next_billing_date (Dodo's scheduled_change),
    # the one waiting for its 3-D Secure payment, and the key of the last one applied
    # (a retried or concurrent identical change applies once).
    scheduled_change: ScheduledPlanChange | None = None
    pending_plan_change: PendingPlanChange | None = None
    last_plan_change_key: str | None = None
    # Declined plan-change charges of this state (a new key per attempt, as dues_attempts).
    plan_change_declines: int = 0
    # The charge key of an immediate change being charged now, and until when (real time)
    # it holds: another change (another key) meanwhile is a 409, so two different
    # requests can never both charge.
    plan_change_claim: str | None = None
    plan_change_claim_until: AwareDatetime | None = None
    # The payment of the last change applied, for a retry with the caller's key.
    last_plan_change_payment_id: str | None = None
    # Dodo's ``addons``: what each period pays on top of the plan (included in
    # recurring_pre_tax_amount). Documents written before add-ons read as none.
    addons: tuple[SubscriptionAddon, ...] = ()

    @property
    def plan_amount(self) -> int:
        """One period of the plan alone (recurring_pre_tax_amount without the add-ons)."""
        return self.recurring_pre_tax_amount - addons_amount(self.addons)


class EventAddon(BaseModel):
    """Dodo's AddonCartResponseItem in an event."""

    addon_id: str = Field(description="adn_…")
    quantity: int = Field(description="units paid each period")


class SubscriptionEventData(BaseModel):
    """The data of every ``subscription.*`` event: the subscription as the API shows it."""

    subscription_id: str = Field(description="sub_…")
    business_id: str = Field(description="the owning business")
    mode: Mode = Field(description='"test" or "live"')
    customer_id: str = Field(description="the subscribing customer")
    product_id: str = Field(description="the product subscribed to")
    status: SubscriptionStatus = Field(description="the status after the change")
    recurring_pre_tax_amount: int = Field(description="minor units charged each period")
    currency: str = Field(description="ISO 4217")
    quantity: int = Field(description="units subscribed")
    previous_billing_date: AwareDatetime | None = Field(description="start of the current period")
    next_billing_date: AwareDatetime | None = Field(
        description="when the next renewal is due; null when it will not renew"
    )
    cancel_at_next_billing_date: bool = Field(description="a cancel is scheduled at period end")
    cancelled_at: AwareDatetime | None = Field(description="when it was cancelled")
    cancellation_feedback: CancellationFeedback | None = Field(
        description="Dodo's CancellationFeedback, given with a cancel"
    )
    cancellation_comment: str | None = Field(description="free text given with a cancel")
    payment_method_id: str | None = Field(description="the saved method renewals charge")
    amount_due: int = Field(description="minor units owed now (> 0 only when on_hold)")
    payment_id: str | None = Field(
        default=None, description="the payment behind this change (first, renewal, dues), if any"
    )
    # Additions for customer emails (notifications); defaults keep the shape additive.
    product_name: str = Field(default="", description="the product's name at subscription time")
    previous_status: SubscriptionStatus | None = Field(
        default=None, description="the status before this change (null: unknown or a new one)"
    )
    previous_cancel_at_next_billing_date: bool | None = Field(
        default=None, description="cancel_at_next_billing_date before this change (null: unknown)"
    )
    # Added for merchant webhooks, whose data must be what GET /subscriptions/{id} shows.
    # Defaults keep events written before them readable.
    created_at: AwareDatetime | None = Field(default=None, description="when it was created")
    tax_inclusive: bool = Field(default=False, description="the price includes tax")
    payment_frequency_count: int = Field(default=1, description="renewal every n intervals")
    payment_frequency_interval: TimeInterval = Field(
        default=TimeInterval.MONTH, description="the renewal interval (Dodo's TimeInterval)"
    )
    subscription_period_count: int = Field(default=1, description="term length in intervals")
    subscription_period_interval: TimeInterval = Field(
        default=TimeInterval.YEAR, description="the term's interval"
    )
    trial_period_days: int = Field(default=0, description="trial days at the start")
    expires_at: AwareDatetime | None = Field(default=None, description="end of the term")
    cancelled_by: CancelledBy | None = Field(default=None, description="who cancelled it")
    metadata: dict[str, str] = Field(default_factory=dict, description="merchant key-values")
    billing: BillingAddress | None = Field(default=None, description="the billing address")
    on_demand: bool = Field(default=False, description="charged on demand, not by renewals")
    paused_at: AwareDatetime | None = Field(
        default=None, description="when it was paused, while it is paused"
    )
    addons: list[EventAddon] = Field(
        default_factory=list, description="Dodo's addons: the add-ons paid each period"
    )

    @classmethod
    def of(
        cls,
        sub: Subscription,
        *,
        payment_id: str | None = None,
        previous: Subscription | None = None,
    ) -> SubscriptionEventData:
        """The event data for ``sub``; ``previous`` is the subscription before the change."""
        derived = {
            "payment_id",
            "previous_status",
            "previous_cancel_at_next_billing_date",
            "addons",
        }
        fields = {k: getattr(sub, k) for k in cls.model_fields if k not in derived}
        fields["addons"] = [
            {"addon_id": addon.addon_id, "quantity": addon.quantity} for addon in sub.addons
        ]
        return cls.model_validate(
            {
                **fields,
                "payment_id": payment_id,
                "previous_status": previous.status if previous else None,
                "previous_cancel_at_next_billing_date": (
                    previous.cancel_at_next_billing_date if previous else None
                ),
            }
        )
