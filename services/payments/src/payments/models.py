"""Domain models of the payments service."""

from __future__ import annotations

from billing_kit.scoping import Mode
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class PaymentMethod(BaseModel):
    """A saved card: only what identifies it to its owner, never the card number."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    payment_method_id: str = Field(min_length=1)
    business_id: str = Field(min_length=1)
    mode: Mode
    customer_id: str = Field(min_length=1)
    brand: str = Field(min_length=1, max_length=32)
    last4: str = Field(pattern=r"^[0-9]{4}$")
    expiry_month: int = Field(ge=1, le=12)
    expiry_year: int = Field(ge=2000, le=2200)
    fingerprint: str = Field(min_length=1, max_length=128)
    created_at: AwareDatetime
