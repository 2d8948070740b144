"""Who may call the merchant API: a Bearer API key, resolved by auth.

Handlers declare their audience with :func:`merchant_api`; they receive the
:class:`~gateway.api_keys.Merchant` whose business and mode scope every call.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from aiohttp import web

from gateway.api_keys import InvalidApiKey, Merchant
from gateway.keys import API_KEYS
from gateway.problems import unauthorized

MerchantHandler = Callable[[web.Request, Merchant], Awaitable[web.StreamResponse]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

MERCHANT = web.RequestKey("merchant", Merchant)


def bearer_secret(request: web.Request) -> str:
    """The token of ``Authorization: Bearer <token>``; 401 when absent or malformed."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise unauthorized("Missing API key: send 'Authorization: Bearer <key>'")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("Malformed Authorization header: expected 'Bearer <key>'")
    return token.strip()


def merchant_api(handler: MerchantHandler) -> Handler:
    """Authenticate the caller's API key before ``handler`` runs."""

    @functools.wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        secret = bearer_secret(request)
        try:
            merchant = await request.app[API_KEYS].authenticate(secret)
        except InvalidApiKey:
            raise unauthorized("Invalid or revoked API key") from None
        request[MERCHANT] = merchant
        return await handler(request, merchant)

    return wrapper
