"""What every page of the hosted listener shares: context, CSRF tokens, rendering with
its CSP, branding, the brand stylesheet and the access-log / security-headers middleware.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import jinja2
from aiohttp import web
from billing_kit.clock import Clock
from billing_kit.colors import COLOR_RE, accent_ink, contrast_text
from yarl import URL

from payments.charges.service import ChargesService
from payments.hosted.models import PaymentSession
from payments.hosted.service import HostedPageService
from payments.hosted.texts import Texts

log = logging.getLogger("payments.hosted.access")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class PageContext:
    """What the handlers share."""

    hosted: HostedPageService
    charges: ChargesService
    secret: bytes
    clock: Clock
    base_path: str
    texts: Texts
    templates: jinja2.Environment


PAGE = web.AppKey("hosted_page", PageContext)


def csrf_token(secret: bytes, kind: str, key: str) -> str:
    """A form token bound to one session (or challenge) id."""
    return hmac.new(secret, f"csrf:{kind}:{key}".encode(), hashlib.sha256).hexdigest()


def csrf_ok(secret: bytes, kind: str, key: str, sent: object) -> bool:
    return isinstance(sent, str) and hmac.compare_digest(csrf_token(secret, kind, key), sent)


def origin_of(url: str) -> str:
    parsed = URL(url)
    return str(parsed.origin()) if parsed.is_absolute() else ""


def render(
    request: web.Request,
    template: str,
    *,
    language: str,
    status: int = 200,
    form_target: str = "",
    **values: Any,
) -> web.Response:
    page = request.app[PAGE]
    gettext = page.texts.for_language(language).gettext

    def translate(message: str, **values: str) -> str:
        # Values are filled in after translation, as gettext expects; Jinja escapes the result.
        text = gettext(message)
        return text % values if values else text

    html = page.templates.get_template(template).render(
        _=translate,
        lang=language,
        base_path=page.base_path,
        **values,
    )
    response = web.Response(text=html, status=status, content_type="text/html")
    extra = f" {form_target}" if form_target else ""
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'self'; img-src 'self' https:; "
        f"form-action 'self'{extra}; frame-ancestors 'none'; base-uri 'none'"
    )
    return response


def branding_values(session: PaymentSession | None) -> dict[str, Any]:
    if session is None:
        return {"business_name": "", "accent": "", "logo_url": "", "test_mode": True}
    return {
        "business_name": session.branding.business_name,
        "accent": session.branding.accent_color.upper(),
        "logo_url": session.branding.logo_url,
        "test_mode": session.mode == "test",
    }


def message_page(
    request: web.Request,
    session: PaymentSession | None,
    language: str,
    status: int,
    heading: str,
    message: str,
    return_url: str = "",
) -> web.Response:
    gettext = request.app[PAGE].texts.for_language(language).gettext
    return render(
        request,
        "message.html",
        language=language,
        status=status,
        heading=gettext(heading),
        message=gettext(message),
        return_url=return_url,
        **branding_values(session),
    )


async def brand_css(request: web.Request) -> web.StreamResponse:
    """``GET /brand/{rrggbb}.css``: the accent as CSS variables (cacheable, no personal data)."""
    color = "#" + request.match_info["color"].upper()
    if not COLOR_RE.match(color):
        raise web.HTTPNotFound(text="unknown colour")
    css = (
        ":root {"
        f" --accent: {color}; --accent-contrast: {contrast_text(color)};"
        f" --accent-ink: {accent_ink(color)}; }}\n"
    )
    response = web.Response(text=css, content_type="text/css")
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response


@web.middleware
async def access_log_and_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Log the route template and status only (never the path, query or body); set safe headers."""
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
    except web.HTTPException as exc:
        status = exc.status
        secure_headers(exc)
        raise
    finally:
        route = (
            request.match_info.route.resource.canonical
            if request.match_info.route.resource
            else "unmatched"
        )
        log.info(
            "%s %s %s",
            request.method,
            route,
            status,
            extra={
                "http_route": route,
                "http_status": status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            },
        )
    secure_headers(response)
    return response


def secure_headers(response: web.StreamResponse) -> None:
    response.headers.setdefault(
        "Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Server"] = "payments"
    if "Cache-Control" not in response.headers:
        response.headers["Cache-Control"] = "no-store"
