"""A broker outage delays events and nothing else.

Each test runs its own stack whose services reach RabbitMQ only through a TCP
proxy, so the test can cut the broker away from every service at once (as a
network partition or a broker restart would) and bring it back. What a user
or an operator sees is checked from outside: the merchant API (reads and
writes), the gateway's ``/readyz``, gRPC health, and notifications' own
``events_handled_total`` counter for what its consumer committed.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import grpc
import pytest
from billing_kit.testing import TcpProxy, eventually, free_port, with_port
from devstack import BACKEND_SERVICES, Stack
from dodopayments import AsyncDodoPayments
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families
from yarl import URL

pytestmark = pytest.mark.e2e

OUTAGE_SECONDS = 60.0
PROBE_EVERY_SECONDS = 3.0
# The requirement: "within 5 s of the broker's return". bench/outbox_drain.py
# measures the resume (under a second); here the ~20 events of the outage drained
# 1.3 s after the return with the machine's load average at 9 on 2 cores.
DRAIN_BOUND_SECONDS = 5.0
CONSUMER = "customer-directory"


@asynccontextmanager
async def stack_behind_proxy(
    data_dir: Path, amqp_url: str, *, broker_up: bool
) -> AsyncIterator[tuple[Stack, TcpProxy]]:
    """An isolated stack whose every broker connection goes through ``proxy``."""
    broker = URL(amqp_url)
    proxy = TcpProxy(free_port(), broker.host or "127.0.0.1", broker.port or 5672)
    if broker_up:
        await proxy.start()
    stack = Stack.isolated(data_dir, amqp_url=with_port(amqp_url, proxy.listen_port))
    try:
        await stack.start()
        yield stack, proxy
    finally:
        await proxy.restore()  # the stack deletes its broker namespace through it
        try:
            await stack.stop()
        finally:
            await proxy.stop()


async def handled_events(stack: Stack, session: aiohttp.ClientSession) -> float:
    """notifications' count of events its consumer committed (first delivery only)."""
    async with session.get(f"{stack.ops_url('notifications')}/metrics") as response:
        text = await response.text()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if (
                sample.name == "events_handled_total"
                and labels.get("handler") == CONSUMER
                and labels.get("outcome") == "handled"
            ):
                return sample.value
    return 0.0


async def readyz_body(
    stack: Stack, service: str, session: aiohttp.ClientSession
) -> dict[str, object]:
    async with session.get(f"{stack.ops_url(service)}/readyz") as response:
        body: dict[str, object] = await response.json()
        body["http_status"] = response.status
        return body


async def consumer_connected(stack: Stack, session: aiohttp.ClientSession) -> bool:
    info = (await readyz_body(stack, "notifications", session)).get("info")
    return isinstance(info, dict) and info.get(f"broker:consumer:{CONSUMER}") is True


async def grpc_health(stack: Stack) -> dict[str, str]:
    """Overall gRPC health of every backend, by name."""
    statuses = {}
    for service in BACKEND_SERVICES:
        async with grpc.aio.insecure_channel(stack.grpc_target(service)) as channel:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=5
            )
        statuses[service] = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    return statuses


def merchant_sdk(stack: Stack, key: str) -> AsyncDodoPayments:
    return AsyncDodoPayments(bearer_token=key, base_url=stack.gateway_url, max_retries=0)


def email(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:10]}@example.com"


