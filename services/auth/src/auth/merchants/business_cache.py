"""A short-lived in-process copy of businesses, for the unified portal's pages.

``ListUnifiedAccounts`` answers every signed-in unified page with each of the
email's businesses (name, branding, portal settings). Reading them from the
database on every page costs one document per business, so a page of an email
with purchases at 20 businesses read 20 business documents each time. Businesses
change rarely (name and branding never after creation; portal settings and
day counts through ``UpdateBusiness``), so a copy is kept for a few seconds.

Staleness bound: the process that serves ``UpdateBusiness`` drops its copy when
the change commits, so it answers the new settings at once; another auth
replica may answer the old ones for at most ``ttl_seconds`` (the gateway's own
business cache, 30 s, and subscriptions', 60 s, already allow the same).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from billing_kit.ttl_cache import TtlCache

from auth.merchants.models import Business
from auth.merchants.repository import MerchantRepository


class BusinessCache:
    """Businesses by id for ``ttl_seconds`` (0 = off), at most ``max_entries`` of them."""

    def __init__(
        self,
        repository: MerchantRepository,
        *,
        ttl_seconds: float,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._repository = repository
        # Monotonic on purpose: the test clock moves business time, not cache age.
        self._entries: TtlCache[Business] = TtlCache(ttl_seconds, max_entries, clock)
        # Bumped by every drop: a read that started before a drop must not store
        # what it read (it may be the state from before the change).
        self._generation = 0

    async def get_many(self, business_ids: list[str]) -> list[Business]:
        """The businesses with these ids that exist; the missing ones in one read."""
        found: list[Business] = []
        missing: list[str] = []
        for business_id in business_ids:
            hit, business = self._entries.get(business_id)
            if hit and business is not None:
                found.append(business)
            else:
                missing.append(business_id)
        if not missing:
            return found
        generation = self._generation
        loaded = await self._repository.get_businesses(missing)
        if generation == self._generation:
            for business in loaded:
                self._entries.put(business.business_id, business)
        return found + loaded

    def drop(self, business_id: str) -> None:
        """Forget one business now (its settings just changed in this process)."""
        self._generation += 1
        self._entries.drop(business_id)
