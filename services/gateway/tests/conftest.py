"""Fixtures for the gateway's own tests.

The HTTP tests run the real gateway app against an in-process gRPC server that
speaks auth's contract from memory (``FakeAuth``), so every error path can be
provoked. The integration test (test_integration_auth.py) uses the real auth.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
from aiohttp.test_utils import TestClient, TestServer
from billing.auth.v1 import auth_pb2, auth_pb2_grpc
from billing_kit.errors import DomainError, InvalidArgument, NotFound, Unauthenticated
from billing_kit.grpc_server import abort_with_domain_error
from gateway.app import create_app
from gateway.config import GatewaySettings


@dataclass
class FakeKey:
    business_id: str
    mode: int
    key_id: str
    revoked: bool = False


@dataclass
class FakeAuth(auth_pb2_grpc.AuthServiceServicer):
    """Auth's customer and API key RPCs, in memory."""

    keys: dict[str, FakeKey] = field(default_factory=dict)
    customers: list[auth_pb2.Customer] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=dict)
    unavailable: bool = False

    def add_key(self, business_id: str, mode: int = auth_pb2.MODE_TEST) -> str:
        secret = f"sk_{'test' if mode == auth_pb2.MODE_TEST else 'live'}_{uuid.uuid4().hex}"
        self.keys[secret] = FakeKey(business_id, mode, f"key_{uuid.uuid4().hex[:8]}")
        return secret

    async def _guard(self, name: str, context: Any) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1
        if self.unavailable:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "auth is down")

    async def _fail(self, context: Any, err: DomainError) -> None:
        await abort_with_domain_error(context, err)

    async def AuthenticateApiKey(self, request: Any, context: Any) -> Any:
        await self._guard("AuthenticateApiKey", context)
        key = self.keys.get(request.secret)
        if key is None or key.revoked:
            await self._fail(context, Unauthenticated("invalid api key"))
        assert key is not None
        return auth_pb2.AuthenticateApiKeyResponse(
            business_id=key.business_id, mode=key.mode, key_id=key.key_id
        )

    async def CreateCustomer(self, request: Any, context: Any) -> Any:
        await self._guard("CreateCustomer", context)
        if request.name == "reject-me":
            await self._fail(context, InvalidArgument("name is reserved", reason="NAME_RESERVED"))
        for c in self.customers:
            if (c.business_id, c.mode, c.email) == (
                request.business_id,
                request.mode,
                request.email.lower(),
            ):
                return auth_pb2.CreateCustomerResponse(customer=c, created=False)
        customer = auth_pb2.Customer(
            customer_id=f"cus_{uuid.uuid4().hex[:16]}",
            business_id=request.business_id,
            mode=request.mode,
            email=request.email.lower(),
            name=request.name,
            phone_number=request.phone_number,
        )
        customer.created_at.FromDatetime(datetime.now(UTC))
        self.customers.append(customer)
        return auth_pb2.CreateCustomerResponse(customer=customer, created=True)

    async def GetCustomer(self, request: Any, context: Any) -> Any:
        await self._guard("GetCustomer", context)
        for c in self.customers:
            if (c.business_id, c.mode, c.customer_id) == (
                request.business_id,
                request.mode,
                request.customer_id,
            ):
                return c
        await self._fail(context, NotFound("customer not found", reason="CUSTOMER_NOT_FOUND"))

    async def ListCustomers(self, request: Any, context: Any) -> Any:
        await self._guard("ListCustomers", context)
        mine = [
            c
            for c in self.customers
            if c.business_id == request.business_id
            and c.mode == request.mode
            and (not request.email or c.email == request.email.lower())
        ]
        start = request.page_number * request.page_size
        return auth_pb2.ListCustomersResponse(customers=mine[start : start + request.page_size])


@pytest.fixture
async def fake_auth() -> AsyncIterator[tuple[FakeAuth, int]]:
    fake = FakeAuth()
    server = grpc.aio.server()
    auth_pb2_grpc.add_AuthServiceServicer_to_server(fake, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield fake, port
    finally:
        await server.stop(None)


def settings_for(auth_port: int, **overrides: Any) -> GatewaySettings:
    values: dict[str, Any] = {
        "auth_target": f"127.0.0.1:{auth_port}",
        "http_port": 0,
        "ops_port": 0,
        "backend_timeout_seconds": 2.0,
    }
    return GatewaySettings(**(values | overrides))


@pytest.fixture
async def gateway(
    fake_auth: tuple[FakeAuth, int],
) -> AsyncIterator[tuple[TestClient[Any, Any], FakeAuth]]:
    fake, port = fake_auth
    app = create_app(settings_for(port))
    async with TestClient(TestServer(app)) as client:
        yield client, fake
