"""One-time links: ``/link/{token}`` (sign-in and magic links) on every site.

GET only shows a confirm page, so mail scanners that prefetch links cannot use
them up; the POST from that page consumes the token (atomically, in auth) and
starts the session. A used, expired or unknown link gets a clear page; for a
used or expired one it offers to email a fresh link to the address on file.
Every token page is sent with ``Referrer-Policy: no-referrer`` and
``Cache-Control: no-store``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from typing import TypeAlias

from aiohttp import web
from billing.auth.v1 import auth_pb2, portal_access_pb2
from billing_kit.clock import utc_now
from billing_kit.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from billing_kit.scoping import mode_to_proto

from gateway.keys import BUSINESSES, PORTAL_STUB
from gateway.web import i18n
from gateway.web.audiences import public_page
from gateway.web.forms import read_form
from gateway.web.rendering import redirect, render, render_form, site_of
from gateway.web.security import (
    UNIFIED_COOKIE,
    business_cookie_name,
    check_login_csrf,
    client_key,
    set_session_cookie,
)
from gateway.web.sites import Site

Purpose: TypeAlias = portal_access_pb2.TokenPurpose.ValueType
State: TypeAlias = portal_access_pb2.TokenState.ValueType

_BUSINESS_PURPOSES: set[Purpose] = {
    portal_access_pb2.TOKEN_PURPOSE_SIGN_IN,
    portal_access_pb2.TOKEN_PURPOSE_MAGIC_LINK,
}
_UNIFIED_PURPOSES: set[Purpose] = {portal_access_pb2.TOKEN_PURPOSE_UNIFIED_SIGN_IN}
_EMAIL_CHANGE_PURPOSES: set[Purpose] = {portal_access_pb2.TOKEN_PURPOSE_EMAIL_CHANGE}


@dataclass(frozen=True, slots=True)
class LinkState:
    """What the page may say about a token opened on this site."""

    state: State
    business_id: str


def _purposes_for(site: Site, email_change: bool) -> set[Purpose]:
    if email_change:
        return _EMAIL_CHANGE_PURPOSES
    return _UNIFIED_PURPOSES if site.kind == "unified" else _BUSINESS_PURPOSES


async def describe(request: web.Request, token: str, *, email_change: bool = False) -> LinkState:
    """The token's state as seen from this site: another site's token is UNKNOWN."""
    # Whether the segment is shaped like a token at all is auth's call (UNKNOWN).
    unknown = LinkState(portal_access_pb2.TOKEN_STATE_UNKNOWN, "")
    site = site_of(request)
    try:
        reply = await request.app[PORTAL_STUB].DescribeToken(
            portal_access_pb2.DescribeTokenRequest(token=token),
        )
    except (NotFound, InvalidArgument, PermissionDenied):
        return unknown
    if reply.state == portal_access_pb2.TOKEN_STATE_UNKNOWN:
        return unknown
    if reply.purpose not in _purposes_for(site, email_change):
        return unknown
    if reply.mode != mode_to_proto(site.mode):
        # A test-mode link opened under the live base URL (or the reverse) does not exist here.
        return unknown
    return LinkState(reply.state, reply.business_id)


async def _business_for(request: web.Request, business_id: str) -> auth_pb2.Business | None:
    if not business_id:
        return None
    return await request.app[BUSINESSES].get(business_id)


async def link_problem(
    request: web.Request, token: str, link: LinkState, *, email_change: bool = False
) -> web.Response:
    """The used / expired / unknown page (410 or 404).

    Sign-in links offer a fresh link by email; an email-change link does not
    (the customer asks again from the profile page).
    """
    business = await _business_for(request, link.business_id)
    gone = link.state in (
        portal_access_pb2.TOKEN_STATE_USED,
        portal_access_pb2.TOKEN_STATE_EXPIRED,
    )
    offer_fresh = gone and not email_change
    states: dict[State, str] = {
        portal_access_pb2.TOKEN_STATE_USED: "used",
        portal_access_pb2.TOKEN_STATE_EXPIRED: "expired",
    }
    state = states.get(link.state, "unknown")
    site = site_of(request)
    login_href = None
    if site.kind == "unified":
        login_href = site.url("/login")
    elif business is not None:
        login_href = site.url(f"/login/{business.business_id}")
    return render_form(
        request,
        "link_problem.html",
        {
            "business": business,
            "state": state,
            "offer_fresh": offer_fresh,
            "fresh_action": site.path(f"/link/{token}/fresh"),
            "login_href": login_href,
            "email_change": email_change,
        },
        status=410 if gone else 404,
        token_page=True,
    )


@public_page
async def confirm_link_page(request: web.Request) -> web.StreamResponse:
    """``GET /link/{token}``: a confirm button, never a consumption."""
    return await _confirm_page(request)


async def _confirm_page(request: web.Request) -> web.Response:
    token = request.match_info["token"]
    link = await describe(request, token)
    if link.state != portal_access_pb2.TOKEN_STATE_VALID:
        return await link_problem(request, token, link)
    business = await _business_for(request, link.business_id)
    return render_form(
        request,
        "link_confirm.html",
        {"business": business, "action": site_of(request).path(f"/link/{token}")},
        token_page=True,
    )


def cookie_max_age(session: portal_access_pb2.PortalSession) -> int | None:
    """Seconds until the session's absolute expiry: the cookie never outlives it."""
    if not session.HasField("absolute_expires_at"):
        return None
    remaining = session.absolute_expires_at.ToDatetime(tzinfo=UTC) - utc_now()
    return max(int(remaining.total_seconds()), 0)


