"""Wiring: the payments service as a kit ServiceRuntime plus the hosted page's HTTP listener."""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web
from billing.payments.v1 import payments_pb2, payments_pb2_grpc
from billing_kit.clock import Clock, SystemClock
from billing_kit.runtime import ServiceRuntime
from yarl import URL

from payments.charges.repository import PAYMENT_INDEXES, PaymentsRepository
from payments.charges.service import ChargesService
from payments.config import PaymentsSettings
from payments.hosted.repository import SESSION_INDEXES, PaymentSessionsRepository
from payments.hosted.service import HostedPageService
from payments.hosted.web import create_page_app
from payments.methods.repository import METHOD_INDEXES, PaymentMethodsRepository
from payments.methods.service import PaymentMethodsService
from payments.processor.processor import TestProcessor
from payments.servicer import PaymentsServicer
from payments.unit_of_work import UnitOfWork

SERVICE_NAME = "payments"


def create_app(settings: PaymentsSettings, clock: Clock | None = None) -> PaymentsRuntime:
    """Build the runtime; ``await runtime.start()`` brings it up."""
    indexes = {**METHOD_INDEXES, **PAYMENT_INDEXES, **SESSION_INDEXES}
    runtime = PaymentsRuntime(settings, name=SERVICE_NAME, indexes=indexes, outbox=True)
    clock = clock or SystemClock()
    secret = settings.fingerprint_secret.get_secret_value().encode()
    base_path = URL(settings.public_url).path.rstrip("/") if settings.public_url else ""
    uow = UnitOfWork(runtime.client, runtime.db)
    processor = TestProcessor(secret)
    runtime.method_repository = PaymentMethodsRepository(runtime.db)
    methods = PaymentMethodsService(uow, runtime.method_repository, clock)
    ttl = timedelta(seconds=settings.session_ttl_seconds)
    charges = ChargesService(
        uow,
        PaymentsRepository(runtime.db),
        methods,
        processor,
        clock,
        challenge_url=lambda challenge_id: (
            f"{runtime.public_url}{base_path}/challenge/{challenge_id}"
        ),
        challenge_ttl=ttl,
    )
    hosted = HostedPageService(
        uow,
        PaymentSessionsRepository(runtime.db),
        methods,
        charges,
        processor,
        clock,
        ttl,
        page_url=lambda session_id: f"{runtime.public_url}{base_path}/pay/{session_id}",
    )
    runtime.charges = charges
    runtime.hosted = hosted
    servicer = PaymentsServicer(methods, charges, hosted)
    runtime.add_grpc_service(
        lambda server: payments_pb2_grpc.add_PaymentsServiceServicer_to_server(servicer, server),
        payments_pb2.DESCRIPTOR.services_by_name["PaymentsService"].full_name,
    )
    runtime.page_app = create_page_app(
        hosted=hosted, charges=charges, secret=secret, clock=clock, base_path=base_path
    )
    return runtime


class PaymentsRuntime(ServiceRuntime):
    """The kit runtime plus the hosted page's listener (and handles tests reach for)."""

    settings: PaymentsSettings
    method_repository: PaymentMethodsRepository
    charges: ChargesService
    hosted: HostedPageService
    page_app: web.Application
    _page_runner: web.AppRunner | None = None
    http_port: int = 0

    # The page listener opens with the gRPC server (after indexes and the relay) and
    # closes before it: no card is taken while the database is not ready.
    async def _start_grpc(self) -> None:
        await super()._start_grpc()
        await self._start_page()

    async def _stop_grpc(self) -> None:
        await self._stop_page()
        await super()._stop_grpc()

    @property
    def public_url(self) -> str:
        """Where browsers reach the page listener (no trailing slash, no path)."""
        if self.settings.public_url:
            return str(URL(self.settings.public_url).origin())
        return f"http://{self.settings.http_host}:{self.http_port}"

    async def _start_page(self) -> None:
        # The access log is the page app's own middleware (route templates only).
        runner = web.AppRunner(self.page_app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.settings.http_host, self.settings.http_port)
        await site.start()
        self._page_runner = runner
        for address in runner.addresses:
            self.http_port = int(address[1])

    async def _stop_page(self) -> None:
        if self._page_runner is not None:
            await self._page_runner.cleanup()
            self._page_runner = None
