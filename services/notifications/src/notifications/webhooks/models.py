"""Domain models of merchant webhooks: endpoints, deliveries and their attempts."""

from __future__ import annotations

import secrets
import time
from datetime import datetime
from typing import Literal

from billing_kit.scoping import Mode
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

# The Dodo webhook event types this platform produces (or will: a binding for a type
# nobody emits yet costs nothing). Dodo's full list has 48; these are ours.
PAYMENT_EVENT_TYPES = (
    "payment.succeeded",
    "payment.failed",
    "payment.processing",
    "payment.cancelled",
)
SUBSCRIPTION_EVENT_TYPES = (
    "subscription.active",
    "subscription.renewed",
    "subscription.on_hold",
    "subscription.cancelled",
    "subscription.expired",
    "subscription.failed",
    "subscription.updated",
    "subscription.plan_changed",
    "subscription.paused",
    "subscription.unpaused",
)
LICENSE_KEY_EVENT_TYPES = ("license_key.created",)
DELIVERED_EVENT_TYPES = PAYMENT_EVENT_TYPES + SUBSCRIPTION_EVENT_TYPES + LICENSE_KEY_EVENT_TYPES

# Every WebhookEventType of the Dodo SDK: a filter may name any of them (Dodo accepts
# them all), even those this platform never sends.
DODO_WEBHOOK_EVENT_TYPES = frozenset(
    {
        *DELIVERED_EVENT_TYPES,
        "refund.succeeded",
        "refund.failed",
        "dispute.opened",
        "dispute.expired",
        "dispute.accepted",
        "dispute.cancelled",
        "dispute.challenged",
        "dispute.won",
        "dispute.lost",
        "subscription.past_due",
        "subscription.update_payment_method",
        "payout.created",
        "payout.on_hold",
        "payout.in_progress",
        "payout.failed",
        "payout.success",
        "credit.added",
        "credit.deducted",
        "credit.expired",
        "credit.rolled_over",
        "credit.rollover_forfeited",
        "credit.overage_charged",
        "credit.overage_reset",
        "credit.manual_adjustment",
        "credit.balance_low",
        "abandoned_checkout.detected",
        "abandoned_checkout.recovered",
        "dunning.started",
        "dunning.recovered",
        "entitlement_grant.created",
        "entitlement_grant.delivered",
        "entitlement_grant.failed",
        "entitlement_grant.revoked",
    }
)

# Header names whose values are secrets: stored sealed, never shown back (Dodo's
# `sensitive` list), never logged.
SENSITIVE_HEADER_WORDS = ("authorization", "secret", "token", "key", "password", "cookie", "auth")
# Headers the signature scheme owns: a merchant header must not replace them.
RESERVED_HEADERS = frozenset(
    {
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "content-type",
        "content-length",
        "host",
        "user-agent",
        "transfer-encoding",
        "connection",
    }
)
# Per request (the API's limit), and in total after PATCH merges.
MAX_HEADERS = 20
MAX_TOTAL_HEADERS = 100
MAX_METADATA = 50

DeliveryStatus = Literal["pending", "sending", "delivered", "failed"]


def time_ordered_id(prefix: str) -> str:
    """``<prefix>_`` + 16 hex digits of nanoseconds + 12 random hex digits.

    Sorting by id sorts by creation, so cursor pages walk the ``_id`` index.
    """
    return f"{prefix}_{time.time_ns():016x}{secrets.token_hex(6)}"


def is_sensitive_header(name: str) -> bool:
    """Whether a header's value is a secret (stored sealed, never shown)."""
    lowered = name.lower()
    return any(word in lowered for word in SENSITIVE_HEADER_WORDS)


class SigningSecret(BaseModel):
    """One signing secret, sealed at rest; ``expires_at`` set once a newer one replaced it."""

    model_config = ConfigDict(frozen=True)

    sealed: str
    created_at: AwareDatetime
    expires_at: AwareDatetime | None = None


class Endpoint(BaseModel):
    """A merchant's webhook endpoint, as stored (secrets and sensitive headers sealed)."""

    model_config = ConfigDict(frozen=True)

    webhook_id: str
    business_id: str
    mode: Mode
    url: str
    description: str = ""
    filter_types: list[str] = Field(default_factory=list)
    metadata: dict[str, str] = Field(default_factory=dict)
    disabled: bool = False
    disabled_reason: str = ""
    rate_limit: int | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    sealed_headers: dict[str, str] = Field(default_factory=dict)
    secrets: list[SigningSecret]
    idempotency_key: str | None = None
    consecutive_failures: int = 0
    failing_since: AwareDatetime | None = None
    created_at: AwareDatetime
    updated_at: AwareDatetime

    def admits(self, event_type: str) -> bool:
        """Whether this endpoint wants events of ``event_type`` (empty filter = all)."""
        return not self.filter_types or event_type in self.filter_types


class DeliveryAttempt(BaseModel):
    """One POST of a delivery: when, what came back, how long it took."""

    model_config = ConfigDict(frozen=True)

    at: AwareDatetime
    status_code: int = 0
    duration_ms: int = 0
    error: str = ""


class Delivery(BaseModel):
    """One event for one endpoint: the body is fixed at creation, so retries are identical."""

    model_config = ConfigDict(frozen=True)

    delivery_id: str
    webhook_id: str
    business_id: str
    mode: Mode
    event_id: str
    event_type: str
    body: str
    # license_key.created: the key sealed (LICENSE_KEY_SEAL_KEYS); the body's data.key is
    # empty and filled in memory before each attempt, so the table never holds a key.
    sealed_license_key: str = Field(default="", repr=False)
    status: DeliveryStatus = "pending"
    attempts: int = 0
    next_attempt_at: AwareDatetime | None = None
    lease_until: AwareDatetime | None = None
    attempt_log: list[DeliveryAttempt] = Field(default_factory=list)
    created_at: AwareDatetime
    updated_at: AwareDatetime


class EndpointChanges(BaseModel):
    """What an update changes (None = leave as is)."""

    model_config = ConfigDict(frozen=True)

    url: str | None = None
    description: str | None = None
    filter_types: list[str] | None = None
    metadata: dict[str, str] | None = None
    disabled: bool | None = None
    rate_limit: int | None = None


class EndpointSpec(BaseModel):
    """A new endpoint's fields, validated (URL scheme, filter names, header names)."""

    model_config = ConfigDict(frozen=True)

    url: str = Field(min_length=1, max_length=2048)
    description: str = Field(default="", max_length=1000)
    filter_types: list[str] = Field(default_factory=list, max_length=len(DODO_WEBHOOK_EVENT_TYPES))
    headers: dict[str, str] = Field(default_factory=dict)
    metadata: dict[str, str] = Field(default_factory=dict)
    disabled: bool = False
    rate_limit: int | None = Field(default=None, ge=1, le=100_000)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=255)

    @field_validator("filter_types")
    @classmethod
    def _known_types(cls, value: list[str]) -> list[str]:
        return check_filter_types(value)


def check_filter_types(value: list[str]) -> list[str]:
    """Dodo's event type names only; duplicates removed, order kept."""
    unknown = [t for t in value if t not in DODO_WEBHOOK_EVENT_TYPES]
    if unknown:
        raise ValueError(f"unknown event types: {', '.join(sorted(set(unknown))[:5])}")
    return list(dict.fromkeys(value))


def utc_timestamp_seconds(moment: datetime) -> int:
    """Unix seconds (the ``webhook-timestamp`` header)."""
    return int(moment.timestamp())
