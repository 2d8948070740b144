"""A service started on free ports for its integration tests, and the pytest fixture for it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import aiohttp
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from billing_kit.grpc_client import create_channel
from billing_kit.runtime import ServiceRuntime
from billing_kit.settings import ServiceSettings
from billing_kit.testing.broker import BrokerNamespace
from billing_kit.testing.common import unique_name

S = TypeVar("S", bound=ServiceSettings)
R = TypeVar("R", bound=ServiceRuntime)


@dataclass
class RunningService(Generic[R]):
    """A service started by :func:`running_service`: its runtime and a channel to it."""

    runtime: R
    channel: grpc.aio.Channel

    @property
    def grpc_target(self) -> str:
        """``127.0.0.1:<port>`` of its gRPC listener."""
        return f"127.0.0.1:{self.runtime.grpc_port}"

    @property
    def ops_url(self) -> str:
        """Base URL of its ops listener (``/healthz``, ``/readyz``, ``/metrics``)."""
        return f"http://127.0.0.1:{self.runtime.ops_port}"

    async def health(self, service: str = "") -> int:
        """The gRPC health status of ``service`` (``""``: the whole server)."""
        reply = await health_pb2_grpc.HealthStub(self.channel).Check(
            health_pb2.HealthCheckRequest(service=service)
        )
        return int(reply.status)

    async def is_serving(self, service: str = "") -> bool:
        """True when gRPC health says SERVING for ``service``."""
        return bool(await self.health(service) == health_pb2.HealthCheckResponse.SERVING)

    async def readyz(self) -> int:
        """The HTTP status of its ``/readyz``."""
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{self.ops_url}/readyz") as response,
        ):
            return response.status


@contextlib.asynccontextmanager
async def running_service(
    create_app: Callable[[S], R],
    settings_class: type[S],
    *,
    mongo_url: str,
    broker: BrokerNamespace | None = None,
    **settings: Any,
) -> AsyncIterator[RunningService[R]]:
    """Start ``create_app(settings)`` on free ports; stop it afterwards.

    The service gets its own fresh database on ``mongo_url``, and, with
    ``broker``, that namespace's exchange and queue prefix; ``settings``
    override anything else. The yielded channel has the kit's default deadline
    and leaves error statuses raw, so tests can assert the wire contract.
    """
    values: dict[str, Any] = {
        "mongodb_url": mongo_url,
        "mongodb_database": unique_name("svc"),
        "grpc_port": 0,
        "ops_port": 0,
    }
    if broker is not None:
        values |= {
            "amqp_url": broker.amqp_url,
            "events_exchange": broker.exchange,
            "queue_prefix": broker.queue_prefix,
        }
    runtime = create_app(settings_class(**(values | settings)))
    await runtime.start()
    try:
        channel = create_channel(f"127.0.0.1:{runtime.grpc_port}", domain_errors=False)
        try:
            yield RunningService(runtime=runtime, channel=channel)
        finally:
            await channel.close()
    finally:
        await runtime.stop()


def service_fixture(
    create_app: Callable[[S], R],
    settings_class: type[S],
    *,
    with_broker: bool = False,
    **settings: Any,
) -> Any:
    """A pytest fixture yielding a :class:`RunningService` of ``create_app`` per test.

    ``service = service_fixture(create_app, InvoicingSettings)`` in a test module
    is the whole scaffolding. It uses the ``mongo_url`` fixture (root
    ``conftest.py``) and, ``with_broker=True``, an ``ns`` fixture yielding the
    test's :class:`BrokerNamespace` (pytest resolves fixtures by parameter name,
    so the two variants are two functions).
    """
    import pytest_asyncio  # a test-only dependency: imported only by test modules

    if with_broker:

        @pytest_asyncio.fixture
        async def service_on_broker(
            mongo_url: str, ns: BrokerNamespace
        ) -> AsyncIterator[RunningService[R]]:
            async with running_service(
                create_app, settings_class, mongo_url=mongo_url, broker=ns, **settings
            ) as running:
                yield running

        return service_on_broker

    @pytest_asyncio.fixture
    async def service(mongo_url: str) -> AsyncIterator[RunningService[R]]:
        async with running_service(
            create_app, settings_class, mongo_url=mongo_url, **settings
        ) as running:
            yield running

    return service
