"""What an operator's monitoring sees: gRPC health, readiness, clean shutdown."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import grpc
import pytest
from billing_kit.testing import eventually
from devstack import ALL_SERVICES, BACKEND_SERVICES, ServiceName, Stack
from grpc_health.v1 import health_pb2, health_pb2_grpc

pytestmark = pytest.mark.e2e

READINESS_LIMIT_SECONDS = 30.0


@pytest.mark.parametrize("service", BACKEND_SERVICES)
async def test_grpc_health_reports_serving(stack: Stack, service: ServiceName) -> None:
    async with grpc.aio.insecure_channel(stack.grpc_target(service)) as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=5
        )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_every_service_is_ready_and_exposes_metrics(stack: Stack) -> None:
    async with aiohttp.ClientSession() as session:
        for service in ALL_SERVICES:
            assert await stack.readyz(service, session) == 200, service
            async with session.get(f"{stack.ops_url(service)}/metrics") as response:
                assert response.status == 200, service
                assert "# TYPE" in await response.text()


async def test_readyz_turns_503_when_the_database_dies(mini_stack_dir: Path, amqp_url: str) -> None:
    """Own stack: killing its database must not disturb the other tests."""
    broken = Stack.isolated(mini_stack_dir, amqp_url=amqp_url, own_database=True)
    await broken.start()
    try:
        await broken.kill_database()
        statuses: dict[ServiceName, int | None] = {}
        async with aiohttp.ClientSession() as session:

            async def all_backends_unready() -> bool:
                codes = await asyncio.gather(*(broken.readyz(s, session) for s in BACKEND_SERVICES))
                statuses.update(zip(BACKEND_SERVICES, codes, strict=True))
                return all(code == 503 for code in statuses.values())

            # The gateway keeps no database, so only the backends must turn unready.
            await eventually(
                all_backends_unready,
                within=READINESS_LIMIT_SECONDS,
                interval=0.5,
                message="/readyz did not turn 503 on every backend after the database died",
            )
            # Liveness is not readiness: the processes are still up and answering.
            for service in BACKEND_SERVICES:
                async with session.get(f"{broken.ops_url(service)}/healthz") as response:
                    assert response.status == 200, service
    finally:
        await broken.stop()


async def test_services_exit_cleanly_on_sigterm(mini_stack_dir: Path, amqp_url: str) -> None:
    stack = Stack.isolated(mini_stack_dir, amqp_url=amqp_url)
    await stack.start()
    try:
        for service in ALL_SERVICES:
            started = time.monotonic()
            code = await stack.stop_service(service, grace_seconds=stack.service_grace_seconds)
            took = time.monotonic() - started
            assert code == 0, f"{service} exited with {code}:\n{stack.services[service].tail()}"
            assert took < stack.service_grace_seconds, f"{service} took {took:.1f}s to stop"
    finally:
        await stack.stop()
