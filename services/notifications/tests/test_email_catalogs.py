"""The gettext catalogs match the templates: nothing untranslated, stale or broken.

The catalogs are compiled in memory at start (no .mo files to go stale); this
test is what tells that a template changed and the .po files did not follow.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from notifications.email import i18n
from notifications.email.models import SUPPORTED_LOCALES

EMAIL_DIR = Path(i18n.__file__).parent
TRANSLATED_LOCALES = [loc for loc in SUPPORTED_LOCALES if loc != "en"]
JINJA_OPTIONS = {"trimmed": "true", "newstyle_gettext": "true"}


def template_messages() -> set[str]:
    """Every msgid the templates use, extracted as ``pybabel extract`` would."""
    found: set[str] = set()
    method_map = [
        ("templates/**.j2", "jinja2"),
        ("templates/**.html", "jinja2"),
        ("templates/**.txt", "jinja2"),
    ]
    options = {pattern: JINJA_OPTIONS for pattern, _ in method_map}
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(EMAIL_DIR), method_map=method_map, options_map=options
    ):
        found.add(message[0] if isinstance(message, tuple) else message)
    return found


def load(locale: str) -> Catalog:
    with i18n.po_path(locale).open("rb") as handle:
        return read_po(handle, locale=locale)


def test_templates_have_messages() -> None:
    # Guards the test itself: an extractor that finds nothing would pass everything.
    assert len(template_messages()) > 30


@pytest.mark.parametrize("locale", TRANSLATED_LOCALES)
def test_catalog_covers_the_templates_exactly(locale: str) -> None:
    catalog = load(locale)
    in_catalog = {m.id[0] if isinstance(m.id, tuple) else m.id for m in catalog if m.id}
    in_templates = template_messages()
    assert in_templates - in_catalog == set(), "untranslated: run pybabel extract/update"
    assert in_catalog - in_templates == set(), "obsolete entries: remove them"


@pytest.mark.parametrize("locale", TRANSLATED_LOCALES)
def test_every_entry_is_translated_and_consistent(locale: str) -> None:
    catalog = load(locale)
    for message in catalog:
        if not message.id:
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        assert all(strings), f"empty translation for {message.id!r}"
        assert not message.fuzzy, f"fuzzy (unreviewed) translation for {message.id!r}"
    # Babel's checkers: placeholders like %(business_name)s match the msgid.
    problems = [(m.id, [str(e) for e in errors]) for m, errors in catalog.check()]
    assert problems == []


def test_compiled_catalog_translates() -> None:
    translations = i18n.load_translations()["it"]
    assert translations.gettext("Sign in") == "Accedi"
    assert (
        translations.ngettext(
            "This link expires in %(count)s minute and can be used only once.",
            "This link expires in %(count)s minutes and can be used only once.",
            15,
        )
        == "Il link scade tra %(count)s minuti e può essere usato una sola volta."
    )