@public_page
async def consume_link(request: web.Request) -> web.StreamResponse:
    """``POST /link/{token}``: consume the token, set the session cookie, enter the portal."""
    site = site_of(request)
    token = request.match_info["token"]
    form = await read_form(request)
    if not check_login_csrf(request, form):
        # A cross-site POST (or a lost cookie): show the confirm page again.
        return await _confirm_page(request)
    link = await describe(request, token)
    if link.state != portal_access_pb2.TOKEN_STATE_VALID:
        return await link_problem(request, token, link)
    try:
        reply = await request.app[PORTAL_STUB].ConsumeToken(
            portal_access_pb2.ConsumeTokenRequest(token=token, mode=mode_to_proto(site.mode)),
        )
    except (NotFound, FailedPrecondition, PermissionDenied, InvalidArgument):
        # Another tab (or a scanner's POST) won the race: show why, offer a new link.
        return await link_problem(request, token, await describe(request, token))
    session = reply.session
    if site.kind == "unified":
        response = redirect(site.url("/"), token_page=True)
        set_session_cookie(
            response, UNIFIED_COOKIE, reply.session_secret, max_age=cookie_max_age(session)
        )
        return response
    business_id = session.business_id
    # Auth checked the path when the link was made; site.url keeps it on this site.
    target = reply.next_path or f"/b/{business_id}/"
    response = redirect(site.url(target), token_page=True)
    set_session_cookie(
        response,
        business_cookie_name(site.mode, business_id),
        reply.session_secret,
        max_age=cookie_max_age(session),
    )
    return response


@public_page
async def request_fresh_link(request: web.Request) -> web.StreamResponse:
    """``POST /link/{token}/fresh``: email a new link to the address on file."""
    token = request.match_info["token"]
    form = await read_form(request)
    if not check_login_csrf(request, form):
        return await link_problem(request, token, await describe(request, token))
    link = await describe(request, token)
    if link.state == portal_access_pb2.TOKEN_STATE_UNKNOWN:
        return await link_problem(request, token, link)
    await request.app[PORTAL_STUB].RequestFreshLink(
        portal_access_pb2.RequestFreshLinkRequest(
            token=token,
            client_key=client_key(request),
            locale=i18n.current_lang(),
            locale_explicit=i18n.explicit_choice(request) is not None,
        ),
    )
    business = await _business_for(request, link.business_id)
    kind = "unified" if site_of(request).kind == "unified" else "fresh"
    return render(
        request, "check_email.html", {"business": business, "kind": kind}, token_page=True
    )
