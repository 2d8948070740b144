"""Rendering pages and who may see them.

Handlers declare their audience at the handler (STYLE.md):

- :func:`public_page` — anyone (login pages, link pages);
- :func:`portal_page` — a customer signed in to *this* business, in *this*
  mode (per-business session cookie); no session → the sign-in page,
  another business's/mode's session → 404;
- :func:`unified_page` — a signed-in unified session (one verified email).

Each wrapper also picks the site (live/test/unified base URL) the request came
in under, activates the request's language and turns failures into HTML pages
(404, 429 for rate limits, 503 when a backend is down) instead of JSON.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp_jinja2
import grpc
import jinja2
from aiohttp import web
from billing.auth.v1 import auth_pb2, portal_access_pb2
from billing.common.v1 import common_pb2
from billing_kit.errors import DomainError
from billing_kit.scoping import mode_to_proto

from gateway.keys import BUSINESSES, CATALOGS, SESSIONS, SITES
from gateway.problems import error_row
from gateway.web import i18n
from gateway.web.branding import safe_logo_url
from gateway.web.security import (
    UNIFIED_COOKIE,
    apply_page_headers,
    business_cookie_name,
    clear_cookie,
    login_csrf_token,
    set_login_csrf_cookie,
)
from gateway.web.sites import Site, SiteKind, valid_business_id

_log = logging.getLogger("gateway.web")

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

SITE = web.RequestKey("site", Site)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def setup_templates(app: web.Application) -> None:
    """Jinja2 (autoescaped) with gettext bound to the request's language."""
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        extensions=["jinja2.ext.i18n"],
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # The callables read the per-request language from a context variable,
    # so concurrent requests in different languages never mix.
    env.install_gettext_callables(  # type: ignore[attr-defined]
        i18n.gettext, i18n.ngettext, newstyle=True
    )
    env.globals["when"] = i18n.format_when


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


def site_of(request: web.Request) -> Site:
    """The site the request came in under (set by the route binding)."""
    return request[SITE]


def bind_site(handlers: Mapping[SiteKind, Handler], prefix: str) -> Handler:
    """Route handler for a path mounted under ``prefix``: resolves the site first.

    ``handlers`` has one handler per site kind serving this path there (the
    unified and a per-business portal may share a prefix on different hosts);
    the matched site's kind picks it. No matching site: 404.
    """

    async def routed(request: web.Request) -> web.StreamResponse:
        site = request.app[SITES].match(request, handlers.keys(), prefix)
        if site is None:
            raise web.HTTPNotFound()
        request[SITE] = site
        return await handlers[site.kind](request)

    first = next(iter(handlers.values()))
    functools.update_wrapper(routed, first)
    return routed


def page_context(request: web.Request, **values: Any) -> dict[str, Any]:
    """What every template gets: site, language, links to switch language."""
    site = site_of(request)
    lang = i18n.current_lang()
    return {
        "site": site,
        "lang": lang,
        "languages": [
            {"code": code, "name": i18n.LANGUAGE_NAMES[code], "href": f"{request.path}?lang={code}"}
            for code in i18n.SUPPORTED
        ],
        "static": lambda name: site.path(f"/static/{name}"),
        "brand_css": lambda business_id: site.path(f"/brand/{quote(business_id)}.css"),
        "test_mode": site.mode == "test" and site.kind == "business",
        "business": None,
        "nav": None,
        "return_url": None,
        "home_href": None,
        "csrf_token": "",
        "errors": {},
        "logo_url": lambda business: (
            safe_logo_url(business.branding.logo_url) if business is not None else None
        ),
        **values,
    }


