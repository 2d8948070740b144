"""Typed application keys: every per-process resource the handlers share."""

from __future__ import annotations

import gettext

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

from gateway.api_keys import ApiKeyAuthenticator
from gateway.config import GatewaySettings
from gateway.web.sessions import BusinessDirectory, SessionResolver
from gateway.web.sites import Sites

SETTINGS = web.AppKey("settings", GatewaySettings)
AUTH_CHANNEL = web.AppKey("auth_channel", grpc.aio.Channel)
AUTH_STUB = web.AppKey("auth_stub", auth_pb2_grpc.AuthServiceStub)
PORTAL_STUB = web.AppKey("portal_stub", portal_access_pb2_grpc.PortalAccessServiceStub)
API_KEYS = web.AppKey("api_keys", ApiKeyAuthenticator)
SESSIONS = web.AppKey("sessions", SessionResolver)
BUSINESSES = web.AppKey("businesses", BusinessDirectory)
SITES = web.AppKey("sites", Sites)
CATALOGS = web.AppKey("catalogs", dict[str, gettext.NullTranslations])
SUBSCRIPTIONS_CHANNEL = web.AppKey("subscriptions_channel", grpc.aio.Channel)
PRODUCTS_STUB = web.AppKey("products_stub", products_pb2_grpc.ProductsServiceStub)
ADDONS_STUB = web.AppKey("addons_stub", addons_pb2_grpc.AddonsServiceStub)
SUBSCRIPTIONS_STUB = web.AppKey(
    "subscriptions_stub", subscriptions_pb2_grpc.SubscriptionsServiceStub
)
PAYMENTS_CHANNEL = web.AppKey("payments_channel", grpc.aio.Channel)
PAYMENTS_STUB = web.AppKey("payments_stub", payments_pb2_grpc.PaymentsServiceStub)
LICENSES_STUB = web.AppKey("licenses_stub", licenses_pb2_grpc.LicenseServiceStub)
INVOICING_CHANNEL = web.AppKey("invoicing_channel", grpc.aio.Channel)
INVOICING_STUB = web.AppKey("invoicing_stub", invoicing_pb2_grpc.InvoicingServiceStub)
NOTIFICATIONS_CHANNEL = web.AppKey("notifications_channel", grpc.aio.Channel)
WEBHOOKS_STUB = web.AppKey("webhooks_stub", webhooks_pb2_grpc.WebhooksServiceStub)
