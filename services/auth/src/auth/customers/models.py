"""Models of customers: the record, its input and query models, and the data of
the ``customer.created`` / ``customer.updated`` events. Nothing here does I/O.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from billing_kit.field_rules import PersonName
from pydantic import BaseModel, ConfigDict, Field, field_validator

from auth.customers.billing_details import BillingDetails
from auth.rules import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    Email,
    InputModel,
    Metadata,
    Mode,
    PhoneNumber,
    PreferredLocale,
    UtcDatetime,
    normalize_email,
)

CUSTOMER_PREFIX = "cus_"


class NewCustomer(InputModel):
    """A request to create a customer (Dodo's ``POST /customers``)."""

    business_id: str = Field(min_length=1)
    mode: Mode
    email: Email
    name: PersonName
    phone_number: PhoneNumber = None
    metadata: Metadata = Field(default_factory=dict)
    preferred_locale: PreferredLocale = None

    @field_validator("phone_number", mode="before")
    @classmethod
    def _empty_phone_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value


class Customer(BaseModel):
    """A customer of one business in one mode."""

    model_config = ConfigDict(frozen=True)

    customer_id: str
    business_id: str
    mode: Mode
    email: str
    name: str
    phone_number: str | None = None
    created_at: UtcDatetime
    metadata: dict[str, str] = Field(default_factory=dict)
    # One of CUSTOMER_LOCALES, or None: the customer's emails then follow the request
    # or the business's locale.
    preferred_locale: str | None = None
    # What invoices print as the buyer; None until the customer sets them in the portal.
    billing_details: BillingDetails | None = None

    @property
    def email_normalized(self) -> str:
        """The lookup form of the email."""
        return normalize_email(self.email)


class CustomerQuery(InputModel):
    """A page of one business's customers, optionally filtered by email."""

    business_id: str = Field(min_length=1)
    mode: Mode
    page_size: int = Field(default=DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)
    page_number: int = Field(default=0, ge=0)
    email: str | None = None

    @field_validator("email", mode="before")
    @classmethod
    def _normalize_filter(cls, value: Any) -> Any:
        if isinstance(value, str):
            return normalize_email(value) or None
        return value


# --- events --------------------------------------------------------------------------------

CUSTOMER_CREATED = "customer.created"


class CustomerSnapshot(BaseModel):
    """The customer as an event describes it; both customer events carry all of it."""

    customer_id: str = Field(description="The customer's id (cus_...).")
    business_id: str = Field(description="The business the customer belongs to.")
    mode: Mode = Field(description="test or live.")
    email: str = Field(description="The customer's email (verified, or as the merchant gave it).")
    name: str = Field(description="The customer's full name.")
    phone_number: str | None = Field(default=None, description="E.164, or null.")
    created_at: datetime = Field(description="When the customer was created (UTC).")
    metadata: dict[str, str] = Field(
        default_factory=dict, description="The merchant's key/value pairs ({} when none)."
    )
    preferred_locale: str | None = Field(
        default=None,
        description="The language of the customer's emails (a Dodo Locale code), or null.",
    )
    locale: str | None = Field(
        default=None,
        description="Same as preferred_locale: the name the notifications directory reads.",
    )
    billing_details: BillingDetails | None = Field(
        default=None,
        description=(
            "Billing address and tax id the customer set in the portal (country, city, state, "
            "street, zipcode, tax_id, business_name), or null."
        ),
    )


class CustomerCreatedData(CustomerSnapshot):
    """``data`` of a ``customer.created`` event."""

    @classmethod
    def from_customer(cls, customer: Customer) -> CustomerCreatedData:
        """The event payload describing ``customer``."""
        return cls(**customer.model_dump(), locale=customer.preferred_locale)


CUSTOMER_UPDATED = "customer.updated"


class CustomerUpdatedData(CustomerSnapshot):
    """``data`` of a ``customer.updated`` event: the customer after the change."""

    updated_at: datetime = Field(description="When this change happened (UTC).")
    changed_fields: list[str] = Field(
        description=(
            "Which of email, name, phone_number, metadata, preferred_locale, "
            "billing_details changed."
        )
    )

    @classmethod
    def from_customer(
        cls, customer: Customer, *, updated_at: datetime, changed_fields: list[str]
    ) -> CustomerUpdatedData:
        """The event payload describing ``customer`` after a change."""
        return cls(
            **customer.model_dump(),
            locale=customer.preferred_locale,
            updated_at=updated_at,
            changed_fields=changed_fields,
        )