def render(
    request: web.Request,
    template: str,
    values: Mapping[str, Any],
    *,
    status: int = 200,
    token_page: bool = False,
) -> web.Response:
    """An HTML page with the portal's security headers."""
    context = page_context(request, **values)
    response = aiohttp_jinja2.render_template(template, request, context, status=status)
    apply_page_headers(
        response, site_of(request), token_page=token_page, form_targets=_form_targets(request)
    )
    lang_to_set = request.get(_LANG_COOKIE_VALUE)
    if lang_to_set:
        response.set_cookie(
            i18n.LANG_COOKIE,
            lang_to_set,
            path="/",
            secure=True,
            httponly=True,
            samesite="Lax",
            max_age=365 * 24 * 3600,
        )
    return response


def render_form(
    request: web.Request,
    template: str,
    values: Mapping[str, Any],
    *,
    status: int = 200,
    token_page: bool = False,
) -> web.Response:
    """A page with a login-style form: carries (and sets) the double-submit token."""
    token, new = login_csrf_token(request)
    response = render(
        request, template, {**values, "csrf_token": token}, status=status, token_page=token_page
    )
    if new:
        set_login_csrf_cookie(response, token)
    return response


def redirect(location: str, *, token_page: bool = False) -> web.Response:
    """A 303 after a POST (or to the sign-in page), with the page headers."""
    response = web.Response(status=303, headers={"Location": location})
    apply_page_headers(response, None, token_page=token_page)
    return response


_LANG_COOKIE_VALUE = web.RequestKey("lang_cookie_value", str)


def _form_targets(request: web.Request) -> tuple[str, ...]:
    # Form POSTs end in redirects to our own sites (possibly other hosts).
    return tuple(dict.fromkeys(s.origin for s in request.app[SITES].all()))


def _activate_language(
    request: web.Request, business_locale: str | None, customer_locale: str | None = None
) -> None:
    lang, set_cookie = i18n.negotiate(request, business_locale, customer_locale)
    i18n.activate(request.app[CATALOGS], lang)
    if set_cookie:
        request[_LANG_COOKIE_VALUE] = lang


def error_page(request: web.Request, status: int, detail: str | None = None) -> web.Response:
    """A calm page for 404/429/503/500 in the request's language (``detail``: translated)."""
    if SITE not in request:
        # No portal site matched: plain text, still with the page headers.
        response = web.Response(status=status, text=f"{status}", content_type="text/plain")
        apply_page_headers(response, None)
        return response
    response = render(request, "error.html", {"status": status, "detail": detail}, status=status)
    if status == 429:
        response.headers["Retry-After"] = "900"
    if status == 503:
        response.headers["Retry-After"] = "5"
    return response


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
        _activate_language(request, business_locale)
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
            _activate_language(request, business.locale, session.customer_preferred_locale)
            context = PortalContext(
                site=site, business=business, session=session, session_secret=secret
            )
            return await handler(request, context)

        _activate_language(request, None)
        business = (
            await _business_or_none(request, business_id)
            if valid_business_id(business_id)
            else None
        )
        if business is not None:
            _activate_language(request, business.locale)
        return await _guarded(request, run)  # type: ignore[no-any-return]

    return wrapper


def unified_page(handler: UnifiedHandler) -> Handler:
    """Only a signed-in unified session."""

    @functools.wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        site = site_of(request)
        _activate_language(request, None)

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


async def read_form(request: web.Request) -> dict[str, str]:
    """A urlencoded form as plain strings (the last value of a repeated field is ignored)."""
    if request.content_type not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        raise web.HTTPBadRequest()
    data = await request.post()
    return {key: value for key, value in data.items() if isinstance(value, str)}


def portal_error_page(request: web.Request, status: int) -> web.Response | None:
    """An HTML error page for an unknown URL under a portal prefix (None elsewhere).

    The merchant API keeps its JSON problems; a browser that mistypes a portal
    URL gets a page in its language.
    """
    if SITE not in request:
        site = request.app[SITES].for_unrouted(request)
        if site is None:
            return None
        request[SITE] = site
    _activate_language(request, None)
    return error_page(request, status if status in (404, 405) else 400)
