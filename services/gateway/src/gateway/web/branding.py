"""Per-business brand stylesheet: the accent colour as CSS variables.

Pages carry ``data-brand="{business_id}"`` and link this stylesheet, so the
colour never needs an inline style (the CSP forbids them). The colour comes
from auth and is used only when it is a valid ``#RRGGBB``.
"""

from __future__ import annotations

import re

from aiohttp import web

from gateway.keys import BUSINESSES
from gateway.web.sites import valid_business_id

COLOR_RE = re.compile(r"^#[0-9A-Fa-f]{6}$")
DEFAULT_ACCENT = "#4F46E5"


def accent_color(value: str | None) -> str:
    """A validated ``#RRGGBB`` (upper case) or the default accent."""
    return value.upper() if value and COLOR_RE.match(value) else DEFAULT_ACCENT


def _channels(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def contrast_text(color: str) -> str:
    """Black or white, whichever reads better on ``color`` (WCAG relative luminance)."""

    def linear(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.03928 else ((s + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in _channels(color))
    luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b
    # Contrast against white vs against near-black text.
    return "#FFFFFF" if (1.05 / (luminance + 0.05)) >= ((luminance + 0.05) / 0.05) else "#111827"


def tint(color: str, amount: float) -> str:
    """``color`` mixed with white (amount 0..1 of the colour kept)."""
    r, g, b = (round(255 - (255 - c) * amount) for c in _channels(color))
    return f"#{r:02X}{g:02X}{b:02X}"


def brand_stylesheet(business_id: str, color: str | None) -> str:
    """The CSS rules for one business."""
    accent = accent_color(color)
    return (
        f'[data-brand="{business_id}"] {{\n'
        f"  --accent: {accent};\n"
        f"  --accent-contrast: {contrast_text(accent)};\n"
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