async def test_broker_cut_for_a_minute_changes_nothing_but_event_timing(
    mini_stack_dir: Path, amqp_url: str
) -> None:
    async with (
        stack_behind_proxy(mini_stack_dir, amqp_url, broker_up=True) as (stack, proxy),
        aiohttp.ClientSession() as session,
    ):
        merchant = await stack.create_business(f"Outage {uuid.uuid4().hex[:6]}")
        async with merchant_sdk(stack, merchant.api_key_secret) as sdk:
            first = await sdk.customers.create(email=email("before"), name="Before")
            await eventually(lambda: handled_events(stack, session), within=30)
            baseline = await handled_events(stack, session)

            await proxy.cut()
            cut_at = time.monotonic()
            written: list[str] = []
            problems: list[str] = []
            while time.monotonic() - cut_at < OUTAGE_SECONDS:
                # Reads and writes keep answering: writes land in the outbox.
                created = await sdk.customers.create(email=email("during"), name="During")
                written.append(created.customer_id)
                read = await sdk.customers.retrieve(first.customer_id)
                if read.customer_id != first.customer_id:
                    problems.append("read returned another customer")
                gateway = await stack.readyz("gateway", session)
                if gateway != 200:
                    problems.append(f"gateway /readyz {gateway}")
                health = await grpc_health(stack)
                if set(health.values()) != {"SERVING"}:
                    problems.append(f"gRPC health {health}")
                await asyncio.sleep(PROBE_EVERY_SECONDS)  # probe pace during the outage
            assert problems == []
            # Nothing written during the outage reached notifications yet.
            assert await handled_events(stack, session) == baseline

            await proxy.restore()
            returned_at = time.monotonic()
            await eventually(
                lambda: _at_least(handled_events(stack, session), baseline + len(written)),
                within=DRAIN_BOUND_SECONDS,
                message=f"{len(written)} events drained after the broker's return",
            )
            print(f"drained {len(written)} events {time.monotonic() - returned_at:.1f}s after")
            # Each event handled once. Instead of sleeping for a late duplicate:
            # one more write, handled after everything written before it (the
            # relay publishes in creation order onto one queue).
            await sdk.customers.create(email=email("marker"), name="Marker")
            await eventually(
                lambda: _at_least(handled_events(stack, session), baseline + len(written) + 1),
                within=DRAIN_BOUND_SECONDS,
                message="the marker written after the outage was not handled",
            )
            assert await handled_events(stack, session) == baseline + len(written) + 1
            for customer_id in written[:3]:
                assert (await sdk.customers.retrieve(customer_id)).customer_id == customer_id

        # SIGTERM while the broker is away (consumers on reconnecting channels).
        await eventually(lambda: consumer_connected(stack, session), within=30)
        await proxy.cut()
        await eventually(lambda: _not(consumer_connected(stack, session)), within=30)
        for service in ("notifications", "auth"):
            started = time.monotonic()
            code = await stack.stop_service(service, grace_seconds=stack.service_grace_seconds)
            took = time.monotonic() - started
            assert code == 0, f"{service} exited with {code}:\n{stack.services[service].tail()}"
            assert took < stack.service_grace_seconds, f"{service} took {took:.1f}s to stop"


async def test_auth_and_notifications_started_without_the_broker_work_once_it_appears(
    mini_stack_dir: Path, amqp_url: str
) -> None:
    async with (
        # Stack.start() returns only when every service answers /readyz 200.
        stack_behind_proxy(mini_stack_dir, amqp_url, broker_up=False) as (stack, proxy),
        aiohttp.ClientSession() as session,
    ):
        assert set((await grpc_health(stack)).values()) == {"SERVING"}
        assert not await consumer_connected(stack, session)
        # Writes work without the broker.
        merchant = await stack.create_business(f"No broker {uuid.uuid4().hex[:6]}")

        await proxy.restore()
        # No restart: the running processes connect by themselves.
        await eventually(lambda: consumer_connected(stack, session), within=30)
        async with merchant_sdk(stack, merchant.api_key_secret) as sdk:
            before = await handled_events(stack, session)
            await sdk.customers.create(email=email("after"), name="After")
            # auth's relay published it and notifications' consumer handled it.
            await eventually(
                lambda: _at_least(handled_events(stack, session), before + 1), within=30
            )
        auth = await readyz_body(stack, "auth", session)
        assert isinstance(auth["info"], dict) and auth["info"]["broker:publisher"] is True
        for service in ("auth", "notifications"):
            assert stack.services[service].running, service


async def _at_least(value: Awaitable[float], wanted: float) -> bool:
    return await value >= wanted


async def _not(value: Awaitable[bool]) -> bool:
    return not await value
