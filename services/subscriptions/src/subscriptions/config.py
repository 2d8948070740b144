"""Settings of the subscriptions service (environment variables ``SUBSCRIPTIONS_*``)."""

from __future__ import annotations

from billing_kit.settings import GrpcTarget, ServiceSettings
from pydantic import Field
from pydantic_settings import SettingsConfigDict


class SubscriptionsSettings(ServiceSettings):
    """Kit settings with this service's default ports and its env prefix."""

    model_config = SettingsConfigDict(env_prefix="SUBSCRIPTIONS_", extra="ignore", frozen=True)

    grpc_port: int = Field(default=50052, ge=0, le=65535)
    ops_port: int = Field(default=9102, ge=0, le=65535)

    # payments' PaymentsService (ChargePaymentMethod); every call has this deadline.
    payments_target: GrpcTarget = "127.0.0.1:50053"
    payments_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    # The renewal scheduler: a pass every poll (and at once when a test clock moves);
    # a claimed subscription is leased this long (another replica takes over after).
    renewals_enabled: bool = True
    renewal_poll_seconds: float = Field(default=30.0, gt=0, le=3600)
    renewal_lease_seconds: float = Field(default=120.0, ge=5, le=3600)
    # Renewal reminders read each business's renewal_reminder_days from auth's
    # GetBusiness (cached this long); every call has the deadline below.
    auth_target: GrpcTarget = "127.0.0.1:50051"
    auth_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    business_cache_seconds: float = Field(default=60.0, ge=0, le=3600)
