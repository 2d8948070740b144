"""Domain models of the subscriptions service."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

Mode = Literal["test", "live"]

DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 100
# Offset pagination walks the index; a cap keeps a hostile page_number from forcing a huge skip.
MAX_PAGE_NUMBER = 10_000


class SubscriptionStatus(StrEnum):
    """The Dodo Payments subscription statuses, stored as these strings."""

    PENDING = "pending"
    ACTIVE = "active"
    ON_HOLD = "on_hold"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    FAILED = "failed"


class CustomerScope(BaseModel):
    """Whose records a read may see: one customer of one business in one mode."""

    model_config = ConfigDict(frozen=True)

    business_id: str = Field(min_length=1, max_length=128)
    mode: Mode
    customer_id: str = Field(min_length=1, max_length=128)


class PageRequest(BaseModel):
    """A zero-based page of a list, as in the Dodo Payments API."""

    model_config = ConfigDict(frozen=True)

    page_size: int = Field(default=DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)
    page_number: int = Field(default=0, ge=0, le=MAX_PAGE_NUMBER)

    @property
    def skip(self) -> int:
        """How many records come before this page."""
        return self.page_size * self.page_number


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
