"""Domain models of products: the record, its price union and its license-key settings.

Nothing here does I/O. The rules a product must satisfy are the field types of
:mod:`billing_kit.catalog_fields` (the gateway's API document is built from the
same ones), collected in :class:`ProductDraft`, so every write path (create,
update) checks the same things.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from billing_kit.catalog_fields import (
    ActivationMessage,
    ActivationsLimit,
    Currency,
    DiscountBps,
    IntervalCount,
    MaxQuantity,
    PlanGroup,
    PriceAmount,
    ProductDescription,
    ProductName,
    TaxCategory,
    TimeInterval,
    TrialPeriodDays,
)
from billing_kit.field_rules import Metadata
from billing_kit.scoping import Mode
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

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


# The most add-ons one product may offer.
MAX_PRODUCT_ADDONS = 20


def _distinct(ids: list[str]) -> list[str]:
    if len(set(ids)) != len(ids):
        raise ValueError("an add-on is listed twice")
    return ids


AddonIds = Annotated[
    list[Annotated[str, StringConstraints(min_length=1, max_length=64)]],
    Field(max_length=MAX_PRODUCT_ADDONS),
    AfterValidator(_distinct),
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OneTimePrice(_Frozen):
    """A price paid once (Dodo's ``one_time_price``)."""

    type: Literal["one_time_price"] = "one_time_price"
    # Minor units; with pay_what_you_want it is the minimum the customer pays.
    price: PriceAmount
    currency: Currency
    discount_bps: DiscountBps = 0
    purchasing_power_parity: bool = False
    tax_inclusive: bool | None = None
    pay_what_you_want: bool = False
    # Only shown when pay_what_you_want is set (as in Dodo).
    suggested_price: PriceAmount | None = None


class RecurringPrice(_Frozen):
    """A subscription price (Dodo's ``recurring_price``): charged every payment period."""

    type: Literal["recurring_price"] = "recurring_price"
    price: PriceAmount
    currency: Currency
    discount_bps: DiscountBps = 0
    purchasing_power_parity: bool = False
    tax_inclusive: bool | None = None
    # The billing cycle (e.g. every 1 Month) ...
    payment_frequency_count: IntervalCount
    payment_frequency_interval: TimeInterval
    # ... and how long the subscription lasts in total (e.g. 10 Year).
    subscription_period_count: IntervalCount
    subscription_period_interval: TimeInterval
    trial_period_days: TrialPeriodDays = 0


ProductPrice = Annotated[OneTimePrice | RecurringPrice, Field(discriminator="type")]


class LicenseKeyDuration(_Frozen):
    """How long an issued license key stays valid."""

    count: IntervalCount
    interval: TimeInterval


class ProductDraft(_Frozen):
    """Everything a merchant sets on a product: the input of create, the result of an update."""

    name: ProductName
    description: ProductDescription | None = None
    price: ProductPrice
    tax_category: TaxCategory
    license_key_enabled: bool = False
    # None = unlimited activations.
    license_key_activations_limit: ActivationsLimit | None = None
    # None = the key never expires.
    license_key_duration: LicenseKeyDuration | None = None
    license_key_activation_message: ActivationMessage | None = None
    metadata: Metadata = Field(default_factory=dict)
    # Our extensions: the plans a customer may switch between share a non-empty
    # plan_group; max_quantity caps the seats a customer may choose (0 = no limit).
    plan_group: PlanGroup = ""
    max_quantity: MaxQuantity = 0
    # Dodo's ``addons``: the add-ons a product offers (only subscriptions use them; their
    # existence, business and currency are the service's check: it needs the store).
    addons: AddonIds = Field(default_factory=list)

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
    # Archived products are no longer offered; existing subscriptions keep them.
    archived: bool = False
    license_key_enabled: bool = False
    license_key_activations_limit: int | None = None
    license_key_duration: LicenseKeyDuration | None = None
    license_key_activation_message: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    plan_group: str = ""
    max_quantity: int = 0
    addons: list[str] = Field(default_factory=list)
    created_at: UtcDatetime
    updated_at: UtcDatetime

    def draft(self) -> ProductDraft:
        """The merchant-set part of this product (the starting point of an update)."""
        return ProductDraft.model_validate(
            self.model_dump(include=set(ProductDraft.model_fields), mode="python")
        )
