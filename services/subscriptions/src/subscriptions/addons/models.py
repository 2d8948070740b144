"""Domain models of add-ons: what a merchant sets (:class:`AddonDraft`) and the record.

Nothing here does I/O. The field rules are the catalogue's
(:mod:`billing_kit.catalog_fields`), the same ones products use, so create and
update check the same things.
"""

from __future__ import annotations

import secrets

from billing_kit.catalog_fields import (
    Currency,
    MaxQuantity,
    PriceAmount,
    ProductDescription,
    ProductName,
    TaxCategory,
)
from billing_kit.scoping import Mode
from pydantic import BaseModel, ConfigDict, Field

from subscriptions.products.models import UtcDatetime

ADDON_PREFIX = "adn_"


def new_addon_id() -> str:
    """A fresh ``adn_…`` id (128 random bits, letters and digits only)."""
    return ADDON_PREFIX + secrets.token_urlsafe(16).replace("-", "x").replace("_", "y")


class AddonDraft(BaseModel):
    """Everything a merchant sets on an add-on: the input of create, the result of an update."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: ProductName
    description: ProductDescription | None = None
    # Per unit, minor units of ``currency``.
    price: PriceAmount
    currency: Currency
    tax_category: TaxCategory
    # Our extension: the most units a customer may choose (0 = no limit).
    max_quantity: MaxQuantity = 0


class Addon(BaseModel):
    """An add-on of one business in one mode."""

    model_config = ConfigDict(frozen=True)

    addon_id: str = Field(min_length=1)
    business_id: str = Field(min_length=1)
    mode: Mode
    name: str
    description: str | None = None
    price: int
    currency: str
    tax_category: TaxCategory
    max_quantity: int = 0
    # Archived add-ons are no longer offered; subscriptions that have one keep it.
    archived: bool = False
    created_at: UtcDatetime
    updated_at: UtcDatetime

    def draft(self) -> AddonDraft:
        """The merchant-set part of this add-on (the starting point of an update)."""
        return AddonDraft.model_validate(
            self.model_dump(include=set(AddonDraft.model_fields), mode="python")
        )

    def allows(self, quantity: int) -> bool:
        """Whether a customer may take ``quantity`` units (at least one, within the limit)."""
        return quantity >= 1 and (self.max_quantity == 0 or quantity <= self.max_quantity)
