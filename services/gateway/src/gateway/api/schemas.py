"""Request and response bodies of the merchant API, as pydantic models.

Field names and shapes follow the Dodo Payments API so its official SDK works
unchanged. Requests reject unknown fields: a typo must not be silently dropped.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, cast

from billing.auth.v1 import auth_pb2
from billing_kit.field_rules import (
    CUSTOMER_LOCALES,
    CustomerLocale,
    EmailAddress,
    HttpUrl,
    Metadata,
    NextPath,
    PageNumber,
    PageSize,
    PersonName,
    PhoneNumber,
)
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

# The field rules are auth's, written once in billing_kit.field_rules: these models
# only name them, so the OpenAPI document pydantic generates from them states exactly
# what auth enforces. Locale is Dodo's ``Locale`` (dodopayments.types.Locale).
Name = PersonName
Locale = CustomerLocale
LOCALES: tuple[str, ...] = CUSTOMER_LOCALES


class CreateCustomerBody(BaseModel):
    """``POST /customers``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    email: EmailAddress = Field(
        description="The customer's email; one customer per email per mode."
    )
    name: Name = Field(description="The customer's full name.")
    phone_number: PhoneNumber | None = Field(
        default=None, description="E.164 phone number, e.g. +393331234567."
    )
    metadata: Metadata | None = Field(
        default=None,
        description="Additional metadata for the customer: at most 50 keys of 1-40 "
        "characters, string values of up to 500.",
    )
    preferred_locale: Locale | None = Field(
        default=None,
        description="The language of the customer emails. With no value, the emails are in "
        "the language of the portal request or the business (English by default).",
    )


class UpdateCustomerBody(BaseModel):
    """``PATCH /customers/{customer_id}``: only the fields sent change.

    ``phone_number: null`` removes the number, ``preferred_locale: null`` the
    language and ``metadata: null`` every key; a ``metadata`` object replaces
    the whole set. A new ``email`` applies at once (the merchant is
    authoritative) and signs the customer out of the portal everywhere.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    email: EmailAddress | None = Field(
        default=None,
        description="The customer's new email, effective at once; ends their portal sessions. "
        "Another customer with this email is a 409.",
    )
    name: Name | None = Field(default=None, description="The customer's full name.")
    phone_number: PhoneNumber | None = Field(
        default=None, description="E.164 phone number; null removes it."
    )
    metadata: Metadata | None = Field(
        default=None,
        description="Replaces all of the customer's metadata; null or {} removes it.",
    )
    preferred_locale: Locale | None = Field(
        default=None,
        description="The language of the customer emails: a value replaces it, null removes "
        "it, absent leaves it.",
    )

    @model_validator(mode="after")
    def _name_and_email_cannot_be_cleared(self) -> UpdateCustomerBody:
        for field in ("name", "email"):
            if field in self.model_fields_set and getattr(self, field) is None:
                raise ValueError(f"{field} cannot be null")
        return self


class PortalSessionQuery(BaseModel):
    """Query string of ``POST /customers/{customer_id}/customer-portal/session``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    send_email: bool = Field(default=False, description="If true, the link is emailed too.")
    return_url: HttpUrl | None = Field(
        default=None,
        description='http(s) URL shown as a "Return to {business}" button in the portal; '
        "no user name or password in it.",
    )
    next: NextPath | None = Field(
        default=None,
        description="Deep link: a portal path starting with /b/{business_id}/ where "
        "{business_id} is the API key's own business (another business's path is a 422).",
    )


class PortalSessionOut(BaseModel):
    """The one-time portal link (expires after 24 hours)."""

    link: str


class ListCustomersQuery(BaseModel):
    """Query string of ``GET /customers``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    page_size: PageSize = Field(default=10, description="Page size, at most 100.")
    page_number: PageNumber = Field(default=0, description="Zero-based page number.")
    email: Annotated[str, StringConstraints(strip_whitespace=True, max_length=320)] | None = Field(
        default=None, description="Only the customer with exactly this email."
    )


class CustomerOut(BaseModel):
    """A customer as the Dodo Payments API returns it."""

    business_id: str
    customer_id: str
    email: str
    name: str
    phone_number: str | None = None
    created_at: datetime
    metadata: dict[str, str] = Field(
        default_factory=dict, description="Additional metadata for the customer ({} when none)."
    )
    preferred_locale: Locale | None = Field(
        default=None, description="The language of the customer emails; null when none."
    )

    @classmethod
    def from_proto(cls, customer: auth_pb2.Customer) -> CustomerOut:
        """Render auth's customer message."""
        return cls(
            business_id=customer.business_id,
            customer_id=customer.customer_id,
            email=customer.email,
            name=customer.name,
            phone_number=customer.phone_number or None,
            created_at=_timestamp(customer.created_at),
            metadata=dict(customer.metadata),
            # Auth only stores Dodo's codes; pydantic checks it again at runtime.
            preferred_locale=cast(Locale | None, customer.preferred_locale or None),
        )


class CustomerListOut(BaseModel):
    """One page of customers."""

    items: list[CustomerOut]


class ProblemOut(BaseModel):
    """An error (RFC 9457 problem details, plus Dodo's ``code``/``message``)."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    message: str
    errors: list[dict[str, str]] | None = None


def _timestamp(ts: Timestamp) -> datetime:
    return ts.ToDatetime(tzinfo=UTC)


def dump(model: BaseModel) -> dict[str, Any]:
    """JSON-ready dict (datetimes as ISO 8601 with ``Z``)."""
    return model.model_dump(mode="json")
