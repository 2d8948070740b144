"""The gRPC server/client plumbing as a caller sees it: statuses, reasons, health, deadlines."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from billing_kit.errors import NotFound
from billing_kit.grpc_client import create_channel, domain_error_from
from billing_kit.grpc_server import GrpcServer
from grpc_health.v1 import health_pb2, health_pb2_grpc

SERVICE = "test.v1.Echo"


async def _echo(request: bytes, context: Any) -> bytes:
    return request


async def _missing(request: bytes, context: Any) -> bytes:
    raise NotFound("no such customer", reason="CUSTOMER_NOT_FOUND")


async def _crash(request: bytes, context: Any) -> bytes:
    raise RuntimeError("secret internals")


async def _slow(request: bytes, context: Any) -> bytes:
    await asyncio.sleep(5)
    return request


def _register(server: grpc.aio.Server) -> None:
    handlers = {
        name: grpc.unary_unary_rpc_method_handler(fn)
        for name, fn in {"Echo": _echo, "Missing": _missing, "Crash": _crash, "Slow": _slow}.items()
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))


@pytest.fixture
async def channel() -> AsyncIterator[grpc.aio.Channel]:
    server = GrpcServer(service="test", host="127.0.0.1", port=0)
    server.add_service(_register, SERVICE)
    port = await server.start()
    chan = create_channel(f"127.0.0.1:{port}", timeout=0.5)
    yield chan
    await chan.close()
    await server.stop(1)


def _method(chan: grpc.aio.Channel, name: str) -> Any:
    return chan.unary_unary(f"/{SERVICE}/{name}")


async def test_a_domain_error_reaches_the_caller_with_its_reason(channel: grpc.aio.Channel) -> None:
    assert await _method(channel, "Echo")(b"hi") == b"hi"
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await _method(channel, "Missing")(b"")
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    err = domain_error_from(info.value)
    assert isinstance(err, NotFound)
    assert err.reason == "CUSTOMER_NOT_FOUND"
    assert err.message == "no such customer"


async def test_an_unexpected_error_is_internal_without_details(channel: grpc.aio.Channel) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await _method(channel, "Crash")(b"")
    assert info.value.code() == grpc.StatusCode.INTERNAL
    assert "secret" not in (info.value.details() or "")
    assert domain_error_from(info.value) is None


async def test_every_call_gets_a_default_deadline(channel: grpc.aio.Channel) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await _method(channel, "Slow")(b"")
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


async def test_health_reports_serving(channel: grpc.aio.Channel) -> None:
    stub = health_pb2_grpc.HealthStub(channel)
    for name in ("", SERVICE):
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=name))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
