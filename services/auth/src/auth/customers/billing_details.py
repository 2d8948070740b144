"""A customer's billing details (address, tax id, company) and the rules that check them.

Pure: no I/O. Tax ids are checked offline with python-stdnum (format and check
digits; no VIES call): an EU country's number must be a valid EU VAT number with
that country's prefix; a few other countries have their own module (the
``_NATIONAL`` table); anywhere else any 1..64 printable characters are accepted.
Numbers are stored compact (``DE 136 695 976`` -> ``DE136695976``).
"""

from __future__ import annotations

from types import ModuleType

from babel import Locale
from pydantic import BaseModel, ConfigDict
from stdnum.au import abn as au_abn
from stdnum.ch import vat as ch_vat
from stdnum.eu import vat as eu_vat
from stdnum.exceptions import ValidationError as StdnumError
from stdnum.gb import vat as gb_vat
from stdnum.no import mva as no_mva

# Country -> the prefix its EU VAT numbers carry (Greece writes EL; Northern Ireland XI).
_EU_PREFIX = {code.upper(): code.upper() for code in eu_vat.MEMBER_STATES if code != "gr"}
_EU_PREFIX["GR"] = "EL"
_EU_PREFIX.pop("XI", None)
# Countries outside the EU whose tax number stdnum checks.
_NATIONAL: dict[str, ModuleType] = {"GB": gb_vat, "CH": ch_vat, "NO": no_mva, "AU": au_abn}
# Two-letter regions CLDR names, less its groupings and placeholders (EU, UN, ZZ, ...).
_NOT_COUNTRIES = frozenset({"EU", "EZ", "UN", "QO", "XA", "XB", "ZZ"})
_COUNTRIES = frozenset(
    code
    for code in Locale.parse("en").territories
    if isinstance(code, str) and len(code) == 2 and code.isalpha() and code not in _NOT_COUNTRIES
)
_LIMITS = {"city": 200, "state": 200, "street": 500, "zipcode": 50, "business_name": 200}
MAX_TAX_ID = 64


class BillingDetails(BaseModel):
    """What the customer's invoices print as the buyer (all but ``country`` optional)."""

    model_config = ConfigDict(frozen=True)

    country: str
    city: str = ""
    state: str = ""
    street: str = ""
    zipcode: str = ""
    tax_id: str = ""
    business_name: str = ""


class BillingDetailsError(ValueError):
    """One field is wrong: ``field`` names it, the message says why (English, for logs/API)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def _printable(value: str) -> bool:
    return all(ch.isprintable() for ch in value)


def check_tax_id(country: str, tax_id: str) -> str:
    """``tax_id`` compacted and checked against ``country``; ``""`` stays ``""``.

    Raises :class:`BillingDetailsError` (field ``tax_id``) when it is not valid there.
    """
    raw = tax_id.strip()
    if not raw:
        return ""
    prefix = _EU_PREFIX.get(country)
    if prefix is not None:
        try:
            number = eu_vat.validate(raw)
        except StdnumError:
            # A number typed without its country prefix is still the same number.
            try:
                number = eu_vat.validate(prefix + raw)
            except StdnumError:
                raise BillingDetailsError("tax_id", "not a valid EU VAT number") from None
        if not number.startswith(prefix):
            raise BillingDetailsError("tax_id", f"not a VAT number of {country}")
        return str(number)
    module = _NATIONAL.get(country)
    if module is not None:
        try:
            number = str(module.validate(raw))
        except StdnumError:
            raise BillingDetailsError("tax_id", f"not a valid tax number of {country}") from None
        # The UK's VAT numbers are printed with their prefix, as the EU's are.
        return f"GB{number}" if country == "GB" and not number.startswith("GB") else number
    if len(raw) > MAX_TAX_ID or not _printable(raw):
        raise BillingDetailsError("tax_id", f"must be 1 to {MAX_TAX_ID} printable characters")
    return raw


def check_billing_details(
    *,
    country: str,
    city: str = "",
    state: str = "",
    street: str = "",
    zipcode: str = "",
    tax_id: str = "",
    business_name: str = "",
) -> BillingDetails:
    """The details trimmed, the country upper-cased and the tax id compacted, or
    :class:`BillingDetailsError` naming the first wrong field."""
    code = country.strip().upper()
    if code not in _COUNTRIES:
        raise BillingDetailsError("country", "must be an ISO 3166-1 alpha-2 country code")
    values = {
        "city": city.strip(),
        "state": state.strip(),
        "street": street.strip(),
        "zipcode": zipcode.strip(),
        "business_name": business_name.strip(),
    }
    for field, limit in _LIMITS.items():
        value = values[field]
        if len(value) > limit or not _printable(value):
            raise BillingDetailsError(
                field, f"must be at most {limit} characters without control characters"
            )
    return BillingDetails(country=code, tax_id=check_tax_id(code, tax_id), **values)
