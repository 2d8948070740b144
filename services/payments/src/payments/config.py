"""Settings of the payments service (environment variables ``PAYMENTS_*``)."""

from __future__ import annotations

from billing_kit.settings import ServiceSettings
from pydantic import Field
from pydantic_settings import SettingsConfigDict


class PaymentsSettings(ServiceSettings):
    """Kit settings with this service's default ports and its env prefix."""

    model_config = SettingsConfigDict(env_prefix="PAYMENTS_", extra="ignore", frozen=True)

    grpc_port: int = Field(default=50053, ge=0, le=65535)
    ops_port: int = Field(default=9103, ge=0, le=65535)
