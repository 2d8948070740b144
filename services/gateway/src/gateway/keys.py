"""Typed application keys: every per-process resource the handlers share."""

from __future__ import annotations

import grpc
from aiohttp import web
from billing.auth.v1 import auth_pb2_grpc

from gateway.api_keys import ApiKeyAuthenticator
from gateway.config import GatewaySettings

SETTINGS = web.AppKey("settings", GatewaySettings)
AUTH_CHANNEL = web.AppKey("auth_channel", grpc.aio.Channel)
AUTH_STUB = web.AppKey("auth_stub", auth_pb2_grpc.AuthServiceStub)
API_KEYS = web.AppKey("api_keys", ApiKeyAuthenticator)
