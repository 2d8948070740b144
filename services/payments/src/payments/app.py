"""Wiring: the payments service as a kit ServiceRuntime."""

from __future__ import annotations

from billing.payments.v1 import payments_pb2, payments_pb2_grpc
from billing_kit.runtime import ServiceRuntime

from payments.config import PaymentsSettings
from payments.repository import INDEXES, PaymentsRepository
from payments.service import PaymentsService
from payments.servicer import PaymentsServicer

SERVICE_NAME = "payments"


def create_app(settings: PaymentsSettings) -> PaymentsRuntime:
    """Build the runtime; ``await runtime.start()`` brings it up."""
    runtime = PaymentsRuntime(settings, name=SERVICE_NAME, indexes=INDEXES)
    runtime.repository = PaymentsRepository(runtime.db)
    servicer = PaymentsServicer(PaymentsService(runtime.repository))
    runtime.add_grpc_service(
        lambda server: payments_pb2_grpc.add_PaymentsServiceServicer_to_server(servicer, server),
        payments_pb2.DESCRIPTOR.services_by_name["PaymentsService"].full_name,
    )
    return runtime


class PaymentsRuntime(ServiceRuntime):
    """The kit runtime plus the repository, so tests and later wiring can reach it."""

    repository: PaymentsRepository
