"""The live end of the unified portal's hand-off: ``GET {live}/handoff/{token}``.

The unified portal and the live per-business portal may be different hosts,
and a ``__Host-`` cookie can only be set by the host it belongs to. So "Open"
on the unified portal only asks auth for a one-time hand-off token and
redirects here; this page spends it (auth: ``ConsumeHandoffToken``, live mode,
hand-off purpose only) and sets the business cookie on the live host.

Spending on GET is deliberate and safe here: the token never travels in an
email (no mail scanner prefetches it), it lives two minutes and is bound to
the unified session, like an OAuth authorization code. Every answer carries
``Referrer-Policy: no-referrer`` and ``Cache-Control: no-store`` so the token
leaks neither to the next page's origin nor into a cache.
"""

from __future__ import annotations

from aiohttp import web
from billing.auth.v1 import portal_access_pb2
from billing_kit.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Reason,
)
from billing_kit.scoping import mode_to_proto

from gateway.keys import PORTAL_STUB, SITES
from gateway.web.links import TOKEN_RE, cookie_max_age
from gateway.web.pages import public_page, redirect, render, site_of
from gateway.web.security import business_cookie_name, set_session_cookie
from gateway.web.sites import valid_business_id

_GONE_REASONS = {Reason.TOKEN_USED: "used", Reason.TOKEN_EXPIRED: "expired"}


def handoff_problem(request: web.Request, state: str) -> web.Response:
    """Used (410), expired (410) or unknown (404): say so, link back to the unified portal."""
    return render(
        request,
        "handoff_problem.html",
        {"state": state, "unified_href": request.app[SITES].unified.url("/")},
        status=404 if state == "unknown" else 410,
        token_page=True,
    )


@public_page
async def consume_handoff(request: web.Request) -> web.StreamResponse:
    """``GET /handoff/{token}``: spend the hand-off, set the live business cookie, enter."""
    site = site_of(request)
    if site.mode != "live":
        # Hand-offs exist only into the live portal; the test site has no such page.
        raise web.HTTPNotFound()
    token = request.match_info["token"]
    if not TOKEN_RE.match(token) or not token.startswith("cpt_"):
        return handoff_problem(request, "unknown")
    try:
        reply = await request.app[PORTAL_STUB].ConsumeHandoffToken(
            portal_access_pb2.ConsumeHandoffTokenRequest(token=token, mode=mode_to_proto("live")),
        )
    except FailedPrecondition as exc:
        return handoff_problem(request, _GONE_REASONS.get(exc.reason, "used"))
    except (NotFound, PermissionDenied, InvalidArgument):
        return handoff_problem(request, "unknown")
    session = reply.session
    business_id = session.business_id
    if (
        session.kind != portal_access_pb2.SESSION_KIND_BUSINESS
        or session.mode != mode_to_proto("live")
        or not valid_business_id(business_id)
    ):
        return handoff_problem(request, "unknown")
    response = redirect(site.url(f"/b/{business_id}/"), token_page=True)
    set_session_cookie(
        response,
        business_cookie_name("live", business_id),
        reply.session_secret,
        max_age=cookie_max_age(session),
    )
    return response
