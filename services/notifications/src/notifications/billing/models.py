"""The event data the billing emails are written from, as this service reads it.

Each model reads only the fields it needs and ignores the rest, so producers
can grow their payloads without breaking this consumer.
"""

from __future__ import annotations

from billing_kit.scoping import Mode
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class SubscriptionNoticeData(BaseModel):
    """The ``data`` of the ``subscription.*`` events this service emails about."""

    model_config = ConfigDict(extra="ignore", frozen=True, str_strip_whitespace=True)

    subscription_id: str = Field(min_length=1, max_length=128, description="sub_…")
    business_id: str = Field(min_length=1, max_length=128, description="the owning business")
    mode: Mode = Field(description='"test" or "live"')
    customer_id: str = Field(min_length=1, max_length=128, description="the subscriber")
    status: str = Field(min_length=1, max_length=32, description="the status after the change")
    recurring_pre_tax_amount: int = Field(ge=0, description="minor units charged each period")
    currency: str = Field(min_length=3, max_length=3, description="ISO 4217")
    next_billing_date: AwareDatetime | None = Field(
        default=None, description="the next renewal (or the end of access once cancelled)"
    )
    cancel_at_next_billing_date: bool = Field(
        default=False, description="a cancel is scheduled at period end"
    )
    amount_due: int = Field(default=0, ge=0, description="minor units owed now (on_hold)")
    # Additions of subscriptions for these emails (defaults keep older events readable).
    product_name: str = Field(default="", max_length=256, description="the product's name")
    previous_status: str | None = Field(
        default=None, description="the status before this change (active after on_hold)"
    )
    previous_cancel_at_next_billing_date: bool | None = Field(
        default=None, description="the scheduled-cancel flag before this change"
    )


class InvoiceCreatedData(BaseModel):
    """The ``data`` of ``invoice.created`` (invoicing), as the receipt needs it."""

    model_config = ConfigDict(extra="ignore", frozen=True, str_strip_whitespace=True)

    invoice_id: str = Field(min_length=1, max_length=128, description="inv_…")
    number: str = Field(min_length=1, max_length=64, description="gapless per business")
    business_id: str = Field(min_length=1, max_length=128, description="the seller")
    mode: Mode = Field(description='"test" or "live"')
    customer_id: str = Field(min_length=1, max_length=128, description="the buyer")
    total: int = Field(ge=0, description="minor units paid (subtotal + tax)")
    currency: str = Field(min_length=3, max_length=3, description="ISO 4217")
    payment_id: str = Field(default="", max_length=128, description="the payment it documents")
    subscription_id: str = Field(default="", max_length=128, description="empty: one-time")
    description: str = Field(default="", max_length=256, description="first line's text")
    kind: str = Field(default="invoice", description='"invoice" or "credit_note"')
    paid_at: AwareDatetime | None = Field(default=None, description="when it was paid")
    issued_at: AwareDatetime | None = Field(default=None, description="issue date")


class LicenseKeyCreatedData(BaseModel):
    """The ``data`` of ``license_key.created`` (subscriptions), as the key email needs it.

    The key arrives sealed (``key_sealed``, subscriptions' license-key seal); this
    service stores it sealed and opens it only to render the email at send time.
    """

    model_config = ConfigDict(extra="ignore", frozen=True, str_strip_whitespace=True)

    license_key_id: str = Field(min_length=1, max_length=128, description="lic_…")
    business_id: str = Field(min_length=1, max_length=128, description="the owning business")
    mode: Mode = Field(description='"test" or "live"')
    customer_id: str = Field(min_length=1, max_length=128, description="the key's owner")
    product_id: str = Field(min_length=1, max_length=128, description="the product it unlocks")
    key_sealed: str = Field(min_length=1, max_length=4096, repr=False, description="sealed key")
    product_name: str = Field(default="", max_length=256, description="the product's name")
    activation_message: str = Field(default="", max_length=4000, description="or empty")
    activations_limit: int | None = Field(default=None, ge=0, description="null = unlimited")
    expires_at: AwareDatetime | None = Field(default=None, description="null = never")
    subscription_id: str = Field(default="", max_length=128, description="or empty")
