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
from collections.abc import Callable

from billing.auth.v1 import auth_pb2, auth_pb2_grpc, portal_access_pb2, portal_access_pb2_grpc
from billing_kit.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from billing_kit.ttl_cache import TtlCache

# Session secrets are ~50 characters; anything far longer is garbage.
MAX_SECRET_LENGTH = 256


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
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stub = stub
        self._cache: TtlCache[portal_access_pb2.PortalSession] = TtlCache(
            ttl_seconds, max_entries, clock
        )

    async def resolve(self, secret: str) -> portal_access_pb2.PortalSession | None:
        """The live session behind ``secret``; None when unknown, expired or ended."""
        if not secret or len(secret) > MAX_SECRET_LENGTH or not secret.isascii():
            return None
        return await self._cache.get_or_load(secret_digest(secret), lambda: self._ask(secret))

    async def _ask(self, secret: str) -> portal_access_pb2.PortalSession | None:
        try:
            session: portal_access_pb2.PortalSession = await self._stub.ResolveSession(
                portal_access_pb2.ResolveSessionRequest(session_secret=secret),
            )
            return session
        except (NotFound, Unauthenticated, FailedPrecondition, PermissionDenied, InvalidArgument):
            return None

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
        max_entries: int = 10_000,
    ) -> None:
        self._stub = stub
        self._cache: TtlCache[auth_pb2.Business] = TtlCache(ttl_seconds, max_entries)

    async def get(self, business_id: str) -> auth_pb2.Business | None:
        """The business, or None when there is no such business."""
        return await self._cache.get_or_load(business_id, lambda: self._ask(business_id))

    def forget(self, business_id: str) -> None:
        """Drop the cached copy now (this gateway changed the business's settings)."""
        self._cache.drop(business_id)

    async def _ask(self, business_id: str) -> auth_pb2.Business | None:
        try:
            business: auth_pb2.Business = await self._stub.GetBusiness(
                auth_pb2.GetBusinessRequest(business_id=business_id)
            )
            return business
        except (NotFound, PermissionDenied, InvalidArgument):
            return None
