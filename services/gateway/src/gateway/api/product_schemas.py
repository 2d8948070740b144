"""Request and response bodies of the merchant ``/products`` API, in Dodo's shapes.

Every field the Dodo SDK (1.123) can send is declared, so nothing it sends is
an "unknown field". Fields we do not support are declared as ``null`` only: any
other value is a 422 whose ``errors`` entry has ``type: unsupported_field``
(services/subscriptions/README.md lists them). The field rules are the
subscriptions service's, written once in :mod:`billing_kit.catalog_fields`, so
the OpenAPI document says exactly what the service enforces.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal, cast

from billing.subscriptions.v1 import products_pb2
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
    json_integer,
)
from billing_kit.field_rules import Metadata, PageSize
from billing_kit.scoping import MAX_PAGE_NUMBER
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

from gateway.api.schemas import Locale, QueryBool, SdkPages, _query_int

# The most add-ons one product may offer (the subscriptions service's limit).
MAX_PRODUCT_ADDONS = 20

UNSUPPORTED = "unsupported_field"


def _unsupported(value: Any) -> Any:
    if value is not None:
        raise PydanticCustomError(
            UNSUPPORTED, "Not supported by this server; leave it out or send null"
        )
    return value


# A field the SDK may send that we do not implement: absent or null only.
Unsupported = Annotated[
    None,
    BeforeValidator(_unsupported),
    Field(default=None, description="Not supported here: only null is accepted."),
]


def _refuse_usage_based(value: Any) -> Any:
    if isinstance(value, dict) and value.get("type") == "usage_based_price":
        raise PydanticCustomError(UNSUPPORTED, "usage_based_price is not supported by this server")
    return value


def _distinct(ids: list[str]) -> list[str]:
    if len(set(ids)) != len(ids):
        raise ValueError("an add-on is listed twice")
    return ids


AddonIds = Annotated[
    list[Annotated[str, StringConstraints(min_length=1, max_length=64)]],
    Field(max_length=MAX_PRODUCT_ADDONS, json_schema_extra={"uniqueItems": True}),
    AfterValidator(_distinct),
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_EXTENSION: dict[str, Any] = {"x-extension": True}
PLAN_GROUP_DESCRIPTION = (
    "Extension (not in Dodo's API): products of the business sharing this non-empty group "
    'are the plans a customer may switch between in the portal; "" = none.'
)
MAX_QUANTITY_DESCRIPTION = (
    "Extension (not in Dodo's API): the most units (seats) a customer may choose in the "
    "portal or a plan change may set; 0 = no limit."
)


PercentDiscount = Annotated[int, Field(ge=0, le=100), BeforeValidator(json_integer)]


class _PriceFields(_Body):
    currency: Currency = Field(description="ISO 4217 code the price is in.")
    price: PriceAmount = Field(description="Minor units of the currency (100 = $1.00).")
    discount: PercentDiscount | None = Field(
        default=None,
        description="Deprecated: a percentage 0..100; use discount_bps.",
    )
    discount_bps: DiscountBps | None = Field(
        default=None, description="Discount in basis points (1250 = 12.5%)."
    )
    purchasing_power_parity: StrictBool = False
    tax_inclusive: StrictBool | None = None

    def discount_in_bps(self) -> int:
        """``discount_bps`` if sent, else the deprecated percentage in basis points."""
        if self.discount_bps is not None:
            return self.discount_bps
        return (self.discount or 0) * 100


class OneTimePriceIn(_PriceFields):
    """Dodo's ``OneTimePrice`` request."""

    type: Literal["one_time_price"]
    pay_what_you_want: StrictBool = Field(
        default=False, description="The customer chooses the amount; price is the minimum."
    )
    suggested_price: PriceAmount | None = None


class RecurringPriceIn(_PriceFields):
    """Dodo's ``RecurringPrice`` request."""

    type: Literal["recurring_price"]
    payment_frequency_count: IntervalCount
    payment_frequency_interval: TimeInterval
    subscription_period_count: IntervalCount
    subscription_period_interval: TimeInterval
    trial_period_days: TrialPeriodDays = 0
    trial_amount: Unsupported
    trial_apply_discounts: Unsupported
    trial_payment_method_optional: Unsupported
    zero_amount_payment_method_optional: Unsupported


