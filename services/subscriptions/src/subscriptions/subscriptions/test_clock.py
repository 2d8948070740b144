"""The per-business test clock: test mode only, stored per business, never backwards.

Renewals, expiries and cancellations at period end of a business's test-mode
subscriptions read :meth:`BusinessClocks.now`; live mode always reads the real
time (the kit clock). The only module that writes ``test_clocks``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from billing_kit.clock import Clock, SystemClock
from billing_kit.errors import FailedPrecondition, InvalidArgument, NotFound, Reason
from billing_kit.scoping import Mode
from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

TEST_CLOCKS = "test_clocks"
MAX_ADVANCE_SECONDS = 20 * 366 * 86_400


@dataclass(frozen=True)
class ClockReading:
    """A business's idea of now."""

    business_id: str
    now: datetime
    offset_seconds: int


class BusinessClocks:
    """Reads and moves the test clocks; ``on_advance`` wakes the renewal scheduler."""

    def __init__(
        self,
        db: AsyncDatabase[dict[str, Any]],
        *,
        clock: Clock | None = None,
        on_advance: Callable[[], None] | None = None,
    ) -> None:
        self._clocks = db[TEST_CLOCKS]
        self.real: Clock = clock or SystemClock()
        self.on_advance = on_advance

    async def offset(self, business_id: str, mode: Mode) -> int:
        """Seconds the business's clock is ahead (always 0 in live mode)."""
        if mode != "test":
            return 0
        doc = await self._clocks.find_one({"_id": business_id})
        return int(doc["offset_seconds"]) if doc else 0

    async def now(self, business_id: str, mode: Mode) -> datetime:
        """Now for this business and mode."""
        return self.real.now() + timedelta(seconds=await self.offset(business_id, mode))

    async def read(self, business_id: str, mode: Mode) -> ClockReading:
        """The business's clock as the API shows it."""
        offset = await self.offset(business_id, mode)
        return ClockReading(business_id, self.real.now() + timedelta(seconds=offset), offset)

    async def advance(
        self, business_id: str, mode: Mode, *, seconds: int = 0, to: datetime | None = None
    ) -> ClockReading:
        """Move the business's test clock forward by ``seconds`` or to ``to`` (never back)."""
        if mode != "test":
            # A live key has no test clock at all: NOT_FOUND, as the API's 404.
            raise NotFound(
                "the test clock exists only in test mode", reason=Reason.TEST_CLOCK_LIVE_MODE
            )
        if (seconds != 0) == (to is not None):
            raise InvalidArgument(
                "give exactly one of seconds or to", reason=Reason.INVALID_ARGUMENT, field="seconds"
            )
        if to is not None:
            current = await self.now(business_id, mode)
            if to < current:
                # The request is well formed; the clock's state refuses it (409, do not retry).
                raise FailedPrecondition(
                    "the test clock never goes backwards: `to` is before its now",
                    reason=Reason.TEST_CLOCK_BACKWARDS,
                    field="to",
                )
            seconds = int((to - current).total_seconds())
        elif seconds < 0:
            raise InvalidArgument(
                "the test clock never goes backwards: seconds must be positive",
                reason=Reason.INVALID_ARGUMENT,
                field="seconds",
            )
        if seconds > MAX_ADVANCE_SECONDS:
            # A well-formed `to` can be too far only relative to the clock's now: a conflict.
            raise FailedPrecondition(
                "advance at most 20 years at once",
                reason=Reason.TEST_CLOCK_TOO_FAR,
                field="to" if to is not None else "seconds",
            )
        # $inc is atomic: two advances at once add up, neither is lost.
        doc = await self._clocks.find_one_and_update(
            {"_id": business_id},
            {"$inc": {"offset_seconds": seconds}, "$set": {"updated_at": self.real.now()}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        offset = int(doc["offset_seconds"]) if doc else seconds
        if self.on_advance is not None:
            self.on_advance()
        return ClockReading(business_id, self.real.now() + timedelta(seconds=offset), offset)

    async def clocked_businesses(self) -> list[tuple[str, int]]:
        """Every business whose test clock is ahead, with its offset (few: test mode only)."""
        cursor = self._clocks.find({"offset_seconds": {"$gt": 0}})
        return [(doc["_id"], int(doc["offset_seconds"])) async for doc in cursor]
