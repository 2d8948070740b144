"""Browser-facing security: page headers, cookies, CSRF and the client key.

- Pages load only the gateway's own CSS and JS (no inline script or style), so
  the Content-Security-Policy needs no ``unsafe-inline``; logos may come from
  any https origin.
- Session cookies are ``__Host-`` cookies (Secure, HttpOnly, SameSite=Lax,
  Path=/, no Domain): one per business and mode, one for the unified portal.
- Every form POST carries a CSRF token: the session's (from auth) once signed
  in, else a double-submit cookie (``__Host-csrf``) for the login and link
  forms, which have no session yet.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from ipaddress import IPv4Network, IPv6Network, ip_address

from aiohttp import web

from gateway.keys import SETTINGS
from gateway.web.sites import Mode, Site

CSRF_COOKIE = "__Host-csrf"
CSRF_FIELD = "csrf_token"
UNIFIED_COOKIE = "__Host-cu"
# The live site's per-browser value a unified hand-off is bound to (see web/handoff.py).
HANDOFF_BINDING_COOKIE = "__Host-cp_handoff"
HANDOFF_BINDING_MAX_AGE = 10 * 60
HSTS = "max-age=31536000; includeSubDomains"


def business_cookie_name(mode: Mode, business_id: str) -> str:
    """The per-business session cookie: one browser may hold several businesses."""
    return f"__Host-cp_{mode}_{business_id}"


def content_security_policy(form_targets: tuple[str, ...] = ()) -> str:
    """The pages' CSP: own assets only, https logos, forms only to our sites."""
    form_action = " ".join(("'self'", *form_targets))
    return "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' https: data:",
            "font-src 'self'",
            "connect-src 'self'",
            f"form-action {form_action}",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        )
    )


def apply_page_headers(
    response: web.StreamResponse,
    site: Site | None,
    *,
    token_page: bool = False,
    form_targets: tuple[str, ...] = (),
) -> None:
    """Headers of every HTML page; token pages never leak their URL or get cached."""
    headers = response.headers
    headers["Content-Security-Policy"] = content_security_policy(form_targets)
    headers["X-Content-Type-Options"] = "nosniff"
    headers["X-Frame-Options"] = "DENY"
    # Pages show personal data: never stored by shared or browser caches.
    headers["Cache-Control"] = "no-store"
    headers["Referrer-Policy"] = "no-referrer" if token_page else "same-origin"
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=(), payment=()"
    if site is not None and site.secure:
        headers["Strict-Transport-Security"] = HSTS


def set_session_cookie(
    response: web.StreamResponse, name: str, value: str, max_age: int | None = None
) -> None:
    """A ``__Host-`` session cookie (Secure, HttpOnly, SameSite=Lax, Path=/)."""
    response.set_cookie(
        name,
        value,
        path="/",
        secure=True,
        httponly=True,
        samesite="Lax",
        max_age=max_age,
    )


def clear_cookie(response: web.StreamResponse, name: str) -> None:
    """Expire a ``__Host-`` cookie (same attributes, or browsers ignore it)."""
    response.set_cookie(name, "", path="/", secure=True, httponly=True, samesite="Lax", max_age=0)


def login_csrf_token(request: web.Request) -> tuple[str, bool]:
    """The double-submit token for forms without a session, and whether it is new."""
    existing = request.cookies.get(CSRF_COOKIE, "")
    if 20 <= len(existing) <= 100 and existing.replace("-", "").replace("_", "").isalnum():
        return existing, False
    return secrets.token_urlsafe(32), True


def handoff_binding(request: web.Request) -> tuple[str, bool]:
    """This browser's hand-off binding value on the live site, and whether it is new.

    Reused while the cookie lives, so two tabs opening two businesses at once
    do not overwrite each other's binding.
    """
    existing = request.cookies.get(HANDOFF_BINDING_COOKIE, "")
    if 32 <= len(existing) <= 100 and existing.replace("-", "").replace("_", "").isalnum():
        return existing, False
    return secrets.token_urlsafe(32), True


def set_login_csrf_cookie(response: web.StreamResponse, token: str) -> None:
    """Store the double-submit token (session cookie: it lives as long as the tab)."""
    set_session_cookie(response, CSRF_COOKIE, token)


def tokens_match(expected: str, submitted: object) -> bool:
    """Constant-time comparison of a CSRF token with what the form sent."""
    if not expected or not isinstance(submitted, str) or not submitted:
        return False
    return hmac.compare_digest(expected.encode(), submitted.encode())


def check_login_csrf(request: web.Request, form: dict[str, str]) -> bool:
    """Double-submit check: the form's token equals the ``__Host-csrf`` cookie."""
    return tokens_match(request.cookies.get(CSRF_COOKIE, ""), form.get(CSRF_FIELD))


def _is_trusted(address: str, trusted: Sequence[IPv4Network | IPv6Network]) -> bool:
    try:
        ip = ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def client_address(request: web.Request, trusted: Sequence[IPv4Network | IPv6Network]) -> str:
    """The client's address: the peer, unless the peer is a trusted proxy.

    Behind trusted proxies it is the right-most X-Forwarded-For hop that is not
    itself a trusted proxy: hops further left were written by the client and
    can be forged, the right-most untrusted one was seen by our own proxy.

    Why not aiohttp-remotes: its ``XForwardedStrict`` takes the trusted proxies
    hop by hop (a chain of exactly that shape, anything else a 400) and
    ``XForwardedRelaxed`` believes exactly one hop; the ingress here is "any
    number of proxies from these networks", which is this loop. It only feeds
    the rate-limit key: ``request.remote`` stays the peer.
    """
    peer = request.remote or "unknown"
    if not trusted or not _is_trusted(peer, trusted):
        return peer
    hops = [
        hop.strip()
        for header in request.headers.getall("X-Forwarded-For", [])
        for hop in header.split(",")
        if hop.strip()
    ]
    for hop in reversed(hops):
        if not _is_trusted(hop, trusted):
            return hop
    return hops[0] if hops else peer


def client_key(request: web.Request) -> str:
    """An opaque per-client key for auth's rate limits (a hash, never the address)."""
    remote = client_address(request, request.app[SETTINGS].trusted_proxy_networks)
    return hashlib.sha256(f"client:{remote}".encode()).hexdigest()[:32]
