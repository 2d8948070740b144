"""Who may see a page: one decorator per audience, visible at the handler (STYLE.md).

- :func:`public_page` — anyone (login pages, link pages);
- :func:`portal_page` — a customer signed in to *this* business, in *this*
  mode (per-business session cookie); no session → the sign-in page,
  another business's/mode's session → 404;
- :func:`unified_page` — a signed-in unified session (one verified email).

Each wrapper also activates the request's language and turns failures into
HTML pages (404, 429 for rate limits, 503 when a backend is down) instead of
JSON or a trace.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import grpc
from aiohttp import web
from billing.auth.v1 import auth_pb2, portal_access_pb2
from billing.common.v1 import common_pb2
from billing_kit.errors import DomainError
from billing_kit.scoping import mode_to_proto

from gateway.keys import BUSINESSES, SESSIONS
from gateway.problems import error_row
from gateway.web import i18n
from gateway.web.rendering import (
    SITE,
    Handler,
    activate_language,
    error_page,
    redirect,
    site_of,
)
from gateway.web.security import UNIFIED_COOKIE, business_cookie_name, clear_cookie
from gateway.web.sites import Site, valid_business_id

_log = logging.getLogger("gateway.web")


@dataclass(frozen=True, slots=True)
class PortalContext:
    """A signed-in customer of one business, in one mode."""

    site: Site
    business: auth_pb2.Business
    session: portal_access_pb2.PortalSession
    session_secret: str

    @property
    def business_id(self) -> str:
        """The business of the session (and of the URL)."""
        return self.business.business_id

    @property
    def mode(self) -> common_pb2.Mode.ValueType:
        """The session's mode as the contracts' enum, ready for any backend request."""
        return self.session.mode

    def path(self, section: str = "") -> str:
        """A request path inside this business's portal."""
        return self.site.path(f"/b/{self.business_id}/{section}")


@dataclass(frozen=True, slots=True)
class UnifiedContext:
    """A signed-in unified session (one verified email, live mode)."""

    site: Site
    session: portal_access_pb2.PortalSession
    session_secret: str


_UNAVAILABLE = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.CANCELLED,
}


async def _guarded(request: web.Request, call: Callable[[], Awaitable[web.StreamResponse]]) -> Any:
    """Run a page handler; failures become HTML pages, never JSON or a trace."""
    try:
        return await call()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_page(request, exc.status if exc.status in (404, 405, 413) else 400)
    except DomainError as exc:
        return domain_error_page(request, exc)
    except grpc.aio.AioRpcError as exc:
        _log.warning("backend call failed: %s", exc.code().name)
        return error_page(request, 503 if exc.code() in _UNAVAILABLE else 502)
    except Exception:
        _log.exception("unhandled error answering %s", request.method)
        return error_page(request, 500)


def domain_error_page(request: web.Request, exc: DomainError) -> web.Response:
    """A backend's refusal as a page, by its row in the one error table (``gateway.problems``).

    The status is the one the JSON API uses for the same reason; a refusal that
    means "not signed in" sends the customer to the sign-in page instead.
    """
    row = error_row(exc)
    if row.status >= 409:
        _log.warning("backend refused a page request: %s", exc.reason)
    site = request.get(SITE)
    if row.sign_in and site is not None:
        business_id = request.match_info.get("business_id", "")
        if site.kind == "unified":
            return redirect(site.url("/login"))
        if valid_business_id(business_id):
            return redirect(site.url(f"/login/{business_id}"))
    return error_page(request, row.status, i18n.gettext(row.message))


def public_page(handler: Handler) -> Handler:
    """Anyone may see this page (sign-in forms, link pages)."""

    @functools.wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        business_locale = None
        business_id = request.match_info.get("business_id")
        if business_id and valid_business_id(business_id):
            business = await _business_or_none(request, business_id)
            business_locale = business.locale if business is not None else None
        activate_language(request, business_locale)
        return await _guarded(request, lambda: handler(request))  # type: ignore[no-any-return]

    return wrapper


