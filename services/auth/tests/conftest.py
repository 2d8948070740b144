"""Fixtures for the auth integration tests: the auth runtime started on free ports
against the session's SecantusDB and broker namespace (root ``conftest.py``),
called over gRPC.

Emails are ``email.requested`` events: a tap on the run's exchange records
them (links opened with the development sealing key, as notifications would),
and an in-process stand-in for notifications' ``EmailService`` (a gRPC server
on a free port) answers ``GetEmailOutcome`` as the test sets it, or
UNAVAILABLE while ``down`` is set: auth's side of those contracts is what these
tests check.
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
from billing_kit.events import decode_event
from billing_kit.grpc_client import domain_error_from
from billing_kit.runtime import ServiceRuntime
from billing_kit.sealing import DEVELOPMENT_SEALING_KEY, Sealer
from billing_kit.testing import (
    BrokerNamespace,
    MessageTap,
    running_service,
    tap_exchange,
)
from pymongo.asynchronous.database import AsyncDatabase

_SEALER = Sealer(DEVELOPMENT_SEALING_KEY)


def request_of_event(data: dict[str, Any]) -> email_pb2.SendEmailRequest:
    """An email.requested's data in SendEmail's shape, link opened (what notifications sends)."""
    return email_pb2.SendEmailRequest(
        template=email_pb2.EmailTemplate.Value(f"EMAIL_TEMPLATE_{data['template'].upper()}"),
        to=data["to"],
        locale=data["locale"],
        business_id=data["business_id"],
        branding=email_pb2.EmailBranding(
            business_name=data["business_name"],
            logo_url=data["logo_url"],
            primary_color=data["primary_color"],
            support_email=data["support_email"],
        ),
        link=_SEALER.open(data["sealed_link"]) if data["sealed_link"] else "",
        link_expires_minutes=data["link_expires_minutes"],
        customer_name=data["customer_name"],
        idempotency_key=data["email_key"],
    )


class RecordingEmailService(email_pb2_grpc.EmailServiceServicer):
    """The emails auth requested (from the exchange tap) and notifications' outcome RPC.

    ``outcome`` is what GetEmailOutcome answers; while ``down`` is set it
    answers UNAVAILABLE (notifications unreachable).
    """

    def __init__(self) -> None:
        self.tap: MessageTap | None = None
        self.down = False
        self.outcome: int = email_pb2.EMAIL_OUTCOME_PENDING
        self.outcome_requests: list[email_pb2.GetEmailOutcomeRequest] = []

    @property
    def sent(self) -> list[email_pb2.SendEmailRequest]:
        """Every email requested so far, oldest first (sealed links opened)."""
        if self.tap is None:
            return []
        return [request_of_event(decode_event(m.body).data) for m in list(self.tap.messages)]

    async def GetEmailOutcome(
        self,
        request: email_pb2.GetEmailOutcomeRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> email_pb2.GetEmailOutcomeResponse:
        if self.down:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "notifications down")
        self.outcome_requests.append(request)
        return email_pb2.GetEmailOutcomeResponse(outcome=self.outcome)  # type: ignore[arg-type]

    def to(self, address: str) -> list[email_pb2.SendEmailRequest]:
        """Emails requested for ``address`` (case-insensitive), oldest first."""
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
async def email_service(
    broker_namespace: BrokerNamespace,
) -> AsyncIterator[tuple[RecordingEmailService, int]]:
    server = grpc.aio.server()
    recorder = RecordingEmailService()
    email_pb2_grpc.add_EmailServiceServicer_to_server(recorder, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with tap_exchange(
            broker_namespace.amqp_url, broker_namespace.exchange, "email.requested"
        ) as tap:
            recorder.tap = tap
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
        email_outcome_wait_seconds=0.5,
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
