"""Merchant webhooks in the Dodo Payments shapes (the SDK's ``client.webhooks``).

Every field the SDK (1.123) sends is declared. ``rate_limit`` is not supported
(no limiter sits behind it): only ``null`` is accepted, any other value is a 422
whose ``errors`` entry has ``type: unsupported_field``. ``url`` must be an
absolute http(s) URL. ``GET /webhooks/{id}/deliveries`` and
``POST /webhooks/{id}/secret/rotate`` are this server's extensions (the SDK has
neither).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal
from urllib.parse import urlsplit

from billing.notifications.v1 import webhooks_pb2
from billing_kit.field_rules import Metadata
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
)

from gateway.api.product_schemas import Unsupported
from gateway.api.schemas import _query_int

WebhookEventType = Literal[
    "payment.succeeded", "payment.failed", "payment.processing", "payment.cancelled",
    "refund.succeeded", "refund.failed",
    "dispute.opened", "dispute.expired", "dispute.accepted", "dispute.cancelled",
    "dispute.challenged", "dispute.won", "dispute.lost",
    "subscription.active", "subscription.renewed", "subscription.on_hold",
    "subscription.past_due", "subscription.paused", "subscription.unpaused",
    "subscription.cancelled", "subscription.failed", "subscription.expired",
    "subscription.plan_changed", "subscription.updated", "subscription.update_payment_method",
    "license_key.created",
    "payout.created", "payout.on_hold", "payout.in_progress", "payout.failed", "payout.success",
    "credit.added", "credit.deducted", "credit.expired", "credit.rolled_over",
    "credit.rollover_forfeited", "credit.overage_charged", "credit.overage_reset",
    "credit.manual_adjustment", "credit.balance_low",
    "abandoned_checkout.detected", "abandoned_checkout.recovered",
    "dunning.started", "dunning.recovered",
    "entitlement_grant.created", "entitlement_grant.delivered", "entitlement_grant.failed",
    "entitlement_grant.revoked",
]  # fmt: skip

_HEADER_NAME = r"^[A-Za-z0-9_-]{1,100}$"
_PORT = r"(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
# The whole rule is in the pattern, so the OpenAPI document says exactly what is accepted.
_URL_PATTERN = (
    r"^[Hh][Tt][Tt][Pp][Ss]?://[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?"
    rf"(:{_PORT})?([/?#][^\x00-\x20\x7f]*)?$"
)


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http or https URL")
    # The pattern already excludes credentials, spaces and ASCII control characters;
    # this only guards against a pattern edit that would let a host-less URL through.
    return value


WebhookUrl = Annotated[
    str,
    Field(min_length=1, max_length=2048, description="Absolute http(s) URL (a host name or "
          "IPv4 address, an optional port).", pattern=_URL_PATTERN),
    AfterValidator(_http_url),
]  # fmt: skip
# Keys become document field names, which cannot hold NUL.
Iterator = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z]+_[0-9a-f]+$")]
Headers = Annotated[
    dict[
        Annotated[str, Field(pattern=_HEADER_NAME)],
        Annotated[str, Field(max_length=4096, pattern=r"^[^\r\n\x00]*$")],
    ],
    # pydantic describes the key rule as patternProperties only: say that other keys
    # are refused too, so the document promises what the validation does.
    Field(max_length=20, json_schema_extra={"additionalProperties": False}),
]
Limit = Annotated[int, Field(ge=1, le=100)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CreateWebhookBody(_Body):
    """``POST /webhooks`` (Dodo's WebhookCreateParams)."""

    url: WebhookUrl
    description: Annotated[str, Field(max_length=1000)] | None = None
    disabled: StrictBool | None = Field(
        default=None, description="Create it disabled (default false)."
    )
    filter_types: list[WebhookEventType] | None = Field(
        default=None, max_length=48, description="Only these event types; empty or absent = all."
    )
    headers: Headers | None = Field(
        default=None,
        description="Custom headers sent with every delivery. Names containing authorization, "
        "secret, token, key, password, cookie or auth are sensitive: stored sealed, never shown.",
    )
    idempotency_key: Annotated[str, Field(min_length=1, max_length=255)] | None = Field(
        default=None, description="The same key again returns the first endpoint."
    )
    metadata: Metadata | None = None
    rate_limit: Unsupported


class UpdateWebhookBody(_Body):
    """``PATCH /webhooks/{webhook_id}`` (Dodo's WebhookUpdateParams); absent or null = unchanged."""

    description: Annotated[str, Field(max_length=1000)] | None = None
    disabled: StrictBool | None = Field(
        default=None, description="true disables; false re-enables (also after failures)."
    )
    filter_types: list[WebhookEventType] | None = Field(
        default=None, max_length=48, description="Replaces the filter; [] = every type."
    )
    metadata: Metadata | None = Field(default=None, description="Replaces the metadata.")
    rate_limit: Unsupported
    url: WebhookUrl | None = None


class UpdateWebhookHeadersBody(_Body):
    """``PATCH /webhooks/{webhook_id}/headers``: add or replace; an empty value removes one."""

    headers: Headers


class ListWebhooksQuery(BaseModel):
    """``GET /webhooks`` and ``GET /webhooks/{id}/deliveries`` cursor parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    limit: Annotated[Limit, BeforeValidator(_query_int)] = Field(
        default=10, description="Items per page, at most 100."
    )
    iterator: Iterator | None = Field(
        default=None, description="The `iterator` of the previous page."
    )


class WebhookOut(BaseModel):
    """Dodo's WebhookDetails."""

    id: str
    created_at: str = Field(description="ISO 8601.")
    updated_at: str = Field(description="ISO 8601.")
    description: str
    metadata: dict[str, str]
    url: str
    disabled: bool | None
    filter_types: list[str] | None
    rate_limit: int | None = None

    @classmethod
    def from_proto(cls, hook: webhooks_pb2.Webhook) -> WebhookOut:
        """Render notifications' message."""
        return cls(
            id=hook.webhook_id,
            created_at=_iso(hook.created_at),
            updated_at=_iso(hook.updated_at),
            description=hook.description,
            metadata=dict(hook.metadata),
            url=hook.url,
            disabled=hook.disabled,
            filter_types=list(hook.filter_types),
            rate_limit=hook.rate_limit if hook.HasField("rate_limit") else None,
        )


class WebhookListOut(BaseModel):
    """A cursor page of endpoints."""

    data: list[WebhookOut]
    iterator: str | None
    done: bool


class WebhookSecretOut(BaseModel):
    """``GET /webhooks/{id}/secret``."""

    secret: str = Field(description="whsec_<base64>.")


class RotatedSecretOut(BaseModel):
    """``POST /webhooks/{id}/secret/rotate`` (extension)."""

    secret: str = Field(description="The new whsec_ secret.")
    previous_secret_expires_at: datetime = Field(
        description="Until then deliveries also carry a signature with the previous secret."
    )


class WebhookHeadersOut(BaseModel):
    """``GET /webhooks/{id}/headers``."""

    headers: dict[str, str] = Field(description="Headers whose values are shown.")
    sensitive: list[str] = Field(description="Sensitive headers (values withheld).")


class DeliveryAttemptOut(BaseModel):
    """One POST of a delivery."""

    attempted_at: datetime
    status_code: int | None = Field(description="null when no HTTP response came back.")
    duration_ms: int
    error: str | None = Field(
        description="null on success; else http_status, timeout, connect_failed, "
        "request_failed, endpoint_disabled, secret_unavailable or address_refused:<why>."
    )


class DeliveryOut(BaseModel):
    """One event sent (or to be sent) to an endpoint, with its attempts, newest first."""

    id: str = Field(description="Also the webhook-id header of every attempt.")
    event_type: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    attempt_log: list[DeliveryAttemptOut]

    @classmethod
    def from_proto(cls, d: webhooks_pb2.WebhookDelivery) -> DeliveryOut:
        """Render notifications' message."""
        return cls(
            id=d.delivery_id,
            event_type=d.event_type,
            status=d.status if d.status in ("delivered", "failed") else "pending",  # type: ignore[arg-type]
            attempts=d.attempts,
            created_at=_time(d.created_at),
            next_attempt_at=_time(d.next_attempt_at) if d.HasField("next_attempt_at") else None,
            attempt_log=[
                DeliveryAttemptOut(
                    attempted_at=_time(a.at),
                    status_code=a.status_code or None,
                    duration_ms=a.duration_ms,
                    error=a.error or None,
                )
                for a in d.attempt_log
            ],
        )


class DeliveryListOut(BaseModel):
    """A cursor page of an endpoint's deliveries, newest first."""

    data: list[DeliveryOut]
    iterator: str | None
    done: bool


def _time(ts: Timestamp) -> datetime:
    return ts.ToDatetime(tzinfo=UTC)


def _iso(ts: Timestamp) -> str:
    return _time(ts).isoformat().replace("+00:00", "Z")
