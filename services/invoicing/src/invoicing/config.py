"""Settings of the invoicing service (environment variables ``INVOICING_*``)."""

from __future__ import annotations

from billing_kit.settings import GrpcTarget, ServiceSettings
from pydantic import Field
from pydantic_settings import SettingsConfigDict


class InvoicingSettings(ServiceSettings):
    """Kit settings with this service's default ports and its env prefix."""

    model_config = SettingsConfigDict(env_prefix="INVOICING_", extra="ignore", frozen=True)

    grpc_port: int = Field(default=50054, ge=0, le=65535)
    ops_port: int = Field(default=9104, ge=0, le=65535)

    # auth's AuthService (GetBusiness, GetCustomer): the seller and buyer printed on invoices.
    auth_target: GrpcTarget = "127.0.0.1:50051"
    auth_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    # How long one finish keeps retrying an unreachable auth before deferring the invoice.
    auth_retry_seconds: float = Field(default=8.0, ge=0, le=300)
    # The sweeper finishes invoices left without a stored PDF (a crash, auth down):
    # a pass at start and every sweep_seconds; a replica's claim is leased this long.
    sweep_seconds: float = Field(default=30.0, gt=0, le=3600)
    finish_lease_seconds: float = Field(default=60.0, ge=5, le=3600)
    # After auth stayed unreachable, the invoice is tried again this much later.
    finish_retry_seconds: float = Field(default=15.0, gt=0, le=3600)
    # PDFs rendered at once (each in a worker thread).
    render_concurrency: int = Field(default=2, ge=1, le=32)
