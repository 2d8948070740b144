"""A checkout session: a priced cart, the hosted page that takes its payment, its outcome."""

from __future__ import annotations

from billing_kit.scoping import Mode
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from subscriptions.subscriptions.models import BillingAddress, PriceTerms

CHECKOUT_PREFIX = "cks_"
MAX_CART_ITEMS = 20
MAX_QUANTITY = 1000


class CartLine(BaseModel):
    """One product of the cart, priced when the session was made."""

    model_config = ConfigDict(frozen=True)

    product_id: str
    # The product's name when priced (the invoice line's description); "" in older sessions.
    product_name: str = ""
    quantity: int = Field(ge=1, le=MAX_QUANTITY)
    # Minor units for the whole line (unit price after discount x quantity).
    amount: int = Field(ge=0)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    # Set for a subscription product: the terms its subscription snapshots.
    terms: PriceTerms | None = None


class Checkout(BaseModel):
    """The stored session (``checkout_sessions``)."""

    model_config = ConfigDict(frozen=True)

    session_id: str
    business_id: str
    mode: Mode
    customer_id: str
    customer_email: str = ""
    customer_name: str = ""
    lines: list[CartLine]
    total_amount: int
    currency: str
    billing: BillingAddress | None = None
    tax_id: str = ""
    return_url: str = ""
    metadata: dict[str, str] = Field(default_factory=dict)
    checkout_url: str = ""
    payment_id: str = ""
    # "succeeded" / "failed" once the payment event arrived.
    payment_status: str = ""
    subscription_ids: list[str] = Field(default_factory=list)
    created_at: AwareDatetime


def payment_key(session_id: str) -> str:
    """The idempotency key of the cart's one payment: a session pays once."""
    return f"checkout:{session_id}"


def subscription_key(session_id: str, line: int) -> str:
    """The create key of the subscription of cart line ``line``: made once per session."""
    return f"checkout:{session_id}:line:{line}"
