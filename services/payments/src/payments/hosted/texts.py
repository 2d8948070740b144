"""The page's words: gettext catalogs (English source, Italian) and the locale choice."""

from __future__ import annotations

import gettext
from pathlib import Path

from babel.numbers import format_currency, get_currency_precision
from billing_kit.i18n import compile_catalogs

from payments.processor.cards import CardProblem

LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES = ("en", "it")


def N_(message: str) -> str:
    """Mark ``message`` for extraction; it is translated where it is shown."""
    return message


PROBLEM_TEXT: dict[CardProblem, str] = {
    CardProblem.NUMBER_MISSING: N_("Enter your card number."),
    CardProblem.NUMBER_INVALID: N_("This card number is not valid."),
    CardProblem.EXPIRY_MISSING: N_("Enter the expiry date."),
    CardProblem.EXPIRY_INVALID: N_("Enter the expiry date as MM/YY."),
    CardProblem.EXPIRY_PAST: N_("This card has expired."),
    CardProblem.CVC_MISSING: N_("Enter the security code."),
    CardProblem.CVC_INVALID: N_("The security code is 3 digits (4 for American Express)."),
    CardProblem.NAME_TOO_LONG: N_("The name is too long (100 characters at most)."),
}

# The processor's plain-words messages, listed so the extractor sees them.
PROCESSOR_TEXT = (
    N_("Your card was declined."),
    N_("Your card has insufficient funds."),
    N_("Your card has expired."),
    N_("The payment was not confirmed with your bank."),
    N_("The payment was not confirmed in time."),
)


class Texts:
    """Translations loaded once at start."""

    def __init__(self) -> None:
        self._catalogs = compile_catalogs(LOCALE_DIR, LANGUAGES)

    def for_language(self, language: str) -> gettext.NullTranslations:
        """The catalog of ``language`` (English when unknown)."""
        return self._catalogs.get(language, self._catalogs["en"])


def pick_language(preferred: str, accept_language: str) -> str:
    """The session's locale if it has one, else the best match of Accept-Language, else English."""
    if preferred in LANGUAGES:
        return preferred
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(accept_language.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        ranked.append((-quality, index, tag.strip().lower().split("-")[0]))
    for _quality, _index, language in sorted(ranked):
        if language in LANGUAGES:
            return language
    return "en"


def format_amount(amount: int, currency: str, language: str) -> str:
    """Minor units as a localized amount, e.g. ``$12.00`` / ``12,00 USD``."""
    digits = get_currency_precision(currency)
    return format_currency(amount / 10**digits, currency, locale=language)
