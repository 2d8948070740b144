"""A payment in Dodo's shape, and the data of its events."""

from __future__ import annotations

from enum import StrEnum

from billing_kit.scoping import Mode
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

PAYMENT_SUCCEEDED = "payment.succeeded"
PAYMENT_FAILED = "payment.failed"
PAYMENT_CANCELLED = "payment.cancelled"


class PaymentStatus(StrEnum):
    """Dodo's IntentStatus values this processor produces."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    PROCESSING = "processing"
    REQUIRES_CUSTOMER_ACTION = "requires_customer_action"
    CANCELLED = "cancelled"


class ChargeType(StrEnum):
    """Why a payment was taken."""

    NEW = "new"
    RENEWAL = "renewal"
    ON_DEMAND = "on_demand"
    # A subscription's change of plan or quantity (Dodo's plan_change).
    PLAN_CHANGE = "plan_change"


MAX_LINES = 100


class PaymentLine(BaseModel):
    """One line of what a payment pays for (Dodo's product_cart item, with name and price)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    product_id: str = Field(min_length=1, max_length=128, description="`pdt_…`")
    product_name: str = Field(default="", max_length=500, description="The name when bought.")
    quantity: int = Field(ge=1, le=10_000, description="How many.")
    unit_amount: int = Field(ge=0, description="Minor units of the payment's currency, one unit.")


class BillingAddress(BaseModel):
    """Dodo's BillingAddress: the buyer's address, as the merchant gave it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    country: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2.")
    city: str | None = Field(default=None, max_length=200)
    state: str | None = Field(default=None, max_length=200)
    street: str | None = Field(default=None, max_length=500)
    zipcode: str | None = Field(default=None, max_length=50)


class Payment(BaseModel):
    """A payment as every caller sees it (no processor token, never a card number)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    payment_id: str = Field(description="`pay_…`")
    business_id: str = Field(description="The merchant.")
    mode: Mode = Field(description="`test` or `live`.")
    customer_id: str = Field(description="The paying customer.")
    subscription_id: str = Field(default="", description="The subscription paid, or empty.")
    total_amount: int = Field(ge=0, description="Minor units of `currency`.")
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217, upper case.")
    status: PaymentStatus = Field(description="Dodo's IntentStatus.")
    charge_type: ChargeType = Field(description="new, renewal, on_demand or plan_change.")
    payment_method_id: str = Field(description="The saved method charged.")
    card_brand: str = Field(default="", description="e.g. `visa`.")
    card_last_four: str = Field(default="", description="Last four digits of the card.")
    error_code: str = Field(default="", description="Why it failed, e.g. `card_declined`.")
    error_message: str = Field(default="", description="Plain words for the customer.")
    challenge_url: str = Field(
        default="", description="The 3-D Secure page while requires_customer_action."
    )
    idempotency_key: str = Field(description="The caller's key: one payment per key.")
    description: str = Field(default="", description="Free text from the caller.")
    metadata: dict[str, str] = Field(default_factory=dict, description="Caller's key-values.")
    lines: list[PaymentLine] = Field(
        default_factory=list,
        max_length=MAX_LINES,
        description="What was paid for (product, name, quantity, unit amount); may be empty.",
    )
    billing: BillingAddress | None = Field(
        default=None, description="The buyer's billing address, when the merchant gave one."
    )
    tax_id: str = Field(default="", max_length=64, description="The buyer's tax id, or empty.")
    created_at: AwareDatetime = Field(description="When the charge was asked for.")
    updated_at: AwareDatetime = Field(description="Last status change.")


class PaymentEventData(Payment):
    """``data`` of ``payment.succeeded`` / ``payment.failed`` / ``payment.cancelled``:
    the payment's fields."""


class StoredPayment(Payment):
    """The stored record: the read model plus what only payments uses."""

    processor_token: str = Field(description="The token charged (not a card number).")
    return_url: str = Field(default="", description="Where the challenge page returns.")
    challenge_id: str | None = Field(default=None, description="Key of the challenge page.")
    challenge_expires_at: AwareDatetime | None = Field(default=None, description="Page expiry.")
    session_id: str = Field(default="", description="The hosted session that made it.")

    def public(self) -> Payment:
        """The read model."""
        return Payment.model_validate(self.model_dump(include=set(Payment.model_fields)))
