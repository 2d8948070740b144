"""Domain models of products: the record, its price union and its license-key settings.

Nothing here does I/O. The rules a product must satisfy live on these models
(field bounds) and in :class:`ProductDraft` (rules across fields), so every
write path (create, update) checks the same things.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from billing_kit.catalog_fields import (
    ACTIVATION_MESSAGE_MAX_LENGTH,
    MAX_ACTIVATIONS_LIMIT,
    MAX_DISCOUNT_BPS,
    MAX_INTERVAL_COUNT,
    MAX_PRICE,
    MAX_TRIAL_PERIOD_DAYS,
    PRODUCT_DESCRIPTION_MAX_LENGTH,
    PRODUCT_NAME_MAX_LENGTH,
    Currency,
    TaxCategory,
    TimeInterval,
)
from billing_kit.field_rules import Metadata
from billing_kit.scoping import Mode
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

PRODUCT_PREFIX = "pdt_"


def new_product_id() -> str:
    """A fresh ``pdt_…`` id (128 random bits, letters and digits only)."""
    return PRODUCT_PREFIX + secrets.token_urlsafe(16).replace("-", "x").replace("_", "y")


def _as_utc(value: Any) -> Any:
    # The driver hands back naive datetimes (BSON dates are UTC).
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


UtcDatetime = Annotated[datetime, BeforeValidator(_as_utc)]
Price = Annotated[int, Field(ge=0, le=MAX_PRICE, description="minor units of currency")]
IntervalCount = Annotated[int, Field(ge=1, le=MAX_INTERVAL_COUNT)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OneTimePrice(_Frozen):
    """A price paid once (Dodo's ``one_time_price``)."""

    type: Literal["one_time_price"] = "one_time_price"
    # At least 1 unless the customer chooses the amount (then it is the minimum, may be 0).
    price: Price
    currency: Currency
    discount_bps: int = Field(default=0, ge=0, le=MAX_DISCOUNT_BPS)
    purchasing_power_parity: bool = False
    tax_inclusive: bool | None = None
    pay_what_you_want: bool = False
    suggested_price: Price | None = None

    @model_validator(mode="after")
    def _check_amounts(self) -> OneTimePrice:
        if not self.pay_what_you_want:
            if self.price < 1:
                raise ValueError("price must be at least 1 (minor units)")
            if self.suggested_price is not None:
                raise ValueError("suggested_price is only allowed with pay_what_you_want")
        elif self.suggested_price is not None and self.suggested_price < self.price:
            raise ValueError("suggested_price must not be below price (the minimum)")
        return self


class RecurringPrice(_Frozen):
    """A subscription price (Dodo's ``recurring_price``): charged every payment period."""

    type: Literal["recurring_price"] = "recurring_price"
    price: Annotated[int, Field(ge=1, le=MAX_PRICE, description="minor units of currency")]
    currency: Currency
    discount_bps: int = Field(default=0, ge=0, le=MAX_DISCOUNT_BPS)
    purchasing_power_parity: bool = False
    tax_inclusive: bool | None = None
    payment_frequency_count: IntervalCount
    payment_frequency_interval: TimeInterval
    subscription_period_count: IntervalCount
    subscription_period_interval: TimeInterval
    trial_period_days: int = Field(default=0, ge=0, le=MAX_TRIAL_PERIOD_DAYS)


ProductPrice = Annotated[OneTimePrice | RecurringPrice, Field(discriminator="type")]


class LicenseKeyDuration(_Frozen):
    """How long an issued license key stays valid."""

    count: IntervalCount
    interval: TimeInterval


class ProductDraft(_Frozen):
    """Everything a merchant sets on a product: the input of create, the result of an update."""

    name: str = Field(min_length=1, max_length=PRODUCT_NAME_MAX_LENGTH)
    description: str | None = Field(default=None, max_length=PRODUCT_DESCRIPTION_MAX_LENGTH)
    price: ProductPrice
    tax_category: TaxCategory
    license_key_enabled: bool = False
    # None = unlimited activations.
    license_key_activations_limit: int | None = Field(default=None, ge=1, le=MAX_ACTIVATIONS_LIMIT)
    # None = the key never expires.
    license_key_duration: LicenseKeyDuration | None = None
    license_key_activation_message: str | None = Field(
        default=None, max_length=ACTIVATION_MESSAGE_MAX_LENGTH
    )
    metadata: Metadata = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check_name(self) -> ProductDraft:
        if not self.name.strip():
            raise ValueError("name must not be blank")
        return self

    @property
    def is_recurring(self) -> bool:
        """True for subscription products."""
        return isinstance(self.price, RecurringPrice)


class Product(BaseModel):
    """A product of one business in one mode."""

    model_config = ConfigDict(frozen=True)

    product_id: str = Field(min_length=1)
    business_id: str = Field(min_length=1)
    mode: Mode
    name: str
    description: str | None = None
    price: ProductPrice
    tax_category: TaxCategory
    is_recurring: bool
    archived: bool = False
    license_key_enabled: bool = False
    license_key_activations_limit: int | None = None
    license_key_duration: LicenseKeyDuration | None = None
    license_key_activation_message: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    created_at: UtcDatetime
    updated_at: UtcDatetime

    def draft(self) -> ProductDraft:
        """The merchant-set part of this product (the starting point of an update)."""
        return ProductDraft.model_validate(
            self.model_dump(include=set(ProductDraft.model_fields), mode="python")
        )
