"""Whatever colour a merchant picks, text in and on it stays readable (WCAG AA, 4.5:1)."""

from __future__ import annotations

import itertools

import pytest
from billing_kit.colors import accent_ink, contrast_ratio, contrast_text, tint

DEFAULT_ACCENT = "#4F46E5"  # the portal's own accent

# Every channel in steps of 0x11 would be 4096 colours; 0x22 steps (512) cover the
# space well, plus the mid-greys where neither white nor soft-dark text is enough.
GRID = [
    f"#{r:02X}{g:02X}{b:02X}" for r, g, b in itertools.product(range(0, 256, 0x22), repeat=3)
] + ["#777777", "#767676", "#7A7A7A", "#FFD43B", "#FFE066"]


class TestContrastRatio:
    def test_known_values(self) -> None:
        assert contrast_ratio("#000000", "#FFFFFF") == pytest.approx(21.0)
        assert contrast_ratio("#FFFFFF", "#FFFFFF") == pytest.approx(1.0)
        assert contrast_ratio("#767676", "#FFFFFF") == pytest.approx(4.54, abs=0.01)


class TestTextOnTheAccent:
    def test_button_text_reaches_aa(self) -> None:
        failing = [c for c in GRID if contrast_ratio(c, contrast_text(c)) < 4.5]
        assert not failing

    def test_mid_grey_gets_black_when_soft_dark_is_not_enough(self) -> None:
        # White reads at 4.48:1 and #111827 at 3.97:1 on this grey: both fail AA.
        assert contrast_text("#777777") == "#000000"

    def test_usual_colours_keep_their_text(self) -> None:
        assert contrast_text(DEFAULT_ACCENT) == "#FFFFFF"
        assert contrast_text("#FFE066") == "#111827"


class TestAccentAsText:
    def test_links_in_the_brand_colour_reach_aa(self) -> None:
        failing = [
            (color, accent_ink(color), surface)
            for color in GRID
            for surface in ("#FFFFFF", "#F6F8FA", tint(color, 0.10))
            if contrast_ratio(accent_ink(color), surface) < 4.5
        ]
        assert not failing

    def test_a_readable_accent_is_kept(self) -> None:
        assert accent_ink(DEFAULT_ACCENT) == DEFAULT_ACCENT

    def test_a_pale_accent_is_darkened_not_replaced(self) -> None:
        ink = accent_ink("#FFD43B")
        assert ink != "#000000"
        r, g, b = (int(ink[i : i + 2], 16) for i in (1, 3, 5))
        assert r > g > b  # still a yellow-orange hue
