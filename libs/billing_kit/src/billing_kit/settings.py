"""Settings shared by every service: environment only, validated at start.

Each service subclasses :class:`ServiceSettings` with its own ``env_prefix``
(``AUTH_``, ``SUBSCRIPTIONS_`` …). A bad value stops the process with one
clear line instead of a traceback (see :func:`load_settings`).
"""

from __future__ import annotations

import sys
from typing import Literal, TypeVar

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class CommonSettings(BaseSettings):
    """What every process has: mode of operation, ops listener, logging, shutdown."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    environment: Literal["development", "production"] = "development"
    ops_host: str = "127.0.0.1"
    ops_port: int = Field(default=9100, ge=0, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    shutdown_grace_seconds: float = Field(default=10.0, gt=0, le=300)


class ServiceSettings(CommonSettings):
    """A backend service: its own database, the broker and a gRPC listener."""

    mongodb_url: SecretStr = SecretStr("mongodb://127.0.0.1:27018/?directConnection=true")
    mongodb_database: str = Field(default="", description="defaults to the service name")
    amqp_url: SecretStr = SecretStr("amqp://guest:guest@127.0.0.1:5672/")
    events_exchange: str = "billing.events"
    # Prepended to queue names; tests use it to isolate runs on a shared broker.
    queue_prefix: str = ""
    grpc_host: str = "127.0.0.1"
    grpc_port: int = Field(default=50051, ge=0, le=65535)
    # Quorum queues redeliver a failing message this many times before dead-lettering it.
    consumer_delivery_limit: int = Field(default=5, ge=1, le=100)
    consumer_prefetch: int = Field(default=16, ge=1, le=1000)
    outbox_poll_seconds: float = Field(default=1.0, gt=0, le=60)

    @model_validator(mode="after")
    def _production_needs_explicit_secrets(self) -> ServiceSettings:
        if self.environment == "production":
            for name in ("mongodb_url", "amqp_url"):
                if name not in self.model_fields_set:
                    raise ValueError(f"{name} must be set explicitly in production")
        return self


S = TypeVar("S", bound=BaseSettings)


def _describe_settings_error(exc: ValidationError, prefix: str) -> str:
    """One line naming every bad setting by its environment variable."""
    parts = []
    for err in exc.errors():
        loc = "_".join(str(p) for p in err["loc"]).upper()
        var = f"{prefix}{loc}" if loc else prefix.rstrip("_")
        parts.append(f"{var}: {err['msg']}")
    return "; ".join(parts)


def load_settings(cls: type[S]) -> S:
    """Build settings from the environment or exit(2) with one clear line."""
    try:
        return cls()
    except ValidationError as exc:
        prefix = str(cls.model_config.get("env_prefix", ""))
        print(f"configuration error: {_describe_settings_error(exc, prefix)}", file=sys.stderr)
        raise SystemExit(2) from None
