"""Merchant API key authentication with a short in-process cache.

The gateway asks auth (AuthenticateApiKey) once per key per
``api_key_cache_seconds`` instead of on every request; a revoked key stops
working within that window. The cache is keyed by the SHA-256 of the secret so
the plain secret never sits in a long-lived structure, and concurrent requests
with the same key share one RPC.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from billing.auth.v1 import auth_pb2, auth_pb2_grpc
from billing.common.v1 import common_pb2
from billing_kit.errors import InvalidArgument, NotFound, PermissionDenied, Unauthenticated
from billing_kit.scoping import Mode, mode_from_proto, mode_to_proto
from billing_kit.ttl_cache import TtlCache

# Real keys are far shorter; anything longer is refused without bothering auth.
MAX_SECRET_LENGTH = 256


@dataclass(frozen=True, slots=True)
class Merchant:
    """Who is calling: one business, in one mode, through one key."""

    business_id: str
    mode: Mode
    key_id: str

    @property
    def proto_mode(self) -> common_pb2.Mode.ValueType:
        """The mode as the backends' enum."""
        return mode_to_proto(self.mode)


class InvalidApiKey(Exception):
    """The key is unknown, revoked or malformed."""


class ApiKeyAuthenticator:
    """Resolves a bearer secret to a :class:`Merchant`, caching results briefly."""

    def __init__(
        self,
        stub: auth_pb2_grpc.AuthServiceStub,
        *,
        ttl_seconds: float,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stub = stub
        # digest -> merchant, or None for a rejected key
        self._cache: TtlCache[Merchant] = TtlCache(ttl_seconds, max_entries, clock)

    async def authenticate(self, secret: str) -> Merchant:
        """The merchant behind ``secret``; raises :class:`InvalidApiKey`.

        Backend outages propagate (as gRPC errors) and are never cached, so a
        blip in auth does not lock merchants out for the cache window.
        """
        if not secret or len(secret) > MAX_SECRET_LENGTH or not secret.isascii():
            raise InvalidApiKey
        # SHA-256 of a short string takes microseconds: fine on the loop.
        digest = hashlib.sha256(secret.encode()).hexdigest()
        return self._unwrap(await self._cache.get_or_load(digest, lambda: self._ask_auth(secret)))

    def forget_all(self) -> None:
        """Drop every cached result (tests, or an operator-triggered flush)."""
        self._cache.clear()

    async def _ask_auth(self, secret: str) -> Merchant | None:
        try:
            reply = await self._stub.AuthenticateApiKey(
                auth_pb2.AuthenticateApiKeyRequest(secret=secret)
            )
        except (Unauthenticated, NotFound, PermissionDenied, InvalidArgument):
            return None
        if not reply.business_id:
            return None
        try:
            mode = mode_from_proto(reply.mode)
        except InvalidArgument:
            # A key without a mode this gateway knows cannot be scoped, so it is refused.
            return None
        return Merchant(business_id=reply.business_id, mode=mode, key_id=reply.key_id)

    @staticmethod
    def _unwrap(merchant: Merchant | None) -> Merchant:
        if merchant is None:
            raise InvalidApiKey
        return merchant
