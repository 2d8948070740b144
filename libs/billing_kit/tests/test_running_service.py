"""billing_kit.testing.running_service: a service on free ports, its own database, a channel."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from billing_kit.errors import NotFound, Reason
from billing_kit.runtime import ServiceRuntime
from billing_kit.settings import ServiceSettings
from billing_kit.testing import (
    BrokerNamespace,
    RunningService,
    running_service,
    service_fixture,
)
from grpc_health.v1 import health_pb2

SERVICE = "test.v1.Probe"


async def _missing(request: bytes, context: Any) -> bytes:
    raise NotFound("nothing here", reason=Reason.NOT_FOUND)


def create_probe(settings: ServiceSettings) -> ServiceRuntime:
    runtime = ServiceRuntime(settings, name="probe", outbox=True)

    def register(server: grpc.aio.Server) -> None:
        handler = grpc.unary_unary_rpc_method_handler(_missing)
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE, {"Missing": handler}),)
        )

    runtime.add_grpc_service(register, SERVICE)
    return runtime


async def test_runs_on_free_ports_with_its_own_database_and_the_broker_namespace(
    mongo_url: str, ns: BrokerNamespace
) -> None:
    async with (
        running_service(create_probe, ServiceSettings, mongo_url=mongo_url, broker=ns) as one,
        running_service(create_probe, ServiceSettings, mongo_url=mongo_url, broker=ns) as two,
    ):
        assert one.runtime.grpc_port != two.runtime.grpc_port
        assert one.runtime.db.name != two.runtime.db.name
        assert one.runtime.settings.events_exchange == ns.exchange
        assert one.runtime.settings.queue_prefix == ns.queue_prefix
        assert await one.is_serving(SERVICE)
        assert await one.health() == health_pb2.HealthCheckResponse.SERVING
        assert await one.readyz() == 200
        # The channel leaves statuses raw: tests assert the wire contract.
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await one.channel.unary_unary(f"/{SERVICE}/Missing")(b"")
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
    # Stopped afterwards: nothing listens on its port any more.
    async with grpc.aio.insecure_channel(one.grpc_target) as channel:
        with pytest.raises(grpc.aio.AioRpcError):
            await channel.unary_unary(f"/{SERVICE}/Missing")(b"", timeout=1)


async def test_settings_override_the_defaults(mongo_url: str) -> None:
    async with running_service(
        create_probe, ServiceSettings, mongo_url=mongo_url, mongodb_database="probe_named"
    ) as probe:
        assert probe.runtime.db.name == "probe_named"


probe = service_fixture(create_probe, ServiceSettings, with_broker=True, log_level="WARNING")


async def test_the_fixture_runs_the_service_per_test_on_the_tests_broker_namespace(
    probe: RunningService[ServiceRuntime], ns: BrokerNamespace
) -> None:
    assert probe.runtime.settings.events_exchange == ns.exchange
    assert probe.runtime.settings.log_level == "WARNING"
    assert await probe.is_serving(SERVICE)
