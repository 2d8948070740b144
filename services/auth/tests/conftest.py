"""Fixtures for the auth integration tests: the auth runtime started on free ports
against the session's SecantusDB and broker namespace (root ``conftest.py``),
called over gRPC.

Emails go to an in-process stand-in for notifications' ``EmailService`` (a
gRPC server on a free port) that records every request and can be switched to
answer UNAVAILABLE: auth's side of that contract is what these tests check.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from auth.app import create_app
from auth.config import AuthSettings
from billing.auth.v1 import auth_pb2_grpc, portal_access_pb2_grpc
from billing.common.v1 import test_clock_pb2_grpc
from billing.notifications.v1 import email_pb2, email_pb2_grpc
from billing_kit.errors import Reason
from billing_kit.grpc_client import domain_error_from
from billing_kit.runtime import ServiceRuntime
from billing_kit.testing import BrokerNamespace, running_service
from pymongo.asynchronous.database import AsyncDatabase


class RecordingEmailService(email_pb2_grpc.EmailServiceServicer):
    """Records SendEmail requests; answers UNAVAILABLE while ``down`` is set."""

    def __init__(self) -> None:
        self.sent: list[email_pb2.SendEmailRequest] = []
        self.down = False

    async def SendEmail(
        self, request: email_pb2.SendEmailRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> email_pb2.SendEmailResponse:
        if self.down:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "smtp relay down")
        self.sent.append(request)
        return email_pb2.SendEmailResponse(email_id=f"eml_{len(self.sent)}")

    def to(self, address: str) -> list[email_pb2.SendEmailRequest]:
        """Emails sent to ``address`` (case-insensitive), oldest first."""
        return [e for e in self.sent if e.to.lower() == address.lower()]


@dataclass
class AuthHarness:
    """The running auth service, stubs to call it, and direct DB access for assertions."""

    runtime: ServiceRuntime
    stub: auth_pb2_grpc.AuthServiceStub
    portal: portal_access_pb2_grpc.PortalAccessServiceStub
    clock: test_clock_pb2_grpc.TestClockServiceStub
    emails: RecordingEmailService
    db: AsyncDatabase[dict[str, Any]]
    target: str
    settings: AuthSettings


@pytest.fixture(scope="session")
async def email_service() -> AsyncIterator[tuple[RecordingEmailService, int]]:
    server = grpc.aio.server()
    recorder = RecordingEmailService()
    email_pb2_grpc.add_EmailServiceServicer_to_server(recorder, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield recorder, port
    finally:
        await server.stop(0)


@pytest.fixture(scope="session")
async def auth(
    mongo_url: str,
    broker_namespace: BrokerNamespace,
    email_service: tuple[RecordingEmailService, int],
) -> AsyncIterator[AuthHarness]:
    recorder, email_port = email_service
    async with running_service(
        create_app,
        AuthSettings,
        mongo_url=mongo_url,
        broker=broker_namespace,
        outbox_poll_seconds=0.2,
        shutdown_grace_seconds=2,
        notifications_target=f"127.0.0.1:{email_port}",
        notifications_timeout_seconds=2,
        portal_live_base_url="https://portal.example.test/live/",
        portal_test_base_url="https://portal.example.test/test",
        unified_base_url="https://portal.example.test/all",
        test_clock_enabled=True,
    ) as service:
        settings = service.runtime.settings
        assert isinstance(settings, AuthSettings)
        # The channel keeps raw statuses: these tests check the contract on the wire.
        yield AuthHarness(
            runtime=service.runtime,
            stub=auth_pb2_grpc.AuthServiceStub(service.channel),
            portal=portal_access_pb2_grpc.PortalAccessServiceStub(service.channel),
            clock=test_clock_pb2_grpc.TestClockServiceStub(service.channel),
            emails=recorder,
            db=service.runtime.db,
            target=service.grpc_target,
            settings=settings,
        )


async def rpc_error(call: Any) -> grpc.aio.AioRpcError:
    """Await a call that must fail and return its error (the status on the wire)."""
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await call
    return exc.value


def reason(err: grpc.aio.AioRpcError) -> Reason | None:
    """The machine-readable reason of an error status, None if it carries none."""
    domain = domain_error_from(err)
    return domain.reason if domain else None
