"""Wiring of the auth service: repository, use cases and gRPC servicer on the kit runtime."""

from __future__ import annotations

from billing.auth.v1 import auth_pb2, auth_pb2_grpc
from billing_kit.runtime import ServiceRuntime

from auth.config import AuthSettings
from auth.repository import INDEXES, AuthRepository
from auth.service import AuthService
from auth.servicer import AuthServicer

SERVICE_NAME = "auth"


def create_app(settings: AuthSettings) -> ServiceRuntime:
    """Build (not start) the auth runtime: ``await runtime.start()`` serves it."""
    runtime = ServiceRuntime(settings, name=SERVICE_NAME, indexes=INDEXES, outbox=True)
    repository = AuthRepository(runtime.client, runtime.db)
    service = AuthService(repository, source=SERVICE_NAME)
    servicer = AuthServicer(service)
    runtime.add_grpc_service(
        lambda server: auth_pb2_grpc.add_AuthServiceServicer_to_server(servicer, server),
        auth_pb2.DESCRIPTOR.services_by_name["AuthService"].full_name,
    )
    return runtime
