"""The unified portal's short-lived copy of businesses (no I/O: a counting repository)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import cast

from auth.merchants.business_cache import BusinessCache
from auth.merchants.models import Branding, Business
from auth.merchants.repository import MerchantRepository

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def business(business_id: str, name: str = "Acme") -> Business:
    return Business(business_id=business_id, name=name, branding=Branding(), created_at=NOW)


class CountingRepository:
    """Stands in for the database: what is stored, and every id list asked for."""

    def __init__(self, *stored: Business) -> None:
        self.stored = {b.business_id: b for b in stored}
        self.reads: list[list[str]] = []
        self.gate: asyncio.Event | None = None

    async def get_businesses(self, business_ids: list[str]) -> list[Business]:
        self.reads.append(list(business_ids))
        answer = [self.stored[i] for i in business_ids if i in self.stored]
        if self.gate is not None:
            await self.gate.wait()
        return answer


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def cache_over(repository: CountingRepository, ttl: float, clock: Clock) -> BusinessCache:
    return BusinessCache(cast(MerchantRepository, repository), ttl_seconds=ttl, clock=clock)


def names(found: list[Business]) -> list[str]:
    return sorted(b.name for b in found)


class TestBusinessCache:
    async def test_a_page_within_the_ttl_reads_nothing_and_only_missing_ids_are_read(
        self,
    ) -> None:
        repo = CountingRepository(business("bus_a", "A"), business("bus_b", "B"))
        clock = Clock()
        cache = cache_over(repo, 30, clock)
        assert names(await cache.get_many(["bus_a"])) == ["A"]
        assert names(await cache.get_many(["bus_a", "bus_b", "bus_gone"])) == ["A", "B"]
        clock.now = 29
        assert names(await cache.get_many(["bus_a", "bus_b"])) == ["A", "B"]
        assert repo.reads == [["bus_a"], ["bus_b", "bus_gone"]]

    async def test_after_the_ttl_the_database_is_read_again(self) -> None:
        repo = CountingRepository(business("bus_a", "A"))
        clock = Clock()
        cache = cache_over(repo, 30, clock)
        await cache.get_many(["bus_a"])
        repo.stored["bus_a"] = business("bus_a", "A renamed")
        clock.now = 30.5
        assert names(await cache.get_many(["bus_a"])) == ["A renamed"]
        assert len(repo.reads) == 2

    async def test_a_drop_is_seen_at_once(self) -> None:
        repo = CountingRepository(business("bus_a", "A"))
        cache = cache_over(repo, 30, Clock())
        await cache.get_many(["bus_a"])
        repo.stored["bus_a"] = business("bus_a", "A changed")
        cache.drop("bus_a")
        assert names(await cache.get_many(["bus_a"])) == ["A changed"]

    async def test_a_read_that_started_before_a_drop_is_not_kept(self) -> None:
        repo = CountingRepository(business("bus_a", "old"))
        cache = cache_over(repo, 30, Clock())
        repo.gate = asyncio.Event()
        slow = asyncio.create_task(cache.get_many(["bus_a"]))
        await asyncio.sleep(0)  # the read has the old document and waits
        repo.stored["bus_a"] = business("bus_a", "new")
        cache.drop("bus_a")  # the change committed meanwhile
        repo.gate.set()
        assert names(await slow) == ["old"]
        repo.gate = None
        # The old answer was not stored: the next page reads the new one.
        assert names(await cache.get_many(["bus_a"])) == ["new"]

    async def test_ttl_zero_reads_every_time(self) -> None:
        repo = CountingRepository(business("bus_a"))
        cache = cache_over(repo, 0, Clock())
        for _ in range(3):
            await cache.get_many(["bus_a"])
        assert len(repo.reads) == 3

    async def test_the_copy_holds_at_most_max_entries(self) -> None:
        repo = CountingRepository(*(business(f"bus_{i}") for i in range(5)))
        cache = BusinessCache(
            cast(MerchantRepository, repo), ttl_seconds=30, max_entries=2, clock=Clock()
        )
        await cache.get_many([f"bus_{i}" for i in range(5)])
        await cache.get_many(["bus_3", "bus_4"])  # the two most recent are kept
        await cache.get_many(["bus_0"])
        assert repo.reads[1:] == [["bus_0"]]
