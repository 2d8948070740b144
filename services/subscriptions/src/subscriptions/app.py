"""Wiring: the subscriptions service as a kit ServiceRuntime."""

from __future__ import annotations

from billing.subscriptions.v1 import subscriptions_pb2, subscriptions_pb2_grpc
from billing_kit.runtime import ServiceRuntime

from subscriptions.config import SubscriptionsSettings
from subscriptions.repository import INDEXES, SubscriptionsRepository
from subscriptions.service import SubscriptionsService
from subscriptions.servicer import SubscriptionsServicer

SERVICE_NAME = "subscriptions"


def create_app(settings: SubscriptionsSettings) -> SubscriptionsRuntime:
    """Build the runtime; ``await runtime.start()`` brings it up."""
    runtime = SubscriptionsRuntime(settings, name=SERVICE_NAME, indexes=INDEXES)
    runtime.repository = SubscriptionsRepository(runtime.db)
    servicer = SubscriptionsServicer(SubscriptionsService(runtime.repository))
    runtime.add_grpc_service(
        lambda server: subscriptions_pb2_grpc.add_SubscriptionsServiceServicer_to_server(
            servicer, server
        ),
        subscriptions_pb2.DESCRIPTOR.services_by_name["SubscriptionsService"].full_name,
    )
    return runtime


class SubscriptionsRuntime(ServiceRuntime):
    """The kit runtime plus the repository, so tests and later wiring can reach it."""

    repository: SubscriptionsRepository
