"""The gateway's gRPC clients: one channel per backend per process.

The kit's channel interceptor adds the default deadline
(``GATEWAY_BACKEND_TIMEOUT_SECONDS``), trace context and metrics, and raises a
backend's refusal as its ``DomainError``: handlers simply ``await stub.Method(...)``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
from aiohttp import web
from billing.auth.v1 import auth_pb2_grpc, portal_access_pb2_grpc
from billing.notifications.v1 import webhooks_pb2_grpc
from billing.payments.v1 import payments_pb2_grpc
from billing.subscriptions.v1 import products_pb2_grpc, subscriptions_pb2_grpc
from billing_kit.grpc_client import create_channel
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.api_keys import ApiKeyAuthenticator
from gateway.keys import (
    API_KEYS,
    AUTH_CHANNEL,
    AUTH_STUB,
    BUSINESSES,
    NOTIFICATIONS_CHANNEL,
    PAYMENTS_CHANNEL,
    PAYMENTS_STUB,
    PORTAL_STUB,
    PRODUCTS_STUB,
    SESSIONS,
    SETTINGS,
    SUBSCRIPTIONS_CHANNEL,
    SUBSCRIPTIONS_STUB,
    WEBHOOKS_STUB,
)
from gateway.web.sessions import BusinessDirectory, SessionResolver

HEALTH_CHECK_TIMEOUT_SECONDS = 1.0


async def auth_client(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the auth channel, its stubs, the API key and session caches."""
    settings = app[SETTINGS]
    channel = create_channel(
        settings.auth_target, name="auth", timeout=settings.backend_timeout_seconds
    )
    stub = auth_pb2_grpc.AuthServiceStub(channel)
    app[AUTH_CHANNEL] = channel
    app[AUTH_STUB] = stub
    app[API_KEYS] = ApiKeyAuthenticator(
        stub,
        ttl_seconds=settings.api_key_cache_seconds,
        max_entries=settings.api_key_cache_max_entries,
    )
    portal = portal_access_pb2_grpc.PortalAccessServiceStub(channel)
    app[PORTAL_STUB] = portal
    app[SESSIONS] = SessionResolver(
        portal,
        ttl_seconds=settings.session_cache_seconds,
        max_entries=settings.session_cache_max_entries,
    )
    app[BUSINESSES] = BusinessDirectory(
        stub,
        ttl_seconds=settings.business_cache_seconds,
    )
    try:
        yield
    finally:
        await channel.close()


async def subscriptions_client(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the subscriptions channel and its stubs (products for now)."""
    settings = app[SETTINGS]
    channel = create_channel(
        settings.subscriptions_target,
        name="subscriptions",
        timeout=settings.backend_timeout_seconds,
    )
    app[SUBSCRIPTIONS_CHANNEL] = channel
    app[PRODUCTS_STUB] = products_pb2_grpc.ProductsServiceStub(channel)
    app[SUBSCRIPTIONS_STUB] = subscriptions_pb2_grpc.SubscriptionsServiceStub(channel)
    try:
        yield
    finally:
        await channel.close()


async def payments_client(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the payments channel and its stub."""
    settings = app[SETTINGS]
    channel = create_channel(
        settings.payments_target, name="payments", timeout=settings.backend_timeout_seconds
    )
    app[PAYMENTS_CHANNEL] = channel
    app[PAYMENTS_STUB] = payments_pb2_grpc.PaymentsServiceStub(channel)
    try:
        yield
    finally:
        await channel.close()


async def notifications_client(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the notifications channel and its webhooks stub."""
    settings = app[SETTINGS]
    channel = create_channel(
        settings.notifications_target,
        name="notifications",
        timeout=settings.backend_timeout_seconds,
    )
    app[NOTIFICATIONS_CHANNEL] = channel
    app[WEBHOOKS_STUB] = webhooks_pb2_grpc.WebhooksServiceStub(channel)
    try:
        yield
    finally:
        await channel.close()


async def is_serving(channel: grpc.aio.Channel) -> bool:
    """True when the backend's gRPC health service says SERVING."""
    try:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=HEALTH_CHECK_TIMEOUT_SECONDS
        )
    except grpc.aio.AioRpcError:
        return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
