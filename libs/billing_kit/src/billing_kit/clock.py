"""The one place every service reads the time.

Use cases take a :class:`Clock` and ask it for ``now()``; nothing calls
``datetime.now`` on its own, so a test (or, in development, a test clock moved
over gRPC) can make link expiry, session timeouts, renewals and reminders
happen without waiting.

* :class:`SystemClock` is the real time (production).
* :class:`TestClock` is the real time plus an offset that only moves forward;
  :func:`clock_for` hands one out only when the test clock is enabled, and
  :func:`refuse_test_clock_in_production` is the settings check every service
  with that switch uses.
* :class:`FrozenClock` stands still until a unit test moves it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


def utc_now() -> datetime:
    """Now in UTC, truncated to milliseconds: the precision MongoDB stores.

    Truncating up front means the value a create call returns is the value
    every later read returns.
    """
    return _to_millis(datetime.now(UTC))


def _to_millis(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


class Clock(Protocol):
    """Where use cases read the time (injectable for tests)."""

    def now(self) -> datetime:
        """Now, UTC, millisecond precision."""
        ...


class SystemClock:
    """The real time."""

    def now(self) -> datetime:
        """Now, UTC, millisecond precision."""
        return utc_now()


class TestClock:
    """The real time plus an offset that only moves forward (development and tests only)."""

    __test__ = False  # not a pytest class

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        """Now as this clock sees it."""
        return utc_now() + self.offset

    def advance(self, seconds: int) -> None:
        """Move forward by ``seconds`` (> 0): a clock that went back would revive expired links."""
        if seconds <= 0:
            raise ValueError("seconds must be positive")
        self.offset += timedelta(seconds=seconds)

    def reset(self) -> None:
        """Back to the real time."""
        self.offset = timedelta(0)


class FrozenClock:
    """A clock that stands still at ``at`` until :meth:`advance` moves it (unit tests)."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("a clock reads UTC: give an aware datetime")
        self._now = _to_millis(at.astimezone(UTC))

    def now(self) -> datetime:
        """The frozen moment."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move forward by ``seconds`` (> 0)."""
        if seconds <= 0:
            raise ValueError("seconds must be positive")
        self._now = _to_millis(self._now + timedelta(seconds=seconds))


def refuse_test_clock_in_production(*, environment: str, test_clock_enabled: bool) -> None:
    """Raise ``ValueError`` when a production process asks for a movable clock.

    Called from a settings validator, so the process stops at start with one
    clear line instead of running with a clock anyone on the network can move.
    """
    if test_clock_enabled and environment == "production":
        raise ValueError("test_clock_enabled is refused in production")


def clock_for(*, test_clock_enabled: bool) -> SystemClock | TestClock:
    """The clock a service runs with: a :class:`TestClock` only when enabled."""
    return TestClock() if test_clock_enabled else SystemClock()
