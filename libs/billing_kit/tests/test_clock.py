"""The kit's clock: the real time, a test clock that only moves forward, and its gRPC service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from billing.common.v1 import test_clock_pb2, test_clock_pb2_grpc
from billing_kit.clock import (
    FrozenClock,
    SystemClock,
    TestClock,
    clock_for,
    refuse_test_clock_in_production,
    utc_now,
)
from billing_kit.clock_service import SERVICE_FULL_NAME, clock_service_registration
from billing_kit.grpc_server import GrpcServer


def test_now_is_utc_to_the_millisecond() -> None:
    now = utc_now()
    assert now.tzinfo is UTC
    assert now.microsecond % 1000 == 0
    assert SystemClock().now().microsecond % 1000 == 0


def test_test_clock_only_moves_forward() -> None:
    clock = TestClock()
    before = clock.now()
    clock.advance(3600)
    assert clock.now() - before >= timedelta(hours=1)
    with pytest.raises(ValueError):
        clock.advance(0)
    with pytest.raises(ValueError):
        clock.advance(-60)
    clock.reset()
    assert clock.now() - before < timedelta(minutes=5)


def test_frozen_clock_stands_still_until_moved() -> None:
    clock = FrozenClock(datetime(2026, 3, 1, 9, 30, 0, 123456, tzinfo=UTC))
    assert clock.now() == clock.now() == datetime(2026, 3, 1, 9, 30, 0, 123000, tzinfo=UTC)
    clock.advance(90)
    assert clock.now() == datetime(2026, 3, 1, 9, 31, 30, 123000, tzinfo=UTC)
    with pytest.raises(ValueError):
        FrozenClock(datetime(2026, 3, 1))  # naive: whose time zone?


def test_a_test_clock_only_when_enabled_and_never_in_production() -> None:
    assert isinstance(clock_for(test_clock_enabled=False), SystemClock)
    assert isinstance(clock_for(test_clock_enabled=True), TestClock)
    refuse_test_clock_in_production(environment="development", test_clock_enabled=True)
    refuse_test_clock_in_production(environment="production", test_clock_enabled=False)
    with pytest.raises(ValueError, match="test_clock_enabled"):
        refuse_test_clock_in_production(environment="production", test_clock_enabled=True)


@pytest.fixture
async def clock_stub() -> AsyncIterator[tuple[TestClock, test_clock_pb2_grpc.TestClockServiceStub]]:
    clock = TestClock()
    server = GrpcServer(service="test", host="127.0.0.1", port=0)
    server.add_service(clock_service_registration(clock), SERVICE_FULL_NAME)
    port = await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield clock, test_clock_pb2_grpc.TestClockServiceStub(channel)
    await server.stop(1)


async def test_the_clock_service_moves_the_services_clock(
    clock_stub: tuple[TestClock, test_clock_pb2_grpc.TestClockServiceStub],
) -> None:
    clock, stub = clock_stub
    state = await stub.AdvanceClock(test_clock_pb2.AdvanceClockRequest(seconds=900), timeout=5)
    assert state.offset_seconds == 900
    assert clock.now() - utc_now() >= timedelta(seconds=899)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.AdvanceClock(test_clock_pb2.AdvanceClockRequest(seconds=0), timeout=5)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (await stub.GetClock(test_clock_pb2.GetClockRequest(), timeout=5)).offset_seconds == 900
    state = await stub.ResetClock(test_clock_pb2.ResetClockRequest(), timeout=5)
    assert state.offset_seconds == 0
    assert clock.offset == timedelta(0)
