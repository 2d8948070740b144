"""A saved card: what identifies it to its owner and the processor's token, never its number."""

from __future__ import annotations

from billing_kit.scoping import Mode
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class PaymentMethod(BaseModel):
    """The read model every caller sees (no processor token)."""

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
    is_default: bool = False
    card_holder_name: str = Field(default="", max_length=100)
    last_used_at: AwareDatetime | None = None


class StoredPaymentMethod(PaymentMethod):
    """The stored record: the read model plus the processor token only payments uses."""

    processor_token: str = Field(min_length=1, max_length=128)

    def public(self) -> PaymentMethod:
        """The read model without the token."""
        return PaymentMethod.model_validate(self.model_dump(exclude={"processor_token"}))
