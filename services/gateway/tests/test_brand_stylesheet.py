"""The brand stylesheet carries readable shades of the merchant's colour."""

from __future__ import annotations

from billing_kit.colors import accent_ink
from gateway.web.branding import brand_stylesheet


def test_the_brand_stylesheet_carries_a_readable_ink_and_contrast_text() -> None:
    css = brand_stylesheet("biz_1", "#ffd43b")
    assert f"--accent-ink: {accent_ink('#FFD43B')};" in css
    assert "--accent-contrast: #111827;" in css
