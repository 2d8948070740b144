"""Languages of the portal: gettext catalogs, per-request language, formatting.

The catalogs are ``locale/<lang>/LC_MESSAGES/messages.po`` (extracted with
``services/gateway/babel.cfg``). They are compiled in memory when the app
starts, so a stale compiled file can never be served; a unit test checks that
every marked string is in each catalog and translated.

The language of a request is, in order: ``?lang=`` (which also sets the
switcher cookie), the switcher cookie, the signed-in customer's
``preferred_locale`` (when we have that language), then the browser's
``Accept-Language`` (negotiated with Babel), then the business's locale;
English otherwise. The browser comes before the business because it is the
visitor's own setting: an Italian browser on an English-speaking business's
sign-in page reads Italian. Only the first two are the visitor's explicit
choice: emails auth sends follow that choice, and otherwise the customer's own
language (see :func:`explicit_choice`).
"""

from __future__ import annotations

import gettext as _gettext
from contextvars import ContextVar
from datetime import datetime
from pathlib import Path

from aiohttp import web
from babel import Locale, UnknownLocaleError, negotiate_locale
from babel.dates import format_datetime
from billing_kit import i18n as kit_i18n

SUPPORTED = ("en", "it")
DEFAULT = "en"
LANG_COOKIE = "cp_lang"
LANGUAGE_NAMES = {"en": "English", "it": "Italiano"}
LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
DOMAIN = "messages"

_ENGLISH = _gettext.NullTranslations()
_current: ContextVar[_gettext.NullTranslations | None] = ContextVar(
    "portal_translations", default=None
)
_current_lang: ContextVar[str] = ContextVar("portal_lang", default=DEFAULT)


def compile_catalogs(locale_dir: Path = LOCALE_DIR) -> dict[str, _gettext.NullTranslations]:
    """Every supported language's translations, compiled from its ``.po`` now."""
    return kit_i18n.compile_catalogs(locale_dir, SUPPORTED, source_language=DEFAULT, domain=DOMAIN)


def normalize(lang: str | None) -> str | None:
    """``"it-IT"`` → ``"it"`` when supported, else None."""
    if not lang:
        return None
    primary = lang.strip().replace("_", "-").split("-", 1)[0].lower()
    return primary if primary in SUPPORTED else None


def _accepted_tags(header: str) -> list[str]:
    """The language tags of an ``Accept-Language`` header, most wanted first (q=0 dropped)."""
    weighted: list[tuple[float, int, str]] = []
    # A browser sends a handful; a longer header is noise and is cut off.
    for index, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                weight = float(params[2:])
            except ValueError:
                weight = 0.0
        tag = tag.strip()
        if tag and tag != "*" and weight > 0:
            weighted.append((-weight, index, tag.replace("_", "-")))
    return [tag for _, _, tag in sorted(weighted)]


def from_accept_language(header: str) -> str | None:
    """The supported language a browser's ``Accept-Language`` header asks for, if any.

    Babel's :func:`~babel.core.negotiate_locale` matches each wanted tag (by
    weight) against our catalogs, falling back from a regional tag
    (``it-IT``) to its language (``it``).
    """
    chosen = negotiate_locale(_accepted_tags(header), SUPPORTED, sep="-")
    return normalize(chosen)


def explicit_choice(request: web.Request) -> str | None:
    """The language the visitor picked (``?lang=`` or the switcher cookie), if any."""
    return normalize(request.query.get("lang")) or normalize(request.cookies.get(LANG_COOKIE))


def negotiate(
    request: web.Request,
    business_locale: str | None = None,
    customer_locale: str | None = None,
) -> tuple[str, bool]:
    """The request's language and whether the switcher cookie must be (re)set."""
    asked = normalize(request.query.get("lang"))
    if asked:
        return asked, request.cookies.get(LANG_COOKIE) != asked
    cookie = normalize(request.cookies.get(LANG_COOKIE))
    if cookie:
        return cookie, False
    customer = normalize(customer_locale)
    if customer:
        return customer, False
    browser = from_accept_language(request.headers.get("Accept-Language", ""))
    if browser:
        return browser, False
    return normalize(business_locale) or DEFAULT, False


def activate(catalogs: dict[str, _gettext.NullTranslations], lang: str) -> None:
    """Make ``lang`` the language of the current request (a per-task context)."""
    _current.set(catalogs.get(lang, catalogs[DEFAULT]))
    _current_lang.set(lang if lang in catalogs else DEFAULT)


def current_lang() -> str:
    """The language activated for this request."""
    return _current_lang.get()


def gettext(message: str) -> str:
    """``message`` in the current request's language."""
    return (_current.get() or _ENGLISH).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """Plural-aware ``gettext``."""
    return (_current.get() or _ENGLISH).ngettext(singular, plural, n)


def N_(message: str) -> str:
    """Mark a string for extraction; translate it later with :func:`gettext`."""
    return message


def format_when(value: datetime) -> str:
    """A date and time in the current language (UTC, as stored)."""
    try:
        locale = Locale.parse(current_lang())
    except (UnknownLocaleError, ValueError):
        locale = Locale.parse(DEFAULT)
    return format_datetime(value, "medium", tzinfo=None, locale=locale) + " UTC"
