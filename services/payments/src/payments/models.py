"""Domain models of the payments service."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

Mode = Literal["test", "live"]

DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 100
# Offset pagination walks the index; a cap keeps a hostile page_number from forcing a huge skip.
MAX_PAGE_NUMBER = 10_000


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
