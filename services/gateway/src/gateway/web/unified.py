"""The unified portal: one verified email, every business where it is a customer.

Live mode only. The accounts page lists what auth returns for the session's
email (nothing of any other email can appear); "Open" starts a per-business
session from the unified one, without signing in again.
"""

from __future__ import annotations

from aiohttp import web
from billing.auth.v1 import portal_access_pb2
from billing_kit.errors import NotFound, PermissionDenied

from gateway.keys import PORTAL_STUB, SETTINGS, SITES
from gateway.rpc import rpc
from gateway.web.links import cookie_max_age
from gateway.web.pages import (
    UnifiedContext,
    error_page,
    read_form,
    redirect,
    render,
    unified_page,
)
from gateway.web.portal import end_session
from gateway.web.security import (
    CSRF_FIELD,
    UNIFIED_COOKIE,
    business_cookie_name,
    clear_cookie,
    set_session_cookie,
    tokens_match,
)
from gateway.web.sites import valid_business_id


@unified_page
async def accounts_page(request: web.Request, context: UnifiedContext) -> web.StreamResponse:
    """``GET /``: every business where the verified email is a customer."""
    reply = await rpc(
        request.app[PORTAL_STUB].ListUnifiedAccounts(
            portal_access_pb2.ListUnifiedAccountsRequest(session_secret=context.session_secret),
            timeout=request.app[SETTINGS].backend_timeout_seconds,
        )
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
        },
    )


async def unified_home_redirect(request: web.Request) -> web.StreamResponse:
    """``GET {prefix}`` without the trailing slash."""
    return redirect(request.app[SITES].unified.url("/"))


@unified_page
async def open_business(request: web.Request, context: UnifiedContext) -> web.StreamResponse:
    """``POST /open/{business_id}``: a per-business live session, then that portal."""
    form = await read_form(request)
    if not tokens_match(context.session.csrf_token, form.get(CSRF_FIELD)):
        return error_page(request, 400)
    business_id = request.match_info["business_id"]
    if not valid_business_id(business_id):
        return error_page(request, 404)
    try:
        reply = await rpc(
            request.app[PORTAL_STUB].OpenBusinessFromUnified(
                portal_access_pb2.OpenBusinessFromUnifiedRequest(
                    session_secret=context.session_secret, business_id=business_id
                ),
                timeout=request.app[SETTINGS].backend_timeout_seconds,
            )
        )
    except (NotFound, PermissionDenied):
        # Not a business of this email: it does not exist for this session.
        return error_page(request, 404)
    live = request.app[SITES].live
    response = redirect(live.url(f"/b/{business_id}/"))
    set_session_cookie(
        response,
        business_cookie_name("live", business_id),
        reply.session_secret,
        max_age=cookie_max_age(reply.session),
    )
    return response


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
