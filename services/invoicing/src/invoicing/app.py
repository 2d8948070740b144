"""Wiring: the invoicing service as a kit ServiceRuntime."""

from __future__ import annotations

import grpc
from billing.invoicing.v1 import invoicing_pb2, invoicing_pb2_grpc
from billing_kit.grpc_client import create_channel
from billing_kit.runtime import ServiceRuntime

from invoicing.config import InvoicingSettings
from invoicing.issuing import ISSUE_PURPOSE, PAYMENT_EVENTS, Issuing
from invoicing.parties import AuthDirectory
from invoicing.repository import INDEXES, InvoicingRepository, PdfStore
from invoicing.service import InvoicingService
from invoicing.servicer import InvoicingServicer

SERVICE_NAME = "invoicing"


def create_app(settings: InvoicingSettings) -> InvoicingRuntime:
    """Build the runtime; ``await runtime.start()`` brings it up."""
    runtime = InvoicingRuntime(settings, name=SERVICE_NAME, indexes=INDEXES, outbox=True)
    runtime.repository = InvoicingRepository(runtime.db)
    runtime.pdfs = PdfStore(runtime.db)
    # One channel per process, reused (connects lazily: auth need not be up to start).
    runtime.auth_channel = create_channel(
        settings.auth_target, name="auth", timeout=settings.auth_timeout_seconds
    )
    runtime.issuing = Issuing(
        repository=runtime.repository,
        pdfs=runtime.pdfs,
        parties=AuthDirectory(runtime.auth_channel, retry_seconds=settings.auth_retry_seconds),
        client=runtime.client,
        db=runtime.db,
        lease_seconds=settings.finish_lease_seconds,
        retry_later_seconds=settings.finish_retry_seconds,
        sweep_seconds=settings.sweep_seconds,
        render_concurrency=settings.render_concurrency,
    )
    runtime.add_step("auth-channel", _noop, runtime.auth_channel.close)
    runtime.add_consumer(ISSUE_PURPOSE, PAYMENT_EVENTS, runtime.issuing.on_payment_succeeded)
    # Stopped by InvoicingRuntime.stop, before the database closes.
    runtime.add_step("invoice-sweeper", runtime.issuing.start)
    servicer = InvoicingServicer(
        InvoicingService(runtime.repository, runtime.pdfs), runtime.issuing
    )
    runtime.add_grpc_service(
        lambda server: invoicing_pb2_grpc.add_InvoicingServiceServicer_to_server(servicer, server),
        invoicing_pb2.DESCRIPTOR.services_by_name["InvoicingService"].full_name,
    )
    return runtime


async def _noop() -> None:
    return None


class InvoicingRuntime(ServiceRuntime):
    """The kit runtime plus what tests and operators reach: storage and the issuing flow."""

    repository: InvoicingRepository
    pdfs: PdfStore
    issuing: Issuing
    auth_channel: grpc.aio.Channel

    async def stop(self) -> None:
        """Stop the sweeper and in-flight PDF work first, then the kit's steps.

        The kit registers its own steps (the database among them) after this
        service's, so in its reverse-order stop the sweeper would outlive the
        database; issuing's work needs the database to end cleanly.
        """
        await self.issuing.stop(grace_seconds=min(5.0, self.stop_time_left() / 3))
        await super().stop()
