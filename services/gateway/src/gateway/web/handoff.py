"""The live end of the unified portal's hand-off, bound to the browser that asked.

The unified portal and the live portal may be different hosts, and a
``__Host-`` cookie can only be set by the host it belongs to, so "Open" on the
unified portal cannot set the live session cookie itself. It also must not
hand out a bare link that signs in whoever opens it: an attacker could press
"Open" in their own browser, stop at the redirect and send the link to a
victim, whose browser would then be signed in to the attacker's account
(login CSRF). So the hand-off is bound to the initiating browser:

1. ``POST {unified}/open/{business_id}`` (CSRF-checked) redirects to
   ``GET {live}/handoff/begin/{business_id}``;
2. the live site gives this browser a random binding value in a ``__Host-``
   cookie of its own (:data:`HANDOFF_BINDING_COOKIE`, 10 minutes) and
   redirects back to ``GET {unified}/open/{business_id}/bound?binding=…``;
3. the unified site asks auth for a one-time hand-off token for its signed-in
   session, bound to that value (auth keeps only its hash), and redirects to
   ``GET {live}/handoff/{token}``;
4. this page spends the token with the binding cookie the browser presents
   (auth: ``ConsumeHandoffToken``). Another browser has another value (or
   none): the token is spent, nobody is signed in, and the page says the link
   is not valid.

The binding value travels in one URL, between the live and unified hosts of
the same browser; an attacker who never sees that URL cannot bind a token to
a victim's browser, and cannot plant a ``__Host-`` cookie on the live host.

Spending on GET is deliberate: the token never travels in an email (no mail
scanner prefetches it) and lives two minutes. Every answer carries
``Referrer-Policy: no-referrer`` and ``Cache-Control: no-store`` so the token
leaks neither to the next page's origin nor into a cache.
"""

from __future__ import annotations

from urllib.parse import quote

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
from gateway.web.audiences import public_page
from gateway.web.links import cookie_max_age
from gateway.web.rendering import redirect, render, site_of
from gateway.web.security import (
    HANDOFF_BINDING_COOKIE,
    HANDOFF_BINDING_MAX_AGE,
    business_cookie_name,
    handoff_binding,
    set_session_cookie,
)
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


def _live_only(request: web.Request) -> None:
    if site_of(request).mode != "live":
        # Hand-offs exist only into the live portal; the test site has no such page.
        raise web.HTTPNotFound()


@public_page
async def begin_handoff(request: web.Request) -> web.StreamResponse:
    """``GET /handoff/begin/{business_id}``: bind this browser, back to the unified site."""
    _live_only(request)
    business_id = request.match_info["business_id"]
    if not valid_business_id(business_id):
        raise web.HTTPNotFound()
    binding, new = handoff_binding(request)
    unified = request.app[SITES].unified
    response = redirect(
        unified.url(f"/open/{business_id}/bound?binding={quote(binding)}"), token_page=True
    )
    if new:
        set_session_cookie(
            response, HANDOFF_BINDING_COOKIE, binding, max_age=HANDOFF_BINDING_MAX_AGE
        )
    return response


@public_page
async def consume_handoff(request: web.Request) -> web.StreamResponse:
    """``GET /handoff/{token}``: spend the hand-off in the browser it is bound to, enter."""
    _live_only(request)
    site = site_of(request)
    # A segment that is not a hand-off token is auth's NOT_FOUND (the shape is its rule).
    token = request.match_info["token"]
    try:
        reply = await request.app[PORTAL_STUB].ConsumeHandoffToken(
            portal_access_pb2.ConsumeHandoffTokenRequest(
                token=token,
                mode=mode_to_proto("live"),
                browser_binding=request.cookies.get(HANDOFF_BINDING_COOKIE, ""),
            ),
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
