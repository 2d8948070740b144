"""The one short-lived in-process cache: answers kept for a few seconds.

DESIGN.md §9: the gateway does not ask auth the same question on every request
(API keys, sessions, businesses), and auth keeps the unified portal's businesses
briefly. Answers are kept for a few seconds (``None`` caches a negative answer);
errors, such as an auth outage, are never cached. When an entry is missing or
expired, concurrent requests for the same key share one load instead of each
making their own (no stampede when an entry expires).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

V = TypeVar("V")


class TtlCache(Generic[V]):
    """A small LRU with a time-to-live and single-flight loading."""

    def __init__(
        self, ttl_seconds: float, max_entries: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl = ttl_seconds
        self._max = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, V | None]] = OrderedDict()
        self._inflight: dict[str, asyncio.Future[V | None]] = {}

    def get(self, key: str) -> tuple[bool, V | None]:
        """(hit, value) without loading."""
        entry = self._entries.get(key)
        if entry is None:
            return False, None
        if entry[0] <= self._clock():
            del self._entries[key]
            return False, None
        self._entries.move_to_end(key)  # least recently used goes first
        return True, entry[1]

    def put(self, key: str, value: V | None) -> None:
        """Remember ``value`` for the TTL (no-op when caching is off)."""
        if self._ttl <= 0:
            return
        self._entries[key] = (self._clock() + self._ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def drop(self, key: str) -> None:
        """Forget ``key`` now."""
        self._entries.pop(key, None)

    def clear(self) -> None:
        """Forget everything."""
        self._entries.clear()

    async def get_or_load(self, key: str, load: Callable[[], Awaitable[V | None]]) -> V | None:
        """The cached value, or ``await load()`` once for all concurrent callers of ``key``."""
        hit, value = self.get(key)
        if hit:
            return value
        pending = self._inflight.get(key)
        if pending is not None:
            try:
                return await asyncio.shield(pending)
            except asyncio.CancelledError:
                if not pending.cancelled():
                    raise  # this request itself was cancelled
                # The request that was loading went away; load on our own.
        return await self._lead(key, load)

    async def _lead(self, key: str, load: Callable[[], Awaitable[V | None]]) -> V | None:
        pending: asyncio.Future[V | None] = asyncio.get_running_loop().create_future()
        self._inflight[key] = pending
        try:
            value = await load()
        except asyncio.CancelledError:
            pending.cancel()
            raise
        except Exception as exc:
            pending.set_exception(exc)
            # Retrieve it so a lone caller leaves no "exception never retrieved" warning.
            pending.exception()
            raise
        else:
            pending.set_result(value)
            self.put(key, value)
            return value
        finally:
            if self._inflight.get(key) is pending:
                del self._inflight[key]
