"""Re-extract the portal's strings and refresh the catalogs.

    uv run --frozen python services/gateway/scripts/update_catalogs.py

Writes ``locale/messages.pot`` and merges it into each language's
``locale/<lang>/LC_MESSAGES/messages.po``, keeping existing translations (as
``pybabel update`` does); then translate the new empty entries in the ``.po``.
The app compiles the ``.po`` files when it starts; ``tests/test_i18n.py`` fails
when a marked string is missing or untranslated. Italian follows the product's
own wording ("Portale Clienti", "Modifica", "Conferma Modifiche", ...).
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

HERE = Path(__file__).resolve().parent
GATEWAY = HERE.parent
LOCALE = GATEWAY / "src" / "gateway" / "locale"
LANGUAGES = ("it",)

METHODS = [
    ("src/gateway/web/**.py", "python"),
    ("src/gateway/problems.py", "python"),
    ("src/gateway/templates/**.html", "jinja2"),
]
OPTIONS = {"src/gateway/templates/**.html": {"extensions": "jinja2.ext.i18n"}}
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}


def extract() -> Catalog:
    """Every marked string of the gateway's pages."""
    catalog = Catalog(project="gateway", fuzzy=False)
    for _filename, _lineno, message, comments, context in extract_from_dir(
        str(GATEWAY), METHODS, options_map=OPTIONS, keywords=KEYWORDS
    ):
        catalog.add(message, None, [], auto_comments=comments, context=context)
    return catalog


def main() -> int:
    """Write the template and the Italian catalog; fail on missing translations."""
    template = extract()
    with (LOCALE / "messages.pot").open("wb") as fp:
        write_po(fp, template, omit_header=True, no_location=True, sort_output=True)
    missing = []
    for lang in LANGUAGES:
        path = LOCALE / lang / "LC_MESSAGES" / "messages.po"
        with path.open("rb") as fp:
            catalog = read_po(fp, locale=lang)
        catalog.update(template, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        with path.open("wb") as fp:
            write_po(fp, catalog, no_location=True, sort_output=True, omit_header=False)
        missing += [f"{lang}: {m.id!r}" for m in catalog if m.id and not m.string]
    for entry in missing:
        print(f"untranslated: {entry}", file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    raise SystemExit(main())
