"""Workers that drain time-due, leased work: queued emails, webhook deliveries.

The work lives in a collection; :meth:`DueWork.claim` takes one item that is due
and sets a lease on it in one atomic write, so several workers (and replicas)
share the queue without sending anything twice, and an item whose worker died
comes back when its lease ends. Between passes a worker sleeps until the next
item is due (at most ``poll_seconds``), or until :meth:`DueWorkers.wake` says
new work was committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Generic, Protocol, TypeVar

from pymongo.errors import PyMongoError

log = logging.getLogger(__name__)

Item = TypeVar("Item")
ItemT_co = TypeVar("ItemT_co", covariant=True)

# The shortest sleep between passes when something is due very soon.
MIN_SLEEP_SECONDS = 0.05


class DueWork(Protocol[Item]):
    """What a kind of work tells its workers."""

    async def claim(self, now: datetime) -> Item | None:
        """One item due at ``now``, leased to the caller; None when nothing is due."""
        ...

    async def attempt(self, item: Item) -> None:
        """Try the item once and record the outcome (sent, retry later, failed)."""
        ...

    async def next_due_at(self) -> datetime | None:
        """When the next item falls due (None: nothing queued)."""
        ...


class DueWorkers(Generic[Item]):
    """``workers`` tasks that each claim and attempt due items until stopped."""

    def __init__(
        self,
        work: DueWork[Item],
        *,
        name: str,
        clock: Callable[[], datetime],
        workers: int,
        poll_seconds: float,
    ) -> None:
        self._work = work
        self._name = name
        self._clock = clock
        self._workers = workers
        self._poll_seconds = poll_seconds
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def running(self) -> bool:
        """Whether the worker tasks are started."""
        return bool(self._tasks)

    async def start(self) -> None:
        """Start the worker tasks (idempotent)."""
        if self._tasks:
            return
        self._stopping.clear()
        self._wake.set()
        self._tasks = [
            asyncio.create_task(self._run(), name=f"{self._name}-{n}") for n in range(self._workers)
        ]

    async def stop(self) -> None:
        """Stop the workers; an attempt in progress finishes (bounded by its own timeout)."""
        self._stopping.set()
        self._wake.set()
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def wake(self) -> None:
        """Look for due work now (called after new work is committed)."""
        self._wake.set()

    async def run_due(self) -> int:
        """Attempt every item due now, one after another; returns how many were tried."""
        tried = 0
        while not self._stopping.is_set():
            item = await self._work.claim(self._clock())
            if item is None:
                return tried
            await self._work.attempt(item)
            tried += 1
        return tried

    async def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                tried = await self.run_due()
            except PyMongoError as exc:
                log.warning(
                    "%s paused: database error",
                    self._name,
                    extra={"error": type(exc).__name__},
                )
                tried = 0
            except Exception as exc:  # a worker must outlive any one item's bug
                log.error("%s pass failed", self._name, extra={"error": type(exc).__name__})
                tried = 0
            if tried:
                # Other workers may be asleep while more became due meanwhile.
                self._wake.set()
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=await self._sleep_seconds())

    async def _sleep_seconds(self) -> float:
        try:
            due = await self._work.next_due_at()
        except PyMongoError:
            return self._poll_seconds
        if due is None:
            return self._poll_seconds
        now = self._clock()
        if due.tzinfo is None:  # PyMongo returns naive UTC unless the client is tz_aware
            due = due.replace(tzinfo=now.tzinfo)
        return max(MIN_SLEEP_SECONDS, min(self._poll_seconds, (due - now).total_seconds()))
