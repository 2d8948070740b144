"""Settings of the notifications service (environment variables ``NOTIFICATIONS_*``)."""

from __future__ import annotations

from email.utils import parseaddr

from billing_kit.sealing import DEVELOPMENT_SEALING_KEY, check_sealing_keys
from billing_kit.settings import GrpcTarget, ServiceSettings
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict


class NotificationsSettings(ServiceSettings):
    """Kit settings, this service's default ports, and where outgoing mail will go."""

    model_config = SettingsConfigDict(env_prefix="NOTIFICATIONS_", extra="ignore", frozen=True)

    grpc_port: int = Field(default=50055, ge=0, le=65535)
    ops_port: int = Field(default=9105, ge=0, le=65535)
    # The SMTP relay for customer emails (a local aiosmtpd sink in development).
    smtp_host: str = Field(default="127.0.0.1", min_length=1)
    smtp_port: int = Field(default=1025, ge=1, le=65535)
    mail_from: str = Field(default="Customer Portal <no-reply@portal.localhost>", min_length=3)
    # Relay credentials and transport (email/ subpackage); empty username = no AUTH.
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    # Implicit TLS (port 465 style); STARTTLS is used by itself when the relay offers it.
    smtp_use_tls: bool = False
    # Below the callers' gRPC deadline, so a slow relay fails the call cleanly.
    smtp_timeout_seconds: float = Field(default=4.0, gt=0, le=60)

    # Keys that open the links auth seals into email.requested (comma-separated,
    # the first is auth's current one). Shared with AUTH_EMAIL_LINK_KEYS; required
    # in production, a fixed development key otherwise.
    email_link_keys: SecretStr = SecretStr(DEVELOPMENT_SEALING_KEY)
    # Queued emails: retries with exponential backoff until the relay accepts.
    email_max_attempts: int = Field(default=40, ge=1, le=1000)
    email_retry_base_seconds: float = Field(default=1.0, gt=0, le=600)
    email_retry_max_seconds: float = Field(default=15.0, gt=0, le=3600)
    # An attempt holds its email this long; a killed process's email is retried after it.
    email_send_lease_seconds: float = Field(default=30.0, ge=2, le=3600)
    email_workers: int = Field(default=4, ge=1, le=64)

    # Billing emails: auth gives branding (cached this long) and mints one-time links;
    # invoicing gives the receipt's PDF at send time. Every call has this deadline.
    auth_target: GrpcTarget = "127.0.0.1:50051"
    invoicing_target: GrpcTarget = "127.0.0.1:50054"
    backend_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    business_cache_seconds: float = Field(default=60.0, ge=0, le=3600)
    # Keys that open the license keys subscriptions seals into license_key.created
    # (comma-separated; same value as SUBSCRIPTIONS_LICENSE_KEY_SEAL_KEYS). The key email
    # and the license_key.created webhook open them at send/build time; required in
    # production, the same fixed development key as subscriptions otherwise.
    license_key_seal_keys: SecretStr = SecretStr(DEVELOPMENT_SEALING_KEY)
    # Merchant webhooks (webhooks/ subpackage). Keys that seal signing secrets and
    # sensitive custom headers at rest (comma-separated, the first seals); required in
    # production, a fixed development key otherwise.
    webhook_secret_keys: SecretStr = SecretStr(DEVELOPMENT_SEALING_KEY)
    # Test-mode deliveries may reach private/loopback addresses (a local test server).
    # Unset: allowed outside production only. Live mode never may.
    webhook_allow_private_targets: bool | None = None
    webhook_retry_base_seconds: float = Field(default=5.0, gt=0, le=3600)
    webhook_retry_max_seconds: float = Field(default=3600.0, gt=0, le=86_400)
    webhook_max_attempts: int = Field(default=12, ge=1, le=100)
    # An endpoint failing this many attempts in a row, or for this long, is disabled.
    webhook_disable_after_failures: int = Field(default=50, ge=1, le=100_000)
    webhook_disable_after_seconds: float = Field(default=5 * 86_400, gt=0, le=90 * 86_400)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    webhook_lease_seconds: float = Field(default=30.0, ge=2, le=3600)
    webhook_workers: int = Field(default=4, ge=1, le=64)
    # After a rotation the previous secret also signs for this long.
    webhook_secret_rotation_grace_seconds: float = Field(default=86_400.0, ge=0, le=30 * 86_400)

    @property
    def webhook_private_targets_allowed(self) -> bool:
        """Whether test-mode deliveries may reach private addresses (see the setting)."""
        if self.webhook_allow_private_targets is None:
            return self.environment != "production"
        return self.webhook_allow_private_targets

    @field_validator("webhook_secret_keys")
    @classmethod
    def _webhook_keys_are_fernet_keys(cls, value: SecretStr) -> SecretStr:
        return SecretStr(check_sealing_keys(value.get_secret_value()))

    @model_validator(mode="after")
    def _production_needs_own_webhook_keys(self) -> NotificationsSettings:
        if self.environment == "production" and "webhook_secret_keys" not in self.model_fields_set:
            raise ValueError("webhook_secret_keys must be set explicitly in production")
        return self

    @field_validator("license_key_seal_keys")
    @classmethod
    def _license_keys_are_fernet_keys(cls, value: SecretStr) -> SecretStr:
        return SecretStr(check_sealing_keys(value.get_secret_value()))

    @model_validator(mode="after")
    def _production_needs_own_license_keys(self) -> NotificationsSettings:
        explicit = "license_key_seal_keys" in self.model_fields_set
        if self.environment == "production" and not explicit:
            raise ValueError("license_key_seal_keys must be set explicitly in production")
        return self

    @field_validator("email_link_keys")
    @classmethod
    def _keys_are_fernet_keys(cls, value: SecretStr) -> SecretStr:
        return SecretStr(check_sealing_keys(value.get_secret_value()))

    @model_validator(mode="after")
    def _production_needs_own_link_keys(self) -> NotificationsSettings:
        if self.environment == "production" and "email_link_keys" not in self.model_fields_set:
            raise ValueError("email_link_keys must be set explicitly in production")
        return self

    @field_validator("mail_from")
    @classmethod
    def _mail_from_has_address(cls, value: str) -> str:
        if "@" not in parseaddr(value)[1]:
            raise ValueError('must be an address or "Name <address>"')
        return value
