"""Domain models of the subscriptions service."""

from __future__ import annotations

from enum import StrEnum

from billing_kit.scoping import Mode
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class SubscriptionStatus(StrEnum):
    """The Dodo Payments subscription statuses, stored as these strings."""

    PENDING = "pending"
    ACTIVE = "active"
    ON_HOLD = "on_hold"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    FAILED = "failed"


class Subscription(BaseModel):
    """A customer's subscription to one product."""

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
