"""The signed-in per-business portal: home, the section shell, logout.

Subscriptions and payment methods have their own pages (web/subscriptions.py,
web/payment_methods.py); invoices and license keys are filled by later issues
and render the branded shell with an empty state until then.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler
from billing.auth.v1 import portal_access_pb2
from billing_kit.errors import FailedPrecondition, NotFound, Unauthenticated

from gateway.keys import PORTAL_STUB, SESSIONS
from gateway.web.audiences import PortalContext, portal_page, portal_shell
from gateway.web.forms import read_form
from gateway.web.rendering import error_page, redirect, render, site_of
from gateway.web.security import CSRF_FIELD, business_cookie_name, clear_cookie, tokens_match

# The sections that are still an empty shell.
SECTIONS = ("invoices",)


@portal_page
async def portal_home(request: web.Request, context: PortalContext) -> web.StreamResponse:
    """``GET /b/{business_id}/``: a welcome with the sections as cards."""
    return render(request, "portal_home.html", portal_shell(context, ""))


async def portal_home_redirect(request: web.Request) -> web.StreamResponse:
    """``GET /b/{business_id}``: the home lives at the trailing slash."""
    return redirect(site_of(request).url(f"/b/{request.match_info['business_id']}/"))


def section_page(section: str) -> Handler:
    """The handler of one section of the shell."""

    @portal_page
    async def show_section(request: web.Request, context: PortalContext) -> web.StreamResponse:
        return render(request, "portal_section.html", portal_shell(context, section))

    show_section.__name__ = f"show_{section.replace('-', '_')}"
    return show_section


@portal_page
async def logout(request: web.Request, context: PortalContext) -> web.StreamResponse:
    """``POST /b/{business_id}/logout``: end the session in auth and forget the cookie."""
    form = await read_form(request)
    if not tokens_match(context.session.csrf_token, form.get(CSRF_FIELD)):
        return error_page(request, 400)
    await end_session(request, context.session_secret)
    response = redirect(context.site.url(f"/login/{context.business_id}?signed_out=1"))
    clear_cookie(response, business_cookie_name(context.site.mode, context.business_id))
    return response


async def end_session(request: web.Request, secret: str) -> None:
    """End a session in auth (already ended is fine) and drop it from the cache now."""
    request.app[SESSIONS].forget(secret)
    try:
        await request.app[PORTAL_STUB].EndSession(
            portal_access_pb2.EndSessionRequest(session_secret=secret),
        )
    except (NotFound, FailedPrecondition, Unauthenticated):
        pass
