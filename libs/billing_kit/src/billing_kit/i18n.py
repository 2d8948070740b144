"""Gettext catalogs compiled from ``.po`` files when a process starts.

Compiling in memory instead of committing ``.mo`` files means a catalog can
never be stale: what the ``.po`` says is what is shown or sent. Fuzzy entries
are left out, as ``pybabel compile`` does, so an unreviewed translation falls
back to the source language instead of going out half right.
"""

from __future__ import annotations

import gettext
import io
from collections.abc import Iterable
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

DOMAIN = "messages"


def po_path(locale_dir: Path, language: str, domain: str = DOMAIN) -> Path:
    """Where the catalog of ``language`` lives under ``locale_dir``."""
    return locale_dir / language / "LC_MESSAGES" / f"{domain}.po"


def compile_catalogs(
    locale_dir: Path,
    languages: Iterable[str],
    *,
    source_language: str = "en",
    domain: str = DOMAIN,
) -> dict[str, gettext.NullTranslations]:
    """Every language's translations; the source language is the msgids themselves.

    Reads files: call it while the process starts, not on the event loop's hot path.
    """
    catalogs: dict[str, gettext.NullTranslations] = {}
    for language in languages:
        if language == source_language:
            catalogs[language] = gettext.NullTranslations()
            continue
        with po_path(locale_dir, language, domain).open("rb") as handle:
            catalog = read_po(handle, locale=language, domain=domain)
        buffer = io.BytesIO()
        write_mo(buffer, catalog, use_fuzzy=False)
        buffer.seek(0)
        catalogs[language] = Translations(fp=buffer, domain=domain)
    return catalogs
