"""Money and dates for a reader of one locale (Babel): "€356.20" / "356,20 €"."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from babel.dates import format_date
from babel.numbers import format_currency, format_decimal, get_currency_precision

# The emails' languages mapped to the regional formats their readers expect.
_FORMAT_LOCALES = {"en": "en_US", "it": "it_IT"}


def _babel_locale(locale: str) -> str:
    return _FORMAT_LOCALES.get(locale, "en_US")


def format_amount(minor_units: int, currency: str, locale: str) -> str:
    """``minor_units`` of ``currency`` as that locale writes money (2 decimals for EUR...)."""
    digits = get_currency_precision(currency)
    value = Decimal(minor_units).scaleb(-digits)
    return format_currency(value, currency, locale=_babel_locale(locale))


def format_day(moment: datetime, locale: str) -> str:
    """The calendar day of ``moment`` (UTC) as that locale writes it in prose."""
    return format_date(moment.date(), format="long", locale=_babel_locale(locale))


def format_count(count: int, locale: str) -> str:
    """A whole number as that locale groups digits ("1,000" / "1.000")."""
    return format_decimal(count, locale=_babel_locale(locale))
