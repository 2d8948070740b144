"""The rules of product-catalogue fields (currency, intervals, tax category, price bounds).

The subscriptions service validates products with these types and the gateway
builds its ``/products`` request models from the same ones, so the OpenAPI
document states exactly what the service enforces (see :mod:`field_rules`).
The literals are Dodo Payments' own (``dodopayments.types``), spelled as the
SDK sends them.
"""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import BeforeValidator, Field, StringConstraints

from billing_kit.field_rules import NAME_PATTERN

# Dodo's ``Currency``: 145 ISO 4217 codes, in its order.
Currency = Literal[
    "AED", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT", "BGN",
    "BHD", "BIF", "BMD", "BND", "BOB", "BRL", "BSD", "BWP", "BYN", "BZD", "CAD", "CHF", "CLP",
    "CNY", "COP", "CRC", "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD", "EGP", "ETB", "EUR",
    "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HRK",
    "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "JMD", "JOD", "JPY", "KES", "KGS", "KHR", "KMF",
    "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL", "LYD", "MAD", "MDL", "MGA",
    "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR", "MWK", "MXN", "MYR", "MZN", "NAD", "NGN",
    "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "PYG", "QAR",
    "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR", "SEK", "SGD", "SHP", "SLE", "SLL", "SOS",
    "SRD", "SSP", "STN", "SVC", "SZL", "THB", "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH",
    "UGX", "USD", "UYU", "UZS", "VES", "VND", "VUV", "WST", "XAF", "XCD", "XOF", "XPF", "YER",
    "ZAR", "ZMW",
]  # fmt: skip
CURRENCIES: tuple[str, ...] = get_args(Currency)

# Dodo's ``TimeInterval`` (capitalised on the wire).
TimeInterval = Literal["Day", "Week", "Month", "Year"]
TIME_INTERVALS: tuple[str, ...] = get_args(TimeInterval)

# Dodo's ``TaxCategory``.
TaxCategory = Literal["digital_products", "saas", "e_book", "edtech", "live_tutoring"]
TAX_CATEGORIES: tuple[str, ...] = get_args(TaxCategory)

PRICE_TYPES = ("one_time_price", "recurring_price")

# Bounds. Names and descriptions follow Dodo's documented limits (100 / 1000 characters,
# 2500 for the activation message); the counts have no documented maximum, so ours are
# generous but keep date arithmetic sane (a 100-year subscription, a 10-year trial is not).
PRODUCT_NAME_MAX_LENGTH = 100
PRODUCT_DESCRIPTION_MAX_LENGTH = 1000
ACTIVATION_MESSAGE_MAX_LENGTH = 2500
# Minor units; 10^11 is a billion of a two-decimal currency, far beyond any one charge.
MAX_PRICE = 100_000_000_000
MAX_INTERVAL_COUNT = 1000
MAX_TRIAL_PERIOD_DAYS = 365
MAX_ACTIVATIONS_LIMIT = 1_000_000
MAX_DISCOUNT_BPS = 10_000

# Names are shown on pages and in emails: one line, not blank, no control characters
# (the same pattern as a person's name in field_rules, with Dodo's 100-character limit).
ProductName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=PRODUCT_NAME_MAX_LENGTH, pattern=NAME_PATTERN),
]
ProductDescription = Annotated[str, StringConstraints(max_length=PRODUCT_DESCRIPTION_MAX_LENGTH)]
ActivationMessage = Annotated[str, StringConstraints(max_length=ACTIVATION_MESSAGE_MAX_LENGTH)]


def json_integer(value: object) -> object:
    """A JSON number, never a string or a boolean (pydantic's lax mode would take "5", true)."""
    if isinstance(value, str | bool):
        raise ValueError("must be an integer")
    return value


# Minor units of the currency.
PriceAmount = Annotated[int, Field(ge=1, le=MAX_PRICE), BeforeValidator(json_integer)]
IntervalCount = Annotated[int, Field(ge=1, le=MAX_INTERVAL_COUNT), BeforeValidator(json_integer)]
TrialPeriodDays = Annotated[
    int, Field(ge=0, le=MAX_TRIAL_PERIOD_DAYS), BeforeValidator(json_integer)
]
DiscountBps = Annotated[int, Field(ge=0, le=MAX_DISCOUNT_BPS), BeforeValidator(json_integer)]
# None (null) = unlimited activations.
ActivationsLimit = Annotated[
    int, Field(ge=1, le=MAX_ACTIVATIONS_LIMIT), BeforeValidator(json_integer)
]

# Our extensions for plan changes: products with the same non-empty plan group are the
# plans a customer may switch between; max_quantity caps the seats (0 = no limit).
PLAN_GROUP_MAX_LENGTH = 64
PLAN_GROUP_PATTERN = r"^[A-Za-z0-9_-]*$"
MAX_QUANTITY_LIMIT = 1000
PlanGroup = Annotated[
    str, StringConstraints(max_length=PLAN_GROUP_MAX_LENGTH, pattern=PLAN_GROUP_PATTERN)
]
MaxQuantity = Annotated[int, Field(ge=0, le=MAX_QUANTITY_LIMIT), BeforeValidator(json_integer)]
