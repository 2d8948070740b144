"""The gateway's cache of auth answers: one call per key, however many requests wait."""

from __future__ import annotations

import asyncio

import pytest
from billing_kit.ttl_cache import TtlCache


async def test_concurrent_misses_share_one_load_and_the_answer_is_reused() -> None:
    calls = 0

    async def load() -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)  # a slow load, so the concurrent misses overlap
        return "session"

    cache: TtlCache[str] = TtlCache(ttl_seconds=60, max_entries=10)
    results = await asyncio.gather(*(cache.get_or_load("k", load) for _ in range(16)))
    assert results == ["session"] * 16
    assert calls == 1
    assert await cache.get_or_load("k", load) == "session"
    assert calls == 1


async def test_an_expired_entry_is_loaded_again_and_errors_are_never_cached() -> None:
    now = [0.0]
    answers: list[object] = [RuntimeError("auth down"), "fresh", "again"]

    async def load() -> str:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return str(answer)

    cache: TtlCache[str] = TtlCache(ttl_seconds=5, max_entries=10, clock=lambda: now[0])
    with pytest.raises(RuntimeError):
        await cache.get_or_load("k", load)
    assert await cache.get_or_load("k", load) == "fresh"
    now[0] = 6.0
    assert await cache.get_or_load("k", load) == "again"


async def test_a_negative_answer_is_cached_and_drop_forgets_it() -> None:
    calls = 0

    async def load() -> None:
        nonlocal calls
        calls += 1

    cache: TtlCache[str] = TtlCache(ttl_seconds=60, max_entries=10)
    assert await cache.get_or_load("k", load) is None
    assert await cache.get_or_load("k", load) is None
    assert calls == 1
    cache.drop("k")
    await cache.get_or_load("k", load)
    assert calls == 2
