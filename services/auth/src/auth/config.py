"""Settings of the auth service: environment variables prefixed ``AUTH_``."""

from __future__ import annotations

from billing_kit.settings import ServiceSettings
from pydantic import Field
from pydantic_settings import SettingsConfigDict


class AuthSettings(ServiceSettings):
    """``AUTH_MONGODB_URL``, ``AUTH_GRPC_PORT``, ``AUTH_OPS_PORT`` … (see the kit's settings)."""

    model_config = SettingsConfigDict(env_prefix="AUTH_", extra="ignore", frozen=True)

    grpc_port: int = Field(default=50051, ge=0, le=65535)
    ops_port: int = Field(default=9101, ge=0, le=65535)
    mongodb_database: str = "auth"
