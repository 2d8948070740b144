"""The gateway's gRPC clients: one channel per backend per process.

The kit's channel interceptor adds the default deadline
(``GATEWAY_BACKEND_TIMEOUT_SECONDS``), trace context and metrics, and raises a
backend's refusal as its ``DomainError``: handlers simply ``await stub.Method(...)``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import grpc
from aiohttp import web
from billing.auth.v1 import auth_pb2_grpc, portal_access_pb2_grpc
from billing.invoicing.v1 import invoicing_pb2_grpc
from billing.notifications.v1 import webhooks_pb2_grpc
from billing.payments.v1 import payments_pb2_grpc
from billing.subscriptions.v1 import (
    addons_pb2_grpc,
    licenses_pb2_grpc,
    products_pb2_grpc,
    subscriptions_pb2_grpc,
)
from billing_kit.grpc_client import create_channel
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.api_keys import ApiKeyAuthenticator
from gateway.keys import (
    ADDONS_STUB,
    API_KEYS,
    AUTH_CHANNEL,
    AUTH_STUB,
    BUSINESSES,
    INVOICING_CHANNEL,
    INVOICING_STUB,
    LICENSES_STUB,
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


@contextlib.asynccontextmanager
async def _backend_channel(
    app: web.Application, target: str, name: str, key: web.AppKey[grpc.aio.Channel]
) -> AsyncIterator[grpc.aio.Channel]:
    """One backend's channel, kept in ``app[key]`` (readiness checks it) and closed at exit."""
    channel = create_channel(target, name=name, timeout=app[SETTINGS].backend_timeout_seconds)
    app[key] = channel
    try:
        yield channel
    finally:
        await channel.close()


async def auth_client(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the auth channel, its stubs, the API key and session caches."""
    settings = app[SETTINGS]
    async with _backend_channel(app, settings.auth_target, "auth", AUTH_CHANNEL) as channel:
        stub = auth_pb2_grpc.AuthServiceStub(channel)
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
        app[BUSINESSES] = BusinessDirectory(stub, ttl_seconds=settings.business_cache_seconds)
        yield


async def subscriptions_client(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the subscriptions channel and its stubs (products, subscriptions, licenses)."""
    target = app[SETTINGS].subscriptions_target
    async with _backend_channel(app, target, "subscriptions", SUBSCRIPTIONS_CHANNEL) as channel:
        app[PRODUCTS_STUB] = products_pb2_grpc.ProductsServiceStub(channel)
        app[ADDONS_STUB] = addons_pb2_grpc.AddonsServiceStub(channel)
        app[SUBSCRIPTIONS_STUB] = subscriptions_pb2_grpc.SubscriptionsServiceStub(channel)
        app[LICENSES_STUB] = licenses_pb2_grpc.LicenseServiceStub(channel)
        yield


async def payments_client(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the payments channel and its stub."""
    target = app[SETTINGS].payments_target
    async with _backend_channel(app, target, "payments", PAYMENTS_CHANNEL) as channel:
        app[PAYMENTS_STUB] = payments_pb2_grpc.PaymentsServiceStub(channel)
        yield


async def invoicing_client(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the invoicing channel and its stub (invoice history, PDFs)."""
    target = app[SETTINGS].invoicing_target
    async with _backend_channel(app, target, "invoicing", INVOICING_CHANNEL) as channel:
        app[INVOICING_STUB] = invoicing_pb2_grpc.InvoicingServiceStub(channel)
        yield


async def notifications_client(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the notifications channel and its webhooks stub."""
    target = app[SETTINGS].notifications_target
    async with _backend_channel(app, target, "notifications", NOTIFICATIONS_CHANNEL) as channel:
        app[WEBHOOKS_STUB] = webhooks_pb2_grpc.WebhooksServiceStub(channel)
        yield


async def is_serving(channel: grpc.aio.Channel) -> bool:
    """True when the backend's gRPC health service says SERVING."""
    try:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=HEALTH_CHECK_TIMEOUT_SECONDS
        )
    except grpc.aio.AioRpcError:
        return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
