"""Checks on what a customer types into the hosted page, before any processor sees it.

Pure functions over strings. None of them puts the card number or the CVC in
an exception or a return value other than the brand and the last four digits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

_NON_DIGITS = re.compile(r"[\s-]")
_EXPIRY = re.compile(r"^\s*(\d{1,2})\s*/\s*(\d{2}|\d{4})\s*$")


class CardProblem(StrEnum):
    """Why a typed field is refused: a key the page turns into a translated message."""

    NUMBER_MISSING = "number_missing"
    NUMBER_INVALID = "number_invalid"
    EXPIRY_MISSING = "expiry_missing"
    EXPIRY_INVALID = "expiry_invalid"
    EXPIRY_PAST = "expiry_past"
    CVC_MISSING = "cvc_missing"
    CVC_INVALID = "cvc_invalid"
    NAME_TOO_LONG = "name_too_long"


@dataclass(frozen=True)
class CardInput:
    """A card as typed: lives only in memory for the length of one request."""

    number: str
    expiry_month: int
    expiry_year: int
    cvc: str
    holder_name: str

    def __repr__(self) -> str:
        # Never the number or the CVC, even in a traceback's locals or a debugger.
        return (
            f"CardInput(last4={self.number[-4:]!r}, expiry={self.expiry_month}/{self.expiry_year})"
        )

    __str__ = __repr__


def luhn_valid(digits: str) -> bool:
    """Whether ``digits`` (digits only) passes the Luhn checksum."""
    if not digits.isdigit():
        return False
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def card_brand(digits: str) -> str:
    """The network of a card number by its prefix ("visa", "mastercard", "amex", …)."""
    if digits.startswith("4"):
        return "visa"
    if digits[:2] in {"51", "52", "53", "54", "55"} or "2221" <= digits[:4] <= "2720":
        return "mastercard"
    if digits[:2] in {"34", "37"}:
        return "amex"
    if digits.startswith(("6011", "65")):
        return "discover"
    return "unknown"


def normalize_number(raw: str) -> str:
    """The number without the spaces and dashes people type."""
    return _NON_DIGITS.sub("", raw)


def check_number(raw: str) -> CardProblem | None:
    """The problem with a typed card number, None if it looks like a card."""
    digits = normalize_number(raw)
    if not digits:
        return CardProblem.NUMBER_MISSING
    if not digits.isdigit() or not 12 <= len(digits) <= 19 or not luhn_valid(digits):
        return CardProblem.NUMBER_INVALID
    return None


def parse_expiry(raw: str, now: datetime) -> tuple[int, int] | CardProblem:
    """``MM/YY`` or ``MM/YYYY`` as (month, four-digit year), or why not.

    A card is valid through the last day of its expiry month.
    """
    if not raw.strip():
        return CardProblem.EXPIRY_MISSING
    match = _EXPIRY.match(raw)
    if match is None:
        return CardProblem.EXPIRY_INVALID
    month, year = int(match.group(1)), int(match.group(2))
    if len(match.group(2)) == 2:
        year += 2000
    if not 1 <= month <= 12 or year > now.year + 30:
        return CardProblem.EXPIRY_INVALID
    if (year, month) < (now.year, now.month):
        return CardProblem.EXPIRY_PAST
    return month, year


def check_cvc(raw: str, brand: str) -> CardProblem | None:
    """3 digits (4 for American Express)."""
    value = raw.strip()
    if not value:
        return CardProblem.CVC_MISSING
    expected = 4 if brand == "amex" else 3
    if not value.isdigit() or len(value) != expected:
        return CardProblem.CVC_INVALID
    return None


def read_card(
    *, number: str, expiry: str, cvc: str, holder_name: str, now: datetime
) -> CardInput | dict[str, CardProblem]:
    """The typed card, or every field's problem (keyed by form field name)."""
    problems: dict[str, CardProblem] = {}
    number_problem = check_number(number)
    if number_problem is not None:
        problems["cc-number"] = number_problem
    digits = normalize_number(number)
    expiry_value = parse_expiry(expiry, now)
    if isinstance(expiry_value, CardProblem):
        problems["cc-exp"] = expiry_value
    cvc_problem = check_cvc(cvc, card_brand(digits))
    if cvc_problem is not None:
        problems["cc-csc"] = cvc_problem
    name = holder_name.strip()
    if len(name) > 100:
        problems["cc-name"] = CardProblem.NAME_TOO_LONG
    if problems or isinstance(expiry_value, CardProblem):
        return problems
    month, year = expiry_value
    return CardInput(
        number=digits, expiry_month=month, expiry_year=year, cvc=cvc.strip(), holder_name=name
    )
