"""Wiring: the invoicing service as a kit ServiceRuntime."""

from __future__ import annotations

from billing.invoicing.v1 import invoicing_pb2, invoicing_pb2_grpc
from billing_kit.runtime import ServiceRuntime

from invoicing.config import InvoicingSettings
from invoicing.repository import INDEXES, InvoicingRepository
from invoicing.service import InvoicingService
from invoicing.servicer import InvoicingServicer

SERVICE_NAME = "invoicing"


def create_app(settings: InvoicingSettings) -> InvoicingRuntime:
    """Build the runtime; ``await runtime.start()`` brings it up."""
    runtime = InvoicingRuntime(settings, name=SERVICE_NAME, indexes=INDEXES)
    runtime.repository = InvoicingRepository(runtime.db)
    servicer = InvoicingServicer(InvoicingService(runtime.repository))
    runtime.add_grpc_service(
        lambda server: invoicing_pb2_grpc.add_InvoicingServiceServicer_to_server(servicer, server),
        invoicing_pb2.DESCRIPTOR.services_by_name["InvoicingService"].full_name,
    )
    return runtime


class InvoicingRuntime(ServiceRuntime):
    """The kit runtime plus the repository, so tests and later wiring can reach it."""

    repository: InvoicingRepository
