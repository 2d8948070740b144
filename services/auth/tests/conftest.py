"""Fixtures for the auth integration tests: the auth runtime started on free ports
against the session's SecantusDB and broker namespace (root ``conftest.py``),
called over gRPC."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from auth.app import create_app
from auth.config import AuthSettings
from billing.auth.v1 import auth_pb2_grpc
from billing_kit.grpc_client import create_channel
from billing_kit.runtime import ServiceRuntime
from billing_kit.testing import BrokerNamespace, unique_name
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase


@dataclass
class AuthHarness:
    """The running auth service, a stub to call it, and direct DB access for assertions."""

    runtime: ServiceRuntime
    stub: auth_pb2_grpc.AuthServiceStub
    db: AsyncDatabase[dict[str, Any]]
    target: str


@pytest.fixture(scope="session")
async def auth(mongo_url: str, broker_namespace: BrokerNamespace) -> AsyncIterator[AuthHarness]:
    broker = broker_namespace
    settings = AuthSettings(
        mongodb_url=mongo_url,
        mongodb_database=unique_name("auth"),
        amqp_url=broker.amqp_url,
        events_exchange=broker.exchange,
        queue_prefix=broker.queue_prefix,
        grpc_port=0,
        ops_port=0,
        outbox_poll_seconds=0.2,
        shutdown_grace_seconds=2,
    )
    runtime = create_app(settings)
    await runtime.start()
    target = f"127.0.0.1:{runtime.grpc_port}"
    channel: grpc.aio.Channel = create_channel(target, name="auth")
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_url, tz_aware=True)
    try:
        yield AuthHarness(
            runtime=runtime,
            stub=auth_pb2_grpc.AuthServiceStub(channel),
            db=client[settings.mongodb_database],
            target=target,
        )
    finally:
        await channel.close()
        await client.close()
        await runtime.stop()
