"""Gettext catalogs of the email templates, compiled from the .po files at start.

Compiling in memory (instead of committing .mo files) means a catalog can never
be stale: what the .po says is what is sent. ``tests/test_email_catalogs.py``
fails when a template has a message the catalogs lack.
"""

from __future__ import annotations

import gettext
import io
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from notifications.email.models import DEFAULT_LOCALE, SUPPORTED_LOCALES

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "messages"


def po_path(locale: str) -> Path:
    """Where the catalog of ``locale`` lives."""
    return LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


def compile_catalog(locale: str) -> gettext.NullTranslations:
    """The translations of ``locale``; English is the source language (msgids) itself.

    Fuzzy entries are left out, as ``pybabel compile`` does: an unreviewed
    translation falls back to English instead of going out half right.
    """
    if locale == DEFAULT_LOCALE:
        return gettext.NullTranslations()
    with po_path(locale).open("rb") as handle:
        catalog = read_po(handle, locale=locale, domain=DOMAIN)
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def load_translations() -> dict[str, gettext.NullTranslations]:
    """Every supported locale's translations, keyed by language."""
    return {locale: compile_catalog(locale) for locale in SUPPORTED_LOCALES}
