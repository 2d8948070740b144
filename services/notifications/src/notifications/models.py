"""Domain models of the notifications service."""

from __future__ import annotations

from datetime import UTC, datetime

from billing_kit.field_rules import EmailAddress
from billing_kit.scoping import Mode
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

# The customer events this service learns its recipients from.
CUSTOMER_CREATED = "customer.created"
CUSTOMER_UPDATED = "customer.updated"
CUSTOMER_EVENT_TYPES = (CUSTOMER_CREATED, CUSTOMER_UPDATED)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def event_time_micros(moment: datetime) -> int:
    """Microseconds since the epoch.

    MongoDB keeps datetimes to the millisecond, so the ordering rule compares this
    exact integer instead; two events within one millisecond still order correctly.
    """
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


class CustomerEventData(BaseModel):
    """The ``data`` of customer.created / customer.updated: a snapshot of the customer.

    Fields this service does not use (phone number, created_at, ...) are ignored so
    the producer can grow the payload without breaking this consumer.
    """

    model_config = ConfigDict(extra="ignore", frozen=True, str_strip_whitespace=True)

    customer_id: str = Field(min_length=1, max_length=128)
    business_id: str = Field(min_length=1, max_length=128)
    mode: Mode
    # Auth's rule for customer emails (billing_kit.field_rules): whatever auth stored,
    # this service can mail.
    email: EmailAddress = Field(description="where the customer's emails go")
    name: str = Field(default="", max_length=256)
    locale: str | None = Field(
        default=None, max_length=35, description="BCP 47 tag for the customer's emails"
    )


class RecipientKey(BaseModel):
    """Identifies one recipient: a customer of one business in one mode."""

    model_config = ConfigDict(frozen=True)

    business_id: str = Field(min_length=1, max_length=128)
    mode: Mode
    customer_id: str = Field(min_length=1, max_length=128)


class Recipient(BaseModel):
    """Where and how to write to a customer, as of the last customer event applied."""

    model_config = ConfigDict(frozen=True)

    business_id: str
    mode: Mode
    customer_id: str
    email: str
    name: str = ""
    locale: str | None = None
    last_event_id: str
    # The time of the last applied event: the version an older event must not overwrite.
    updated_at: AwareDatetime

    @property
    def key(self) -> RecipientKey:
        """The recipient's identity."""
        return RecipientKey(
            business_id=self.business_id, mode=self.mode, customer_id=self.customer_id
        )