PriceIn = Annotated[
    OneTimePriceIn | RecurringPriceIn,
    Field(discriminator="type"),
    BeforeValidator(_refuse_usage_based),
]


class LicenseKeyDurationIn(_Body):
    """How long an issued license key stays valid."""

    count: IntervalCount
    interval: TimeInterval


def _no_null_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


class CreateProductBody(_Body):
    """``POST /products``."""

    name: ProductName
    price: PriceIn
    tax_category: TaxCategory
    description: ProductDescription | None = None
    license_key_enabled: StrictBool | None = Field(
        default=None, description="Issue a license key with each purchase (default false)."
    )
    license_key_activations_limit: ActivationsLimit | None = Field(
        default=None, description="Activations allowed per key; null = unlimited."
    )
    license_key_duration: LicenseKeyDurationIn | None = Field(
        default=None, description="How long a key is valid; null = it never expires."
    )
    license_key_activation_message: ActivationMessage | None = None
    metadata: Metadata | None = None
    plan_group: PlanGroup | None = Field(
        default=None, description=PLAN_GROUP_DESCRIPTION, json_schema_extra=_EXTENSION
    )
    max_quantity: MaxQuantity | None = Field(
        default=None, description=MAX_QUANTITY_DESCRIPTION, json_schema_extra=_EXTENSION
    )
    addons: AddonIds | None = Field(
        default=None,
        description="Ids of the add-ons this subscription product offers (live add-ons of "
        "the business in the price's currency).",
    )
    brand_id: Unsupported
    credit_entitlements: Unsupported
    digital_product_delivery: Unsupported
    entitlements: Unsupported
    pricing_mode: Unsupported


