"""The workers that drain leased, due work (emails and webhook deliveries use them)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from billing_kit.due_work import DueWorkers

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


class Queue:
    """An in-memory DueWork: items due at given times, claimed one at a time."""

    def __init__(self, due: dict[str, datetime], *, broken: frozenset[str] = frozenset()) -> None:
        self.due = dict(due)
        self.broken = broken
        self.attempted: list[str] = []
        self.now = NOW

    async def claim(self, now: datetime) -> str | None:
        ready = sorted(k for k, at in self.due.items() if at <= now)
        if not ready:
            return None
        await asyncio.sleep(0)  # let other workers interleave between claims
        return self.due.pop(ready[0], None) and ready[0]

    async def attempt(self, item: str) -> None:
        self.attempted.append(item)
        if item in self.broken:
            raise RuntimeError("a bug in one item")

    async def next_due_at(self) -> datetime | None:
        return min(self.due.values(), default=None)


async def _until(condition: object, seconds: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def test_several_workers_attempt_each_due_item_once() -> None:
    queue = Queue({f"item-{n:02d}": NOW for n in range(30)})
    workers = DueWorkers(queue, name="test", clock=lambda: queue.now, workers=4, poll_seconds=1)
    await workers.start()
    try:
        await _until(lambda: len(queue.attempted) == 30)
    finally:
        await workers.stop()
    assert sorted(queue.attempted) == [f"item-{n:02d}" for n in range(30)]


async def test_a_failing_item_does_not_stop_the_worker() -> None:
    queue = Queue({"a": NOW, "b": NOW, "c": NOW}, broken=frozenset({"a"}))
    workers = DueWorkers(queue, name="test", clock=lambda: queue.now, workers=1, poll_seconds=1)
    await workers.start()
    try:
        await _until(lambda: len(queue.attempted) == 3)
    finally:
        await workers.stop()
    assert queue.attempted == ["a", "b", "c"]


async def test_an_item_due_later_waits_until_woken_or_due() -> None:
    queue = Queue({"later": NOW + timedelta(hours=1)})
    workers = DueWorkers(queue, name="test", clock=lambda: queue.now, workers=1, poll_seconds=0.05)
    await workers.start()
    try:
        await asyncio.sleep(0.2)
        assert queue.attempted == []  # not due yet
        queue.now = NOW + timedelta(hours=1)
        workers.wake()
        await _until(lambda: queue.attempted == ["later"])
        assert workers.running
    finally:
        await workers.stop()
    assert not workers.running
