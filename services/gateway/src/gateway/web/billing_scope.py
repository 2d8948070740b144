"""Whose billing a page shows: one customer of one business, from either portal.

The subscription and payment-method pages are the same on the per-business
portal (``/b/{business_id}/…``, the session's customer) and on the unified
portal (``/all/b/{business_id}/…``, the customer that business knows for the
session's verified email), so the handlers take an :class:`Account` and never
look at which portal they serve. Every backend request is scoped with
:meth:`Account.scope`: business, mode and the owning customer, so another
customer's id is NOT_FOUND in the service and the same 404 page here.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from billing.auth.v1 import auth_pb2, portal_access_pb2
from billing.common.v1 import common_pb2

from gateway.keys import PORTAL_STUB
from gateway.web import i18n
from gateway.web.audiences import (
    PortalContext,
    UnifiedContext,
    portal_page,
    portal_shell,
    unified_page,
)
from gateway.web.rendering import Handler
from gateway.web.sites import Site, valid_business_id


@dataclass(frozen=True, slots=True)
class Account:
    """One customer of one business, as a billing page acts for it."""

    site: Site
    business: auth_pb2.Business
    mode: common_pb2.Mode.ValueType
    customer_id: str
    csrf_token: str
    unified: bool
    # Template values of the page around the content (nav, logout, brand).
    frame: dict[str, Any]

    @property
    def business_id(self) -> str:
        """The business whose subscriptions and cards these are."""
        return self.business.business_id

    def path(self, rest: str = "") -> str:
        """A request path of this account's billing pages on this site."""
        return self.site.path(f"/b/{self.business_id}/{rest}")

    def url(self, rest: str = "") -> str:
        """An absolute URL of the same (for ``return_url`` of hosted pages)."""
        return self.site.url(f"/b/{self.business_id}/{rest}")

    def scope(self) -> dict[str, Any]:
        """``business_id``, ``mode``, ``customer_id`` for a backend request."""
        return {"business_id": self.business_id, "mode": self.mode, "customer_id": self.customer_id}

    def values(self, **more: Any) -> dict[str, Any]:
        """Template values: the shell, then the page's own."""
        return {
            **self.frame,
            "csrf_token": self.csrf_token,
            "shell_template": "unified_base.html" if self.unified else "portal_base.html",
            **more,
        }


AccountHandler = Callable[[web.Request, Account], Awaitable[web.StreamResponse]]


def unified_shell(context: UnifiedContext, section: str) -> dict[str, Any]:
    """Template values of every signed-in unified page (its nav and sign-out)."""
    nav = [
        ("", i18n.gettext("Accounts")),
        ("subscriptions", i18n.gettext("Subscriptions")),
        ("payments", i18n.gettext("Payments")),
        ("license-keys", i18n.gettext("License keys")),
    ]
    return {
        "section_title": dict(nav).get(section, ""),
        "nav": [
            {
                "id": key or "accounts",
                "label": label,
                "href": context.site.path(f"/{key}"),
                "current": key == section,
            }
            for key, label in nav
        ],
        "home_href": context.site.path("/"),
        "logout_action": context.site.path("/logout"),
        "email": context.session.email,
        "csrf_token": context.session.csrf_token,
    }


async def unified_accounts(
    request: web.Request, context: UnifiedContext
) -> list[portal_access_pb2.UnifiedAccount]:
    """Every (business, customer) of the session's verified email (auth's answer)."""
    reply = await request.app[PORTAL_STUB].ListUnifiedAccounts(
        portal_access_pb2.ListUnifiedAccountsRequest(session_secret=context.session_secret),
    )
    return list(reply.accounts)


def business_account_page(section: str) -> Callable[[AccountHandler], Handler]:
    """A per-business billing page: the signed-in session's own customer."""

    def decorate(handler: AccountHandler) -> Handler:
        @portal_page
        @functools.wraps(handler)
        async def page(request: web.Request, context: PortalContext) -> web.StreamResponse:
            account = Account(
                site=context.site,
                business=context.business,
                mode=context.mode,
                customer_id=context.session.customer_id,
                csrf_token=context.session.csrf_token,
                unified=False,
                frame=portal_shell(context, section),
            )
            return await handler(request, account)

        return page

    return decorate


def unified_account_page(section: str) -> Callable[[AccountHandler], Handler]:
    """A unified billing page for one business of the email (``/all/b/{business_id}/…``).

    The business must be one of the email's accounts; any other id is the
    same 404 as a business that does not exist.
    """

    def decorate(handler: AccountHandler) -> Handler:
        @unified_page
        @functools.wraps(handler)
        async def page(request: web.Request, context: UnifiedContext) -> web.StreamResponse:
            business_id = request.match_info["business_id"]
            if not valid_business_id(business_id):
                raise web.HTTPNotFound()
            for found in await unified_accounts(request, context):
                if found.business.business_id == business_id:
                    break
            else:
                raise web.HTTPNotFound()
            account = Account(
                site=context.site,
                business=found.business,
                mode=common_pb2.MODE_LIVE,
                customer_id=found.customer.customer_id,
                csrf_token=context.session.csrf_token,
                unified=True,
                frame={**unified_shell(context, section), "business": found.business},
            )
            return await handler(request, account)

        return page

    return decorate
