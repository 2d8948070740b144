"""Request and response bodies of the merchant API, as pydantic models.

Field names and shapes follow the Dodo Payments API so its official SDK works
unchanged. Requests reject unknown fields: a typo must not be silently dropped.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal, cast, get_args

from billing.auth.v1 import auth_pb2
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    model_validator,
)

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
# E.164: a plus sign and up to 15 digits; auth stores it as given.
PhoneNumber = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^\+[1-9][0-9]{6,14}$")
]
# Dodo's ``Locale`` (dodopayments.types.Locale), in its order.
Locale = Literal[
    "ar", "ca", "zh", "nl", "en", "fr", "de", "he", "id", "it", "ja",
    "ka", "ko", "ms", "pl", "pt", "ro", "ru", "es", "sv", "th", "tr",
]  # fmt: skip
LOCALES: tuple[str, ...] = get_args(Locale)
# Stripe-like limits, the same auth enforces: at most 50 keys, keys 1-40
# characters, values strings of up to 500 (numbers and booleans are refused
# rather than silently turned into strings).
Metadata = Annotated[
    dict[
        Annotated[str, StringConstraints(min_length=1, max_length=40)],
        Annotated[str, StringConstraints(max_length=500, strict=True)],
    ],
    Field(max_length=50),
]


class CreateCustomerBody(BaseModel):
    """``POST /customers``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    email: EmailStr = Field(description="The customer's email; one customer per email per mode.")
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

    email: EmailStr | None = Field(
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
    return_url: Annotated[str, StringConstraints(max_length=2048)] | None = Field(
        default=None,
        description='http(s) URL shown as a "Return to {business}" button in the portal.',
    )
    next: Annotated[str, StringConstraints(max_length=512)] | None = Field(
        default=None,
        description="Deep link: a portal path starting with /b/{business_id}/.",
    )


class PortalSessionOut(BaseModel):
    """The one-time portal link (expires after 24 hours)."""

    link: str


class ListCustomersQuery(BaseModel):
    """Query string of ``GET /customers``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    page_size: int = Field(default=10, ge=1, le=100, description="Page size, at most 100.")
    page_number: int = Field(default=0, ge=0, le=100_000, description="Zero-based page number.")
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
