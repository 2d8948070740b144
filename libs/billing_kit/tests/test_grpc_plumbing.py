"""The gRPC server/client plumbing as a caller sees it: statuses, reasons, health, deadlines."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from billing_kit.errors import FailedPrecondition, NotFound, Reason
from billing_kit.grpc_client import create_channel, domain_error_from
from billing_kit.grpc_server import GrpcServer
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

SERVICE = "test.v1.Echo"


async def _echo(request: bytes, context: Any) -> bytes:
    return request


async def _missing(request: bytes, context: Any) -> bytes:
    raise NotFound("no such customer", reason=Reason.CUSTOMER_NOT_FOUND)


async def _from_the_future(request: bytes, context: Any) -> bytes:
    await context.abort_with_status(
        rpc_status.to_status(
            status_pb2.Status(
                code=grpc.StatusCode.FAILED_PRECONDITION.value[0],
                message="a newer server's refusal",
                details=[_packed(error_details_pb2.ErrorInfo(reason="NOT_YET_INVENTED"))],
            )
        )
    )
    raise AssertionError("unreachable")


def _packed(info: error_details_pb2.ErrorInfo) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(info)
    return packed


async def _crash(request: bytes, context: Any) -> bytes:
    raise RuntimeError("secret internals")


async def _slow(request: bytes, context: Any) -> bytes:
    await asyncio.sleep(5)  # slower than any deadline the tests set: the call must be cut
    return request


def _register(server: grpc.aio.Server) -> None:
    handlers = {
        name: grpc.unary_unary_rpc_method_handler(fn)
        for name, fn in {
            "Echo": _echo,
            "Missing": _missing,
            "Future": _from_the_future,
            "Crash": _crash,
            "Slow": _slow,
        }.items()
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))


@pytest.fixture
async def server_port() -> AsyncIterator[int]:
    server = GrpcServer(service="test", host="127.0.0.1", port=0)
    server.add_service(_register, SERVICE)
    yield await server.start()
    await server.stop(1)


@pytest.fixture
async def channel(server_port: int) -> AsyncIterator[grpc.aio.Channel]:
    chan = create_channel(f"127.0.0.1:{server_port}", timeout=0.5)
    yield chan
    await chan.close()


def _method(chan: grpc.aio.Channel, name: str) -> Any:
    return chan.unary_unary(f"/{SERVICE}/{name}")


async def test_a_domain_error_reaches_the_caller_with_its_reason(channel: grpc.aio.Channel) -> None:
    assert await _method(channel, "Echo")(b"hi") == b"hi"
    # The kit's channel raises the server's DomainError itself: no wrapper per call.
    with pytest.raises(NotFound) as info:
        await _method(channel, "Missing")(b"")
    assert info.value.reason is Reason.CUSTOMER_NOT_FOUND
    assert info.value.message == "no such customer"


async def test_a_plain_channel_sees_the_status_and_can_rebuild_the_error(
    channel: grpc.aio.Channel, server_port: int
) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server_port}") as plain:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await _method(plain, "Missing")(b"", timeout=5)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    err = domain_error_from(info.value)
    assert isinstance(err, NotFound)
    assert err.reason is Reason.CUSTOMER_NOT_FOUND


async def test_an_unknown_reason_falls_back_to_the_status_meaning(
    channel: grpc.aio.Channel,
) -> None:
    with pytest.raises(FailedPrecondition) as info:
        await _method(channel, "Future")(b"")
    assert info.value.reason is Reason.FAILED_PRECONDITION
    assert info.value.message == "a newer server's refusal"


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