class UpdateProductBody(_Body):
    """``PATCH /products/{id}``: only the fields sent change.

    ``null`` clears description, license_key_activations_limit (unlimited),
    license_key_duration (never expires), license_key_activation_message and
    metadata; name, price, tax_category and license_key_enabled cannot be null.
    """

    name: ProductName | SkipJsonSchema[None] = Field(
        default=None, json_schema_extra=_no_null_default
    )
    # Not a union with None (its errors would name pydantic's union branches, not the
    # fields): absent stays None, an explicit null is refused below.
    price: PriceIn = Field(default=None, json_schema_extra=_no_null_default)  # type: ignore[assignment]
    tax_category: TaxCategory | SkipJsonSchema[None] = Field(
        default=None, json_schema_extra=_no_null_default
    )
    license_key_enabled: StrictBool | SkipJsonSchema[None] = Field(
        default=None, json_schema_extra=_no_null_default
    )
    description: ProductDescription | None = None
    license_key_activations_limit: ActivationsLimit | None = None
    license_key_duration: LicenseKeyDurationIn | None = None
    license_key_activation_message: ActivationMessage | None = None
    metadata: Metadata | None = None
    plan_group: PlanGroup | None = Field(
        default=None,
        description=PLAN_GROUP_DESCRIPTION + " null leaves it as it is.",
        json_schema_extra=_EXTENSION,
    )
    max_quantity: MaxQuantity | None = Field(
        default=None,
        description=MAX_QUANTITY_DESCRIPTION + " null leaves it as it is.",
        json_schema_extra=_EXTENSION,
    )
    addons: AddonIds | None = Field(
        default=None,
        description="Replaces the add-ons the product offers ([] = none); null leaves them.",
    )
    brand_id: Unsupported
    credit_entitlements: Unsupported
    digital_product_delivery: Unsupported
    entitlements: Unsupported
    image_id: Unsupported
    pricing_mode: Unsupported

    @field_validator("price", mode="before")
    @classmethod
    def _price_cannot_be_cleared(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("cannot be null")
        return value

    @model_validator(mode="after")
    def _required_fields_cannot_be_cleared(self) -> UpdateProductBody:
        for field in ("name", "price", "tax_category", "license_key_enabled"):
            if field in self.model_fields_set and getattr(self, field) is None:
                raise ValueError(f"{field} cannot be null")
        return self


class ListProductsQuery(SdkPages, _Body):
    """Query string of ``GET /products``."""

    page_size: Annotated[PageSize, BeforeValidator(_query_int)] = Field(
        default=10, description="Page size, at most 100."
    )
    # One-based, as the SDK's auto-pagination walks it: the first call sends none, then
    # 2, 3, … (dodopayments.pagination). 0 is the first page too, so the documented default
    # (0) and a walk from 1 both start at the first page and no page is ever skipped.
    page_number: Annotated[int, Field(ge=0, le=MAX_PAGE_NUMBER), BeforeValidator(_query_int)] = (
        Field(
            default=0,
            description="Page number: 0 or 1 is the first page, 2 the second, … (as the SDK's "
            "auto-pagination asks for them).",
        )
    )

    archived: QueryBool = Field(
        default=False, description="true: only archived products; false: only live ones."
    )
    recurring: QueryBool | None = Field(
        default=None, description="true: subscription products only; false: one-time only."
    )
    locale: Locale | None = Field(
        default=None, description="Accepted; names are returned as stored (no translations)."
    )
    # Left out of the document (a query string cannot say "null only"); refused when sent.
    brand_id: SkipJsonSchema[Annotated[str | None, BeforeValidator(_unsupported)]] = None


class RetrieveProductQuery(_Body):
    """Query string of ``GET /products/{id}``."""

    locale: Locale | None = Field(
        default=None, description="Accepted; names are returned as stored (no translations)."
    )


# --- responses --------------------------------------------------------------------------


class OneTimePriceOut(BaseModel):
    """Dodo's ``OneTimePrice``."""

    type: Literal["one_time_price"] = "one_time_price"
    currency: Currency
    price: int
    discount: int = Field(description="Deprecated: discount_bps in whole percent.")
    discount_bps: int
    pay_what_you_want: bool
    purchasing_power_parity: bool
    suggested_price: int | None = None
    tax_inclusive: bool | None = None


class RecurringPriceOut(BaseModel):
    """Dodo's ``RecurringPrice``."""

    type: Literal["recurring_price"] = "recurring_price"
    currency: Currency
    price: int
    discount: int = Field(description="Deprecated: discount_bps in whole percent.")
    discount_bps: int
    purchasing_power_parity: bool
    tax_inclusive: bool | None = None
    payment_frequency_count: int
    payment_frequency_interval: TimeInterval
    subscription_period_count: int
    subscription_period_interval: TimeInterval
    trial_period_days: int


PriceOut = Annotated[OneTimePriceOut | RecurringPriceOut, Field(discriminator="type")]


class LicenseKeyDurationOut(BaseModel):
    """Dodo's ``LicenseKeyDuration``."""

    count: int
    interval: TimeInterval


class ProductOut(BaseModel):
    """Dodo's ``Product`` (``GET /products/{id}``, ``POST /products``)."""

    product_id: str
    business_id: str
    brand_id: str = Field(description="The business's one brand (its id).")
    name: str
    description: str | None = None
    price: PriceOut
    tax_category: TaxCategory
    is_recurring: bool
    license_key_enabled: bool
    license_key_activations_limit: int | None = None
    license_key_duration: LicenseKeyDurationOut | None = None
    license_key_activation_message: str | None = None
    metadata: dict[str, str]
    created_at: datetime
    updated_at: datetime
    plan_group: str | None = Field(
        default=None, description=PLAN_GROUP_DESCRIPTION, json_schema_extra=_EXTENSION
    )
    max_quantity: int | None = Field(
        default=None,
        description="Extension: the seat limit; null = no limit.",
        json_schema_extra=_EXTENSION,
    )
    addons: list[str] | None = None
    credit_entitlements: list[dict[str, Any]] = Field(default_factory=list)
    entitlements: list[dict[str, Any]] = Field(default_factory=list)
    digital_product_delivery: None = None
    image: str | None = None
    pricing_mode: None = None
    product_collection_id: str | None = None

    @classmethod
    def from_proto(cls, product: products_pb2.Product) -> ProductOut:
        """Render the subscriptions service's product message."""
        return cls(
            product_id=product.product_id,
            business_id=product.business_id,
            brand_id=product.business_id,
            name=product.name,
            description=product.description if product.HasField("description") else None,
            price=price_out(product.price),
            tax_category=cast(TaxCategory, product.tax_category),
            is_recurring=product.is_recurring,
            license_key_enabled=product.license_key_enabled,
            license_key_activations_limit=(
                product.license_key_activations_limit
                if product.HasField("license_key_activations_limit")
                else None
            ),
            license_key_duration=(
                LicenseKeyDurationOut(
                    count=product.license_key_duration.count,
                    interval=cast(TimeInterval, product.license_key_duration.interval),
                )
                if product.HasField("license_key_duration")
                else None
            ),
            license_key_activation_message=(
                product.license_key_activation_message
                if product.HasField("license_key_activation_message")
                else None
            ),
            metadata=dict(product.metadata),
            created_at=product.created_at.ToDatetime(tzinfo=UTC),
            updated_at=product.updated_at.ToDatetime(tzinfo=UTC),
            plan_group=product.plan_group or None,
            max_quantity=product.max_quantity or None,
            addons=list(product.addons),
        )


class ProductListItemOut(BaseModel):
    """Dodo's ``ProductListResponse``: the price flattened, with ``price_detail``."""

    product_id: str
    business_id: str
    name: str
    description: str | None = None
    is_recurring: bool
    tax_category: TaxCategory
    price: int
    currency: Currency
    tax_inclusive: bool | None = None
    price_detail: PriceOut
    metadata: dict[str, str]
    created_at: datetime
    updated_at: datetime
    entitlements: list[dict[str, Any]] = Field(default_factory=list)
    image: str | None = None
    pricing_mode: None = None

    @classmethod
    def from_proto(cls, product: products_pb2.Product) -> ProductListItemOut:
        """One list item from the service's product message."""
        full = ProductOut.from_proto(product)
        return cls(
            product_id=full.product_id,
            business_id=full.business_id,
            name=full.name,
            description=full.description,
            is_recurring=full.is_recurring,
            tax_category=full.tax_category,
            price=full.price.price,
            currency=full.price.currency,
            tax_inclusive=full.price.tax_inclusive,
            price_detail=full.price,
            metadata=full.metadata,
            created_at=full.created_at,
            updated_at=full.updated_at,
        )


class ProductListOut(BaseModel):
    """One page of products."""

    items: list[ProductListItemOut]


def price_out(price: products_pb2.Price) -> OneTimePriceOut | RecurringPriceOut:
    """Dodo's price shape from the service's price message."""
    tax_inclusive = price.tax_inclusive if price.HasField("tax_inclusive") else None
    currency = cast(Currency, price.currency)
    if price.type == "recurring_price":
        return RecurringPriceOut(
            currency=currency,
            price=price.price,
            discount=price.discount_bps // 100,
            discount_bps=price.discount_bps,
            purchasing_power_parity=price.purchasing_power_parity,
            tax_inclusive=tax_inclusive,
            payment_frequency_count=price.payment_frequency_count,
            payment_frequency_interval=cast(TimeInterval, price.payment_frequency_interval),
            subscription_period_count=price.subscription_period_count,
            subscription_period_interval=cast(TimeInterval, price.subscription_period_interval),
            trial_period_days=price.trial_period_days,
        )
    return OneTimePriceOut(
        currency=currency,
        price=price.price,
        discount=price.discount_bps // 100,
        discount_bps=price.discount_bps,
        pay_what_you_want=price.pay_what_you_want,
        purchasing_power_parity=price.purchasing_power_parity,
        suggested_price=price.suggested_price if price.HasField("suggested_price") else None,
        tax_inclusive=tax_inclusive,
    )


def price_to_proto(price: OneTimePriceIn | RecurringPriceIn) -> products_pb2.Price:
    """The service's price message from a validated request price."""
    message = products_pb2.Price(
        type=price.type,
        price=price.price,
        currency=price.currency,
        discount_bps=price.discount_in_bps(),
        purchasing_power_parity=price.purchasing_power_parity,
    )
    if price.tax_inclusive is not None:
        message.tax_inclusive = price.tax_inclusive
    if isinstance(price, OneTimePriceIn):
        message.pay_what_you_want = price.pay_what_you_want
        if price.suggested_price is not None:
            message.suggested_price = price.suggested_price
    else:
        message.payment_frequency_count = price.payment_frequency_count
        message.payment_frequency_interval = price.payment_frequency_interval
        message.subscription_period_count = price.subscription_period_count
        message.subscription_period_interval = price.subscription_period_interval
        message.trial_period_days = price.trial_period_days
    return message


def duration_to_proto(duration: LicenseKeyDurationIn) -> products_pb2.LicenseKeyDuration:
    """The service's license-key duration message."""
    return products_pb2.LicenseKeyDuration(count=duration.count, interval=duration.interval)
