"""Settings of the auth service: environment variables prefixed ``AUTH_``."""

from __future__ import annotations

from billing_kit.clock import refuse_test_clock_in_production
from billing_kit.sealing import DEVELOPMENT_SEALING_KEY, check_sealing_keys
from billing_kit.settings import GrpcTarget, ServiceSettings
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from auth.rules import check_http_url

_MINUTE = 60
_HOUR = 60 * _MINUTE


class AuthSettings(ServiceSettings):
    """``AUTH_MONGODB_URL``, ``AUTH_GRPC_PORT``, ``AUTH_OPS_PORT`` … (see the kit's settings)."""

    model_config = SettingsConfigDict(env_prefix="AUTH_", extra="ignore", frozen=True)

    grpc_port: int = Field(default=50051, ge=0, le=65535)
    ops_port: int = Field(default=9101, ge=0, le=65535)
    mongodb_database: str = "auth"

    # Links in emails are built only from these (never from a request's Host header).
    # The gateway is configured with the same values (GATEWAY_PORTAL_*_BASE_URL).
    portal_live_base_url: str = "http://localhost:8080/live"
    portal_test_base_url: str = "http://localhost:8080/test"
    unified_base_url: str = "http://localhost:8080/all"

    # Lifetimes of one-time links and of sessions.
    sign_in_link_ttl_seconds: int = Field(default=15 * _MINUTE, ge=60, le=7 * 24 * _HOUR)
    magic_link_ttl_seconds: int = Field(default=24 * _HOUR, ge=60, le=7 * 24 * _HOUR)
    email_change_link_ttl_seconds: int = Field(default=24 * _HOUR, ge=60, le=7 * 24 * _HOUR)
    session_idle_seconds: int = Field(default=1 * _HOUR, ge=60, le=30 * 24 * _HOUR)
    session_absolute_seconds: int = Field(default=12 * _HOUR, ge=60, le=90 * 24 * _HOUR)
    # A used session's idle deadline is written only when it moves by this much (capped
    # at a tenth of the idle limit); 0 writes it on every use.
    session_touch_seconds: int = Field(default=_MINUTE, ge=0, le=10 * _MINUTE)
    # How long a process keeps businesses it read for the unified portal (0 = off);
    # UpdateBusiness drops the copy in the process that served it.
    business_cache_seconds: float = Field(default=30.0, ge=0, le=_HOUR)
    # Unified portal -> live portal hand-off: the browser spends it at once (one redirect).
    handoff_ttl_seconds: int = Field(default=2 * _MINUTE, ge=10, le=10 * _MINUTE)

    # Fixed-window rate limits on requests that send email, shared by every replica.
    rate_limit_window_seconds: int = Field(default=15 * _MINUTE, ge=1, le=24 * _HOUR)
    rate_limit_per_email: int = Field(default=5, ge=1, le=100_000)
    rate_limit_per_client: int = Field(default=30, ge=1, le=1_000_000)

    # notifications' EmailService: asked how a magic link's first email attempt went.
    notifications_target: GrpcTarget = "127.0.0.1:50055"
    notifications_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    # How long POST .../customer-portal/session?send_email=true waits for that attempt.
    email_outcome_wait_seconds: float = Field(default=3.0, ge=0, le=10)
    # Seals the links in email.requested for notifications (comma-separated Fernet
    # keys, the first seals). Same value as NOTIFICATIONS_EMAIL_LINK_KEYS; required in
    # production, a fixed development key otherwise.
    email_link_keys: SecretStr = SecretStr(DEVELOPMENT_SEALING_KEY)

    # Development/e2e only: registers billing.common.v1.TestClockService so a test can
    # move auth's clock forward (expired links, idle sessions). Refused in production.
    test_clock_enabled: bool = False

    @field_validator("email_link_keys")
    @classmethod
    def _keys_are_fernet_keys(cls, value: SecretStr) -> SecretStr:
        return SecretStr(check_sealing_keys(value.get_secret_value()))

    @field_validator("portal_live_base_url", "portal_test_base_url", "unified_base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        checked = check_http_url(value)
        if checked is None or "?" in checked or "#" in checked:
            raise ValueError("must be an absolute http(s) URL without query or fragment")
        return checked.rstrip("/")

    @model_validator(mode="after")
    def _consistent(self) -> AuthSettings:
        if self.session_idle_seconds > self.session_absolute_seconds:
            raise ValueError("session_idle_seconds must not exceed session_absolute_seconds")
        refuse_test_clock_in_production(
            environment=self.environment, test_clock_enabled=self.test_clock_enabled
        )
        if self.environment == "production" and "email_link_keys" not in self.model_fields_set:
            raise ValueError("email_link_keys must be set explicitly in production")
        return self
