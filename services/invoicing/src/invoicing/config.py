"""Settings of the invoicing service (environment variables ``INVOICING_*``)."""

from __future__ import annotations

from billing_kit.settings import ServiceSettings
from pydantic import Field
from pydantic_settings import SettingsConfigDict


class InvoicingSettings(ServiceSettings):
    """Kit settings with this service's default ports and its env prefix."""

    model_config = SettingsConfigDict(env_prefix="INVOICING_", extra="ignore", frozen=True)

    grpc_port: int = Field(default=50054, ge=0, le=65535)
    ops_port: int = Field(default=9104, ge=0, le=65535)
