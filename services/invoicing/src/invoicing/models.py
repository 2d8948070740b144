"""Domain models of the invoicing service."""

from __future__ import annotations

from billing_kit.scoping import Mode
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class Invoice(BaseModel):
    """An issued invoice for one payment; immutable once issued."""

    model_config = ConfigDict(frozen=True)

    invoice_id: str = Field(min_length=1)
    number: str = Field(min_length=1, max_length=64)
    business_id: str = Field(min_length=1)
    mode: Mode
    customer_id: str = Field(min_length=1)
    payment_id: str = Field(min_length=1)
    total: int = Field(ge=0, description="minor units of currency")
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    issued_at: AwareDatetime
