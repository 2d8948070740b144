"""A hosted payment session: one visit to the card page, single-use, expiring."""

from __future__ import annotations

from enum import StrEnum

from billing_kit.scoping import Mode
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from payments.charges.models import BillingAddress, ChargeType, PaymentLine


class SessionPurpose(StrEnum):
    """What the page does with the card."""

    SAVE_METHOD = "save_method"
    PAY = "pay"


class SessionStatus(StrEnum):
    """Where the visit is; ``charged`` means a PAY session's payment decides the outcome."""

    OPEN = "open"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    EXPIRED = "expired"
    CHARGED = "charged"


class Branding(BaseModel):
    """How the page looks for the business."""

    model_config = ConfigDict(frozen=True)

    business_name: str = Field(default="", max_length=200)
    accent_color: str = Field(default="", pattern=r"^(#[0-9A-Fa-f]{6})?$")
    logo_url: str = Field(default="", max_length=2000, pattern=r"^(https://\S+)?$")


class PaymentSession(BaseModel):
    """The stored session."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    session_id: str
    business_id: str
    mode: Mode
    customer_id: str
    purpose: SessionPurpose
    status: SessionStatus
    return_url: str
    locale: str = ""
    branding: Branding = Branding()
    amount: int = 0
    currency: str = ""
    idempotency_key: str = ""
    charge_type: ChargeType = ChargeType.NEW
    subscription_id: str = ""
    description: str = ""
    metadata: dict[str, str] = Field(default_factory=dict)
    # PAY: what the payment is for, copied onto it.
    lines: list[PaymentLine] = Field(default_factory=list)
    billing: BillingAddress | None = None
    tax_id: str = ""
    payment_method_id: str = ""
    payment_id: str = ""
    error_message: str = ""
    expires_at: AwareDatetime
    created_at: AwareDatetime


class PaymentMethodSavedData(BaseModel):
    """``data`` of ``payment_method.saved``: a save-only page for a subscription kept a card.

    Emitted only when the page names a subscription (the subscriptions service
    switches it to the card); never a card number, only the method's id.
    """

    payment_method_id: str = Field(description="The saved method.")
    business_id: str = Field(description="The merchant.")
    mode: Mode = Field(description="`test` or `live`.")
    customer_id: str = Field(description="Whose card it is.")
    subscription_id: str = Field(description="The subscription the page was for.")
    session_id: str = Field(description="The hosted page's session.")
