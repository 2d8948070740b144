"""Colour maths for merchant branding: WCAG contrast, readable text on an accent.

Shared by the portal (the gateway's brand stylesheet) and the emails
(notifications' buttons), so a merchant's colour reads the same way in both.
"""

from __future__ import annotations

import re

COLOR_RE = re.compile(r"^#[0-9A-Fa-f]{6}$")


def _channels(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def luminance(color: str) -> float:
    """WCAG relative luminance of ``#RRGGBB`` (0 = black, 1 = white)."""

    def linear(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.03928 else ((s + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in _channels(color))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(first: str, second: str) -> float:
    """WCAG contrast ratio of two ``#RRGGBB`` colours (1 to 21)."""
    lighter, darker = sorted((luminance(first), luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


# WCAG 2.x AA for normal-size text (buttons and links are normal size here).
TEXT_CONTRAST = 4.5
DARK_TEXT = "#111827"
# The light surfaces accent-coloured text sits on: cards, the page, a tinted tile.
_LIGHT_SURFACES = ("#FFFFFF", "#F6F8FA")


def contrast_text(color: str) -> str:
    """White or dark text, whichever reads better on ``color``; always at least 4.5:1.

    The soft dark (``DARK_TEXT``) is preferred, but for mid-tones (luminance
    near 0.18) neither it nor white reaches 4.5:1, so pure black steps in: the
    better of white and black always reaches about 4.58:1.
    """
    on_white, on_dark = contrast_ratio(color, "#FFFFFF"), contrast_ratio(color, DARK_TEXT)
    if max(on_white, on_dark) >= TEXT_CONTRAST:
        return "#FFFFFF" if on_white >= on_dark else DARK_TEXT
    return "#FFFFFF" if on_white >= contrast_ratio(color, "#000000") else "#000000"


def accent_ink(color: str) -> str:
    """The accent as a text colour on light surfaces: darkened until it reads at 4.5:1.

    A pale brand colour (say yellow) cannot colour a link on white; the hue is
    kept and only the lightness drops, so the brand still shows. A colour that
    already reads well is returned unchanged.
    """
    r, g, b = _channels(color)
    surfaces = (*_LIGHT_SURFACES, tint(color, 0.10))
    for step in range(21):
        keep = 1 - step * 0.05
        ink = f"#{round(r * keep):02X}{round(g * keep):02X}{round(b * keep):02X}"
        if all(contrast_ratio(ink, surface) >= TEXT_CONTRAST for surface in surfaces):
            return ink
    return "#000000"  # unreachable: black on these surfaces is above 18:1


def tint(color: str, amount: float) -> str:
    """``color`` mixed with white (amount 0..1 of the colour kept)."""
    r, g, b = (round(255 - (255 - c) * amount) for c in _channels(color))
    return f"#{r:02X}{g:02X}{b:02X}"
