"""Rate limits of the public license API; the only module that writes ``license_rate_limits``.

A sliding window per counter (one per client, one per presented key), as auth
limits sign-in requests: each hit is pushed (the newest ``limit + 1`` kept) in
one atomic update, so concurrent requests cannot all see room, and every
replica shares the counters. A refused request still counts. Counters are
keyed by hashes only: never a key or an address.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from billing_kit.clock import Clock
from billing_kit.errors import RateLimited, Reason
from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

LICENSE_RATE_LIMITS = "license_rate_limits"

INDEXES: Mapping[str, Sequence[IndexModel]] = {
    LICENSE_RATE_LIMITS: [
        IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0, name="expire"),
    ],
}


@dataclass(frozen=True)
class LicenseRateLimits:
    """How many public calls fit in the window, per client and per key."""

    window_seconds: int = 60
    per_client: int = 120
    per_key: int = 30


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class RateLimiter:
    """Counts public calls; :meth:`hit` raises RateLimited when a counter is over."""

    def __init__(
        self, db: AsyncDatabase[dict[str, Any]], clock: Clock, limits: LicenseRateLimits
    ) -> None:
        self._counters = db[LICENSE_RATE_LIMITS]
        self._clock = clock
        self.limits = limits

    async def hit(self, client_key: str, license_key: str) -> None:
        """Count one call of ``client_key`` with ``license_key``; refuse when over a limit."""
        key_counter = hashlib.sha256(f"key:{license_key.strip()}".encode()).hexdigest()[:32]
        over = False
        for counter, limit in (
            (f"client:{client_key or 'unknown'}", self.limits.per_client),
            (f"key:{key_counter}", self.limits.per_key),
        ):
            over |= await self._count(counter, limit) > limit
        if over:
            raise RateLimited(
                "too many requests: wait a minute and try again",
                reason=Reason.LICENSE_RATE_LIMITED,
            )

    async def _count(self, counter: str, limit: int) -> int:
        now = self._clock.now()
        window = timedelta(seconds=self.limits.window_seconds)
        for _ in range(3):
            try:
                doc = await self._counters.find_one_and_update(
                    {"_id": counter},
                    {
                        "$push": {"hits": {"$each": [now], "$slice": -(limit + 1)}},
                        "$set": {"expires_at": now + window},
                    },
                    upsert=True,
                    return_document=ReturnDocument.AFTER,
                )
            except DuplicateKeyError:
                continue  # two first hits raced to insert the counter
            hits = list(doc["hits"]) if doc else [now]
            return sum(1 for hit in hits if _aware(hit) > now - window)
        raise RuntimeError("rate-limit counter could not be updated")
