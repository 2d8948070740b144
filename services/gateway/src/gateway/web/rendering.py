"""Rendering portal pages: templates, the request's site and language, error pages.

Every page goes through :func:`render` (or :func:`render_form` for sign-in
style forms with a double-submit CSRF token), which adds the portal's
security headers. Which site a request belongs to (live, test, unified) is
resolved once by :func:`bind_site`; handlers read it with :func:`site_of`.
Who may see a page is declared with the decorators of
:mod:`gateway.web.audiences`.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp_jinja2
import jinja2
from aiohttp import web

from gateway.keys import CATALOGS, SETTINGS, SITES
from gateway.web import i18n
from gateway.web.branding import safe_logo_url
from gateway.web.security import (
    apply_page_headers,
    login_csrf_token,
    set_login_csrf_cookie,
)
from gateway.web.sites import Site, SiteKind

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


def language_links() -> list[dict[str, str]]:
    """Links that show the current page in each language.

    A query-only reference (``?lang=it``) resolves to the page's own URL on
    its own origin. Repeating the request path instead would let a crafted
    URL such as ``/%2F%2Fevil.example`` turn the link into ``//evil.example``,
    which browsers follow to another host.
    """
    return [
        {"code": code, "name": i18n.LANGUAGE_NAMES[code], "href": f"?lang={code}"}
        for code in i18n.SUPPORTED
    ]


def page_context(request: web.Request, **values: Any) -> dict[str, Any]:
    """What every template gets: site, language, links to switch language."""
    site = site_of(request)
    lang = i18n.current_lang()
    return {
        "site": site,
        "lang": lang,
        "languages": language_links(),
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
    # Form POSTs end in redirects to our own sites (possibly other hosts), and
    # the billing forms to the payments service's hosted card / 3-D Secure page.
    origins = [s.origin for s in request.app[SITES].all()]
    payments_page = request.app[SETTINGS].payments_page_url
    if payments_page:
        parts = urlsplit(payments_page)
        origins.append(f"{parts.scheme}://{parts.netloc}")
    return tuple(dict.fromkeys(origins))


def activate_language(
    request: web.Request, business_locale: str | None, customer_locale: str | None = None
) -> None:
    """Negotiate and activate the request's language (see :func:`i18n.negotiate`)."""
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
    activate_language(request, None)
    return error_page(request, status if status in (404, 405) else 400)