async def _business_or_none(request: web.Request, business_id: str) -> auth_pb2.Business | None:
    try:
        return await request.app[BUSINESSES].get(business_id)
    except grpc.aio.AioRpcError:
        return None  # the handler's own call reports the outage


PortalHandler = Callable[[web.Request, PortalContext], Awaitable[web.StreamResponse]]
UnifiedHandler = Callable[[web.Request, UnifiedContext], Awaitable[web.StreamResponse]]


def sign_in_redirect(site: Site, business_id: str, next_path: str | None) -> web.Response:
    """To the static link page, remembering where the customer was going."""
    location = site.url(f"/login/{business_id}")
    if next_path:
        location += "?next=" + quote(next_path, safe="/")
    return redirect(location)


def portal_page(handler: PortalHandler) -> Handler:
    """Only a customer signed in to this business, in this site's mode."""

    @functools.wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        site = site_of(request)
        business_id = request.match_info["business_id"]

        async def run() -> web.StreamResponse:
            if not valid_business_id(business_id):
                raise web.HTTPNotFound()
            cookie = business_cookie_name(site.mode, business_id)
            secret = request.cookies.get(cookie, "")
            session = await request.app[SESSIONS].resolve(secret) if secret else None
            if session is None:
                next_path = request.path[len(site.prefix) :] if request.method == "GET" else None
                response = sign_in_redirect(site, business_id, next_path)
                if secret:
                    clear_cookie(response, cookie)
                return response
            if (
                session.kind != portal_access_pb2.SESSION_KIND_BUSINESS
                or session.business_id != business_id
                or session.mode != mode_to_proto(site.mode)
            ):
                # A session of another business or mode: this URL does not exist for it.
                raise web.HTTPNotFound()
            business = await request.app[BUSINESSES].get(business_id)
            if business is None:
                raise web.HTTPNotFound()
            # Signed in: the customer's own language comes before the business's.
            activate_language(request, business.locale, session.customer_preferred_locale)
            context = PortalContext(
                site=site, business=business, session=session, session_secret=secret
            )
            return await handler(request, context)

        activate_language(request, None)
        business = (
            await _business_or_none(request, business_id)
            if valid_business_id(business_id)
            else None
        )
        if business is not None:
            activate_language(request, business.locale)
        return await _guarded(request, run)  # type: ignore[no-any-return]

    return wrapper


def unified_page(handler: UnifiedHandler) -> Handler:
    """Only a signed-in unified session."""

    @functools.wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        site = site_of(request)
        activate_language(request, None)

        async def run() -> web.StreamResponse:
            secret = request.cookies.get(UNIFIED_COOKIE, "")
            session = await request.app[SESSIONS].resolve(secret) if secret else None
            if session is None or session.kind != portal_access_pb2.SESSION_KIND_UNIFIED:
                response = redirect(site.url("/login"))
                if secret:
                    clear_cookie(response, UNIFIED_COOKIE)
                return response
            return await handler(request, UnifiedContext(site, session, secret))

        return await _guarded(request, run)  # type: ignore[no-any-return]

    return wrapper


def portal_shell(context: PortalContext, section: str, **values: Any) -> dict[str, Any]:
    """Template values of every signed-in per-business page."""
    nav = [
        ("subscriptions", i18n.gettext("Subscriptions")),
        ("invoices", i18n.gettext("Invoices")),
        ("payment-methods", i18n.gettext("Payment methods")),
        ("license-keys", i18n.gettext("License keys")),
        ("profile", i18n.gettext("Profile")),
    ]
    return {
        "business": context.business,
        "section_title": dict(nav).get(section, ""),
        "nav": [
            {"id": key, "label": label, "href": context.path(key), "current": key == section}
            for key, label in nav
        ],
        "home_href": context.path(),
        "logout_action": context.path("logout"),
        "return_url": context.session.return_url or None,
        "csrf_token": context.session.csrf_token,
        **values,
    }
