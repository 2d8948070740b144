"""Per-business brand stylesheet: the accent colour as CSS variables.

Pages carry ``data-brand="{business_id}"`` and link this stylesheet, so the
colour never needs an inline style (the CSP forbids them). The colour comes
from auth and is used only when it is a valid ``#RRGGBB``.
"""

from __future__ import annotations

from aiohttp import web
from billing_kit.colors import (
    COLOR_RE,
    accent_ink,
    contrast_text,
    tint,
)

from gateway.keys import BUSINESSES
from gateway.web.sites import valid_business_id

DEFAULT_ACCENT = "#4F46E5"


def accent_color(value: str | None) -> str:
    """A validated ``#RRGGBB`` (upper case) or the default accent."""
    return value.upper() if value and COLOR_RE.match(value) else DEFAULT_ACCENT


def brand_stylesheet(business_id: str, color: str | None) -> str:
    """The CSS rules for one business."""
    accent = accent_color(color)
    return (
        f'[data-brand="{business_id}"] {{\n'
        f"  --accent: {accent};\n"
        f"  --accent-contrast: {contrast_text(accent)};\n"
        f"  --accent-ink: {accent_ink(accent)};\n"
        f"  --accent-soft: {tint(accent, 0.10)};\n"
        f"  --accent-border: {tint(accent, 0.35)};\n"
        "}\n"
    )


async def brand_css(request: web.Request) -> web.StreamResponse:
    """``GET /brand/{business_id}.css`` (public: branding is shown on the login page)."""
    business_id = request.match_info["business_id"]
    business = (
        await request.app[BUSINESSES].get(business_id) if valid_business_id(business_id) else None
    )
    if business is None:
        return web.Response(status=404, text="", content_type="text/css")
    response = web.Response(
        text=brand_stylesheet(business_id, business.branding.primary_color),
        content_type="text/css",
    )
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


def safe_logo_url(url: str | None) -> str | None:
    """A logo URL the page may show: https only (or our own path), no odd characters."""
    if not url or len(url) > 2048 or any(ch in url for ch in "\"'<>`\\ \r\n\t"):
        return None
    if url.startswith("https://") or (url.startswith("/") and not url.startswith("//")):
        return url
    return None
