"""Request and response bodies of the merchant ``/addons`` API, in Dodo's shapes.

The field rules are the subscriptions service's (:mod:`billing_kit.catalog_fields`,
the same ones products use), so the OpenAPI document says what the service enforces.
``max_quantity`` is our extension: the most units a customer may choose (0 = no limit).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, cast

from billing.subscriptions.v1 import addons_pb2
from billing_kit.catalog_fields import (
    Currency,
    MaxQuantity,
    PriceAmount,
    ProductDescription,
    ProductName,
    TaxCategory,
)
from billing_kit.field_rules import PageSize
from billing_kit.scoping import MAX_PAGE_NUMBER
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from gateway.api.product_schemas import Unsupported
from gateway.api.schemas import Locale, QueryBool, SdkPages, _query_int

_EXTENSION: dict[str, Any] = {"x-extension": True}
MAX_QUANTITY_DESCRIPTION = (
    "Extension (not in Dodo's API): the most units of this add-on a customer may take; "
    "0 = no limit."
)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _no_null_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def _extension_no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)
    schema.update(_EXTENSION)


class CreateAddonBody(_Body):
    """``POST /addons``."""

    name: ProductName
    price: PriceAmount = Field(description="Per unit, minor units of the currency.")
    currency: Currency
    tax_category: TaxCategory
    description: ProductDescription | None = None
    max_quantity: MaxQuantity | None = Field(
        default=None, description=MAX_QUANTITY_DESCRIPTION, json_schema_extra=_EXTENSION
    )


class UpdateAddonBody(_Body):
    """``PATCH /addons/{id}``: only the fields sent change; null clears ``description``.

    The other fields are not unions with None (their errors would name pydantic's union
    branches, not the fields): absent stays None, an explicit null is refused.
    """

    name: ProductName = Field(default=None, json_schema_extra=_no_null_default)  # type: ignore[assignment]
    price: PriceAmount = Field(default=None, json_schema_extra=_no_null_default)  # type: ignore[assignment]
    currency: Currency = Field(default=None, json_schema_extra=_no_null_default)  # type: ignore[arg-type]
    tax_category: TaxCategory = Field(default=None, json_schema_extra=_no_null_default)  # type: ignore[arg-type]
    description: ProductDescription | None = None
    max_quantity: MaxQuantity = Field(  # type: ignore[assignment]
        default=None,
        description=MAX_QUANTITY_DESCRIPTION,
        json_schema_extra=_extension_no_default,
    )
    image_id: Unsupported

    @field_validator("name", "price", "currency", "tax_category", "max_quantity", mode="before")
    @classmethod
    def _cannot_be_cleared(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("cannot be null")
        return value


class ListAddonsQuery(SdkPages, _Body):
    """Query string of ``GET /addons``."""

    page_size: Annotated[PageSize, BeforeValidator(_query_int)] = Field(
        default=10, description="Page size, at most 100."
    )
    page_number: Annotated[int, Field(ge=0, le=MAX_PAGE_NUMBER), BeforeValidator(_query_int)] = (
        Field(default=0, description="Page number: 0 or 1 is the first page, 2 the second, …")
    )
    archived: QueryBool = Field(
        default=False, description="true: only archived add-ons; false: only live ones."
    )
    locale: Locale | None = Field(
        default=None, description="Accepted; names are returned as stored (no translations)."
    )


class RetrieveAddonQuery(_Body):
    """Query string of ``GET /addons/{id}``."""

    locale: Locale | None = Field(
        default=None, description="Accepted; names are returned as stored (no translations)."
    )


class AddonOut(BaseModel):
    """Dodo's ``AddonResponse``."""

    id: str
    business_id: str
    name: str
    description: str | None = None
    price: int
    currency: Currency
    tax_category: TaxCategory
    image: str | None = None
    created_at: datetime
    updated_at: datetime
    max_quantity: int | None = Field(
        default=None,
        description="Extension: the most units a customer may take; null = no limit.",
        json_schema_extra=_EXTENSION,
    )

    @classmethod
    def from_proto(cls, addon: addons_pb2.Addon) -> AddonOut:
        """Render the subscriptions service's add-on message."""
        return cls(
            id=addon.addon_id,
            business_id=addon.business_id,
            name=addon.name,
            description=addon.description if addon.HasField("description") else None,
            price=addon.price,
            currency=cast(Currency, addon.currency),
            tax_category=cast(TaxCategory, addon.tax_category),
            created_at=addon.created_at.ToDatetime(tzinfo=UTC),
            updated_at=addon.updated_at.ToDatetime(tzinfo=UTC),
            max_quantity=addon.max_quantity or None,
        )


class AddonListOut(BaseModel):
    """One page of add-ons."""

    items: list[AddonOut]
