"""Short in-process caches of auth's answers about sessions and businesses.

DESIGN.md §9: the gateway does not ask auth about the same session on every
request. A resolved session is reused for ``session_cache_seconds`` (keyed by
the SHA-256 of the cookie value, so the secret itself is not kept); logout
drops the entry at once, and a session ended elsewhere stops working within
the window. Auth outages are never cached.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

from billing.auth.v1 import auth_pb2, auth_pb2_grpc, portal_access_pb2, portal_access_pb2_grpc
from billing_kit.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)

from gateway.rpc import rpc

V = TypeVar("V")
# Session secrets are ~50 characters; anything far longer is garbage.
MAX_SECRET_LENGTH = 256


class TtlCache(Generic[V]):
    """A small LRU with a time-to-live; ``None`` values cache a negative answer."""

    def __init__(
        self, ttl_seconds: float, max_entries: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl = ttl_seconds
        self._max = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, V | None]] = OrderedDict()

    def get(self, key: str) -> tuple[bool, V | None]:
        """(hit, value)."""
        entry = self._entries.get(key)
        if entry is None:
            return False, None
        if entry[0] <= self._clock():
            del self._entries[key]
            return False, None
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


def secret_digest(secret: str) -> str:
    """Cache key of a session secret (SHA-256 of a short string: fine on the loop)."""
    return hashlib.sha256(secret.encode()).hexdigest()


class SessionResolver:
    """Session cookie value → auth's ``PortalSession`` (or None), briefly cached."""

    def __init__(
        self,
        stub: portal_access_pb2_grpc.PortalAccessServiceStub,
        *,
        ttl_seconds: float,
        max_entries: int,
        timeout_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stub = stub
        self._timeout = timeout_seconds
        self._cache: TtlCache[portal_access_pb2.PortalSession] = TtlCache(
            ttl_seconds, max_entries, clock
        )

    async def resolve(self, secret: str) -> portal_access_pb2.PortalSession | None:
        """The live session behind ``secret``; None when unknown, expired or ended."""
        if not secret or len(secret) > MAX_SECRET_LENGTH or not secret.isascii():
            return None
        key = secret_digest(secret)
        hit, session = self._cache.get(key)
        if hit:
            return session
        try:
            session = await rpc(
                self._stub.ResolveSession(
                    portal_access_pb2.ResolveSessionRequest(session_secret=secret),
                    timeout=self._timeout,
                )
            )
        except (NotFound, Unauthenticated, FailedPrecondition, PermissionDenied, InvalidArgument):
            session = None
        self._cache.put(key, session)
        return session

    def forget(self, secret: str) -> None:
        """Drop a session from the cache (logout, email change)."""
        self._cache.drop(secret_digest(secret))


class BusinessDirectory:
    """Business id → auth's ``Business`` (branding, name, locale), briefly cached."""

    def __init__(
        self,
        stub: auth_pb2_grpc.AuthServiceStub,
        *,
        ttl_seconds: float,
        timeout_seconds: float,
        max_entries: int = 10_000,
    ) -> None:
        self._stub = stub
        self._timeout = timeout_seconds
        self._cache: TtlCache[auth_pb2.Business] = TtlCache(ttl_seconds, max_entries)

    async def get(self, business_id: str) -> auth_pb2.Business | None:
        """The business, or None when there is no such business."""
        hit, business = self._cache.get(business_id)
        if hit:
            return business
        try:
            business = await rpc(
                self._stub.GetBusiness(
                    auth_pb2.GetBusinessRequest(business_id=business_id), timeout=self._timeout
                )
            )
        except (NotFound, PermissionDenied, InvalidArgument):
            business = None
        self._cache.put(business_id, business)
        return business
