"""Awaiting backend calls so that errors arrive as the backend's DomainError."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

import grpc
from billing_kit.grpc_client import domain_error_from

T = TypeVar("T")


async def rpc(call: Awaitable[T]) -> T:
    """Await a unary call; a domain error status is raised as its ``DomainError``.

    Other failures (unavailable, deadline exceeded) stay ``AioRpcError`` and
    become a 503 problem in the middleware.
    """
    try:
        return await call
    except grpc.aio.AioRpcError as exc:
        domain_error = domain_error_from(exc)
        if domain_error is None:
            raise
        raise domain_error from None
