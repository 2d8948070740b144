"""Unit rules of the portal side: sites and modes, next paths, CSRF, i18n, branding."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from babel.messages.pofile import read_po
from gateway.config import GatewaySettings
from gateway.web import i18n
from gateway.web.branding import accent_color, brand_stylesheet, contrast_text, safe_logo_url
from gateway.web.security import business_cookie_name, content_security_policy, tokens_match
from gateway.web.sites import build_sites
from pydantic import ValidationError

GATEWAY = Path(__file__).resolve().parent.parent


class FakeRequest:
    def __init__(self, host: str) -> None:
        self.host = host


class TestSites:
    def test_defaults_put_each_site_under_its_own_prefix(self) -> None:
        sites = build_sites(
            "http://localhost:8080/live", "http://localhost:8080/test", "http://localhost:8080/all"
        )
        assert (sites.live.mode, sites.live.prefix) == ("live", "/live")
        assert (sites.test.mode, sites.test.prefix) == ("test", "/test")
        assert (sites.unified.kind, sites.unified.mode) == ("unified", "live")
        assert sites.test.url("/link/x") == "http://localhost:8080/test/link/x"
        assert not sites.live.secure

    def test_same_prefix_on_two_hosts_is_told_apart_by_host(self) -> None:
        sites = build_sites(
            "https://portal.example.com/",
            "https://test.portal.example.com",
            "https://portal.example.com/all",
        )
        assert sites.prefixes("business") == [""]
        req: Any = FakeRequest("test.portal.example.com")
        assert sites.match(req, "business", "").mode == "test"  # type: ignore[union-attr]
        req = FakeRequest("PORTAL.example.com")
        assert sites.match(req, "business", "").mode == "live"  # type: ignore[union-attr]
        assert sites.match(FakeRequest("evil.example"), "business", "") is None  # type: ignore[arg-type]
        assert sites.live.secure

    @pytest.mark.parametrize(
        "live,test,unified",
        [
            ("http://localhost/live", "http://localhost/live/", "http://localhost/all"),
            ("http://localhost/live", "http://localhost/test", "http://localhost/live"),
            ("ftp://localhost/live", "http://localhost/test", "http://localhost/all"),
            ("http://localhost/live?x=1", "http://localhost/test", "http://localhost/all"),
            ("http://user@localhost/live", "http://localhost/test", "http://localhost/all"),
        ],
    )
    def test_ambiguous_or_bad_base_urls_stop_the_start(
        self, live: str, test: str, unified: str
    ) -> None:
        with pytest.raises(ValidationError):
            GatewaySettings(
                portal_live_base_url=live, portal_test_base_url=test, unified_base_url=unified
            )


class TestCookiesAndCsrf:
    def test_cookie_names_are_per_mode_and_business(self) -> None:
        assert business_cookie_name("test", "biz_1") == "__Host-cp_test_biz_1"
        assert business_cookie_name("live", "biz_1") != business_cookie_name("test", "biz_1")

    def test_csrf_tokens_compare_exactly(self) -> None:
        assert tokens_match("abc123", "abc123")
        assert not tokens_match("abc123", "abc124")
        assert not tokens_match("", "")
        assert not tokens_match("abc123", None)

    def test_csp_allows_no_inline_code(self) -> None:
        csp = content_security_policy(("http://localhost:8080",))
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert "frame-ancestors 'none'" in csp
        assert "form-action 'self' http://localhost:8080" in csp


class TestBranding:
    def test_only_rrggbb_colours_reach_the_stylesheet(self) -> None:
        assert accent_color("#0a7d5a") == "#0A7D5A"
        assert accent_color("red") == "#4F46E5"
        assert accent_color("#0a7d5a;}") == "#4F46E5"
        assert "--accent: #0A7D5A;" in brand_stylesheet("biz_1", "#0a7d5a")

    def test_text_on_the_accent_stays_readable(self) -> None:
        assert contrast_text("#000000") == "#FFFFFF"
        assert contrast_text("#FFE066") == "#111827"

    def test_logos_must_be_https(self) -> None:
        assert safe_logo_url("https://cdn.example/logo.png") == "https://cdn.example/logo.png"
        assert safe_logo_url("http://cdn.example/logo.png") is None
        assert safe_logo_url('https://x.example/a"onerror="x') is None


class TestLanguage:
    @pytest.mark.parametrize(
        "header,expected",
        [
            ("it-IT,it;q=0.9,en;q=0.8", "it"),
            ("fr-FR,fr;q=0.9,it;q=0.5,en;q=0.4", "it"),
            ("de-DE", None),
            ("en;q=0.2,it;q=0.9", "it"),
            ("it;q=0", None),
            ("IT-it", "it"),
            ("*", None),
            ("zh-Hant-TW,it;q=0.1", "it"),
        ],
    )
    def test_accept_language(self, header: str, expected: str | None) -> None:
        assert i18n.from_accept_language(header) == expected

    def test_italian_catalog_translates_the_product_wording(self) -> None:
        catalogs = i18n.compile_catalogs()
        i18n.activate(catalogs, "it")
        assert i18n.gettext("Save changes") == "Conferma Modifiche"
        assert i18n.gettext("Payment methods") == "Metodi di pagamento"
        i18n.activate(catalogs, "en")
        assert i18n.gettext("Save changes") == "Save changes"

    def test_catalogs_are_fresh_and_complete(self) -> None:
        """Every string marked in the templates and handlers is translated in each .po."""
        from babel.messages.extract import extract_from_dir

        extracted = {
            message if isinstance(message, str) else message[0]
            for _f, _l, message, _c, _ctx in extract_from_dir(
                str(GATEWAY),
                [
                    ("src/gateway/web/**.py", "python"),
                    ("src/gateway/problems.py", "python"),
                    ("src/gateway/templates/**.html", "jinja2"),
                ],
                options_map={"src/gateway/templates/**.html": {"extensions": "jinja2.ext.i18n"}},
                keywords={"_": None, "gettext": None, "ngettext": (1, 2), "N_": None},
            )
        }
        for lang in i18n.SUPPORTED:
            if lang == i18n.DEFAULT:
                continue
            path = GATEWAY / "src/gateway/locale" / lang / "LC_MESSAGES/messages.po"
            with path.open("rb") as fp:
                catalog = read_po(fp, locale=lang)
            # A plural entry's id and string are tuples: keyed by the singular, all forms filled.
            translated = {
                m.id if isinstance(m.id, str) else m.id[0]
                for m in catalog
                if m.id and m.string and all(m.string) and not m.fuzzy
            }
            missing = extracted - translated
            assert not missing, (
                f"{lang}: run services/gateway/scripts/update_catalogs.py and translate {missing}"
            )
