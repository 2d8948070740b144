"""Request and response bodies of the merchant API, as pydantic models.

Field names and shapes follow the Dodo Payments API so its official SDK works
unchanged. Requests reject unknown fields: a typo must not be silently dropped.
"""

from __future__ import annotations

import re
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
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

# The field rules are auth's, written once in billing_kit.field_rules: these models
# only name them, so the OpenAPI document pydantic generates from them states exactly
# what auth enforces. Locale is Dodo's ``Locale`` (dodopayments.types.Locale).
Name = PersonName
Locale = CustomerLocale
LOCALES: tuple[str, ...] = CUSTOMER_LOCALES


def _query_bool(value: Any) -> Any:
    # A query string spells a boolean one way, as the SDK sends it: "yes", "1" or
    # "on" would be accepted by pydantic's lax parsing but are not what the
    # document says, so they are refused too.
    if isinstance(value, str):
        if value not in ("true", "false"):
            raise ValueError("must be true or false")
        return value == "true"
    return value


def _query_int(value: Any) -> Any:
    # Digits only: "1.0", "+1" and "1_0" are not the integers the document promises.
    if isinstance(value, str):
        if not re.fullmatch(r"-?[0-9]{1,9}", value):
            raise ValueError("must be a whole number")
        return int(value)
    return value


QueryBool = Annotated[bool, BeforeValidator(_query_bool)]


def _no_null_default(schema: dict[str, Any]) -> None:
    # Absent means "unchanged"; the document must not suggest sending null.
    schema.pop("default", None)


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

    # SkipJsonSchema: null is refused for these two (the document must not offer it).
    email: EmailAddress | SkipJsonSchema[None] = Field(
        default=None,
        json_schema_extra=_no_null_default,
        description="The customer's new email, effective at once; ends their portal sessions. "
        "Another customer with this email is a 409.",
    )
    name: Name | SkipJsonSchema[None] = Field(
        default=None, description="The customer's full name.", json_schema_extra=_no_null_default
    )
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

    send_email: QueryBool = Field(default=False, description="If true, the link is emailed too.")
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


class SdkPages:
    """A list query paged the way the official SDK walks pages.

    Its auto-pagination sends no ``page_number`` first, then 2, 3, …: zero-based
    pages made it skip the second page. So 0 and 1 both mean the first page.
    """

    page_number: int

    @property
    def page_index(self) -> int:
        """The zero-based page the backend serves."""
        return max(self.page_number - 1, 0)


class ListCustomersQuery(SdkPages, BaseModel):
    """Query string of ``GET /customers``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    page_size: Annotated[PageSize, BeforeValidator(_query_int)] = Field(
        default=10, description="Page size, at most 100."
    )
    page_number: Annotated[PageNumber, BeforeValidator(_query_int)] = Field(
        default=0, description="Page number: 0 or 1 is the first page, 2 the second, …"
    )
    # Taken as sent (auth trims and lowercases it): stripping here first would let a
    # longer value through than the document allows.
    email: Annotated[str, StringConstraints(max_length=320)] | None = Field(
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
