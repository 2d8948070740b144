"""Settings of the payments service (environment variables ``PAYMENTS_*``)."""

from __future__ import annotations

from billing_kit.settings import ServiceSettings
from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

# Development only: production must set PAYMENTS_FINGERPRINT_SECRET (checked below).
_DEV_FINGERPRINT_SECRET = SecretStr("dev-only-fingerprint-secret-change-me")


class PaymentsSettings(ServiceSettings):
    """Kit settings with this service's default ports, its env prefix and the hosted page."""

    model_config = SettingsConfigDict(env_prefix="PAYMENTS_", extra="ignore", frozen=True)

    grpc_port: int = Field(default=50053, ge=0, le=65535)
    ops_port: int = Field(default=9103, ge=0, le=65535)
    # The hosted payment page's own listener (the only place a card number is typed).
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8083, ge=0, le=65535)
    # How browsers reach that listener (behind the ingress in production); empty:
    # http://{http_host}:{bound port}.
    public_url: str = Field(default="", pattern=r"^(https?://[^\s/?#]+(/[^\s?#]*)?)?$")
    # Keys the card fingerprints (HMAC) and the page's CSRF tokens.
    fingerprint_secret: SecretStr = _DEV_FINGERPRINT_SECRET
    # How long a hosted payment session stays usable.
    session_ttl_seconds: int = Field(default=3600, ge=60, le=86400)

    @model_validator(mode="after")
    def _production_needs_a_secret(self) -> PaymentsSettings:
        if self.environment == "production":
            if "fingerprint_secret" not in self.model_fields_set:
                raise ValueError("fingerprint_secret must be set explicitly in production")
            if len(self.fingerprint_secret.get_secret_value()) < 32:
                raise ValueError("fingerprint_secret must be at least 32 characters")
        return self
