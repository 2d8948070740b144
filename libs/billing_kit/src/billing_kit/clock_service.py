"""``billing.common.v1.TestClockService``: a test clock any service can expose.

Registered only when the service's test clock is enabled (which its settings
refuse in production), so tests and the development stack can move a
service's time forward (expired links, idle sessions, renewals) without waiting.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import grpc
from billing.common.v1 import test_clock_pb2, test_clock_pb2_grpc
from google.protobuf.timestamp_pb2 import Timestamp

from billing_kit.clock import TestClock
from billing_kit.errors import InvalidArgument
from billing_kit.grpc_server import Register

SERVICE_FULL_NAME: str = test_clock_pb2.DESCRIPTOR.services_by_name["TestClockService"].full_name


def _timestamp(value: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


class TestClockServicer(test_clock_pb2_grpc.TestClockServiceServicer):
    """Moves one service's :class:`~billing_kit.clock.TestClock`."""

    __test__ = False  # not a pytest class

    def __init__(self, clock: TestClock) -> None:
        self.clock = clock

    def _state(self) -> test_clock_pb2.ClockState:
        return test_clock_pb2.ClockState(
            now=_timestamp(self.clock.now()),
            offset_seconds=int(self.clock.offset.total_seconds()),
        )

    async def AdvanceClock(
        self, request: test_clock_pb2.AdvanceClockRequest, context: Any
    ) -> test_clock_pb2.ClockState:
        """Move the clock forward."""
        if request.seconds <= 0:
            raise InvalidArgument("seconds must be positive")
        self.clock.advance(request.seconds)
        return self._state()

    async def ResetClock(
        self, request: test_clock_pb2.ResetClockRequest, context: Any
    ) -> test_clock_pb2.ClockState:
        """Back to the real time."""
        self.clock.reset()
        return self._state()

    async def GetClock(
        self, request: test_clock_pb2.GetClockRequest, context: Any
    ) -> test_clock_pb2.ClockState:
        """The clock's current reading."""
        return self._state()


def clock_service_registration(clock: TestClock) -> Register:
    """The ``register`` callable for ``runtime.add_grpc_service(register, SERVICE_FULL_NAME)``."""
    servicer = TestClockServicer(clock)

    def register(server: grpc.aio.Server) -> None:
        test_clock_pb2_grpc.add_TestClockServiceServicer_to_server(servicer, server)

    return register
