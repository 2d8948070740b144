"""Gettext catalogs of the email templates, compiled from the .po files at start
(see :mod:`billing_kit.i18n`). ``tests/test_email_catalogs.py`` fails when a
template has a message the catalogs lack.
"""

from __future__ import annotations

import gettext
from pathlib import Path

from billing_kit import i18n as kit_i18n

from notifications.email.models import DEFAULT_LOCALE, SUPPORTED_LOCALES

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "messages"


def po_path(locale: str) -> Path:
    """Where the catalog of ``locale`` lives."""
    return kit_i18n.po_path(LOCALE_DIR, locale, DOMAIN)


def load_translations() -> dict[str, gettext.NullTranslations]:
    """Every supported locale's translations, keyed by language."""
    return kit_i18n.compile_catalogs(
        LOCALE_DIR, SUPPORTED_LOCALES, source_language=DEFAULT_LOCALE, domain=DOMAIN
    )
