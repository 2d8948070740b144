"""The unified portal: one verified email, every business where it is a customer.

Live mode only. The accounts page lists what auth returns for the session's
email (nothing of any other email can appear); "Open" enters a per-business
portal without signing in again: auth mints a one-time hand-off token bound to
this browser and the browser carries it to the live site
(``{live}/handoff/{token}``, see :mod:`gateway.web.handoff`), which sets its
own ``__Host-`` cookie, so the unified and live portals can be different hosts.
"""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web
from billing.auth.v1 import portal_access_pb2
from billing_kit.errors import NotFound, PermissionDenied

from gateway.keys import PORTAL_STUB, SITES
from gateway.web.audiences import UnifiedContext, unified_page
from gateway.web.forms import read_form
from gateway.web.portal import end_session
from gateway.web.rendering import error_page, redirect, render
from gateway.web.security import (
    CSRF_FIELD,
    UNIFIED_COOKIE,
    clear_cookie,
    tokens_match,
)
from gateway.web.sites import valid_business_id


@unified_page
async def accounts_page(request: web.Request, context: UnifiedContext) -> web.StreamResponse:
    """``GET /``: every business where the verified email is a customer."""
    reply = await request.app[PORTAL_STUB].ListUnifiedAccounts(
        portal_access_pb2.ListUnifiedAccountsRequest(session_secret=context.session_secret),
    )
    accounts = [
        {
            "business": account.business,
            "customer": account.customer,
            "open_action": context.site.path(f"/open/{account.business.business_id}"),
        }
        for account in reply.accounts
    ]
    return render(
        request,
        "unified_accounts.html",
        {
            "accounts": accounts,
            "email": context.session.email,
            "csrf_token": context.session.csrf_token,
            "logout_action": context.site.path("/logout"),
            "subscriptions_href": context.site.path("/subscriptions"),
            "payments_href": context.site.path("/payments"),
            "license_keys_href": context.site.path("/license-keys"),
        },
    )


async def unified_home_redirect(request: web.Request) -> web.StreamResponse:
    """``GET {prefix}`` without the trailing slash."""
    return redirect(request.app[SITES].unified.url("/"))


@unified_page
async def open_business(request: web.Request, context: UnifiedContext) -> web.StreamResponse:
    """``POST /open/{business_id}``: start a hand-off to the live site (CSRF-checked).

    The live site first binds this browser (``{live}/handoff/begin/…``, see
    :mod:`gateway.web.handoff`), then sends it back to :func:`open_bound`.
    No cookie is set here: the live host sets its own.
    """
    form = await read_form(request)
    if not tokens_match(context.session.csrf_token, form.get(CSRF_FIELD)):
        return error_page(request, 400)
    business_id = request.match_info["business_id"]
    if not valid_business_id(business_id):
        return error_page(request, 404)
    # Built from our own live base URL, never from Host.
    live = request.app[SITES].live
    return redirect(live.url(f"/handoff/begin/{business_id}"))


@unified_page
async def open_bound(request: web.Request, context: UnifiedContext) -> web.StreamResponse:
    """``GET /open/{business_id}/bound?binding=…``: a one-time hand-off for this browser.

    ``binding`` is the value the live site just put in this browser's cookie;
    auth binds the hand-off to it (and refuses a malformed one), so only this
    browser can spend the token. The business must be one of the session
    email's live accounts (else 404). Then 303 to ``{live}/handoff/{token}``.
    """
    business_id = request.match_info["business_id"]
    if not valid_business_id(business_id):
        return error_page(request, 404)
    try:
        reply = await request.app[PORTAL_STUB].OpenBusinessFromUnified(
            portal_access_pb2.OpenBusinessFromUnifiedRequest(
                session_secret=context.session_secret,
                business_id=business_id,
                browser_binding=request.query.get("binding", ""),
            ),
        )
    except (NotFound, PermissionDenied):
        # Not a business of this email: it does not exist for this session.
        return error_page(request, 404)
    # The token must not leak through a Referer header, hence the token-page headers.
    live = request.app[SITES].live
    return redirect(live.url(f"/handoff/{quote(reply.handoff_token, safe='')}"), token_page=True)


@unified_page
async def unified_logout(request: web.Request, context: UnifiedContext) -> web.StreamResponse:
    """``POST /logout``: end the unified session."""
    form = await read_form(request)
    if not tokens_match(context.session.csrf_token, form.get(CSRF_FIELD)):
        return error_page(request, 400)
    await end_session(request, context.session_secret)
    response = redirect(context.site.url("/login?signed_out=1"))
    clear_cookie(response, UNIFIED_COOKIE)
    return response
