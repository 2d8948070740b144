"""Request and response bodies of the merchant API, as pydantic models.

Field names and shapes follow the Dodo Payments API so its official SDK works
unchanged. Requests reject unknown fields: a typo must not be silently dropped.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

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


class CreateCustomerBody(BaseModel):
    """``POST /customers``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    email: EmailStr = Field(description="The customer's email; one customer per email per mode.")
    name: Name = Field(description="The customer's full name.")
    phone_number: PhoneNumber | None = Field(
        default=None, description="E.164 phone number, e.g. +393331234567."
    )


class UpdateCustomerBody(BaseModel):
    """``PATCH /customers/{customer_id}``: only the fields sent change.

    ``phone_number: null`` removes the number. The email is changed by the
    customer from the portal (with verification), not through the API.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name | None = Field(default=None, description="The customer's full name.")
    phone_number: PhoneNumber | None = Field(
        default=None, description="E.164 phone number; null removes it."
    )

    @model_validator(mode="after")
    def _name_cannot_be_cleared(self) -> UpdateCustomerBody:
        if "name" in self.model_fields_set and self.name is None:
            raise ValueError("name cannot be null")
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
    metadata: dict[str, str] = Field(default_factory=dict)

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
