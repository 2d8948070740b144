"""Settings of the subscriptions service (environment variables ``SUBSCRIPTIONS_*``)."""

from __future__ import annotations

from billing_kit.sealing import DEVELOPMENT_SEALING_KEY, check_sealing_keys
from billing_kit.settings import GrpcTarget, ServiceSettings
from pydantic import Field, SecretStr, field_validator, model_validator
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

    # Seals the stored copy of each license key (comma-separated Fernet keys, the first
    # seals, all open; rotate by putting a new one first). Required in production, a
    # fixed development key otherwise. Notifications opens license_key.created with it.
    license_key_seal_keys: SecretStr = SecretStr(DEVELOPMENT_SEALING_KEY)
    # An on_hold subscription's license keys keep validating this long after its paid
    # period ended.
    license_grace_days: int = Field(default=7, ge=0, le=365)
    # The public license API (activate/deactivate/validate): calls per sliding window,
    # per client (its address, hashed by the gateway) and per presented key.
    license_rate_limit_window_seconds: int = Field(default=60, ge=1, le=3600)
    license_rate_limit_per_client: int = Field(default=120, ge=1, le=1_000_000)
    license_rate_limit_per_key: int = Field(default=30, ge=1, le=1_000_000)

    @field_validator("license_key_seal_keys")
    @classmethod
    def _keys_are_fernet_keys(cls, value: SecretStr) -> SecretStr:
        return SecretStr(check_sealing_keys(value.get_secret_value()))

    @model_validator(mode="after")
    def _seal_keys_in_production(self) -> SubscriptionsSettings:
        explicit = "license_key_seal_keys" in self.model_fields_set
        if self.environment == "production" and not explicit:
            raise ValueError("license_key_seal_keys must be set explicitly in production")
        return self
