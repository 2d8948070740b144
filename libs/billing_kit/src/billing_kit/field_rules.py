"""The rules of customer-facing fields, written once, as pydantic constrained types.

Auth validates with these types (it owns the rules); the gateway builds its
merchant API request models from the same types, so ``/openapi.json`` (pydantic
generates it from those models) states exactly what auth enforces: a pattern,
a length or an enum changed here changes both at once and cannot drift.

Every rule that can be said in JSON Schema is said as a ``pattern``,
``maxLength`` or enum that is *exactly* the rule (a request the document allows
is accepted, one it forbids is refused). Two rules are more than a regular
expression and are published as a named ``format`` instead: a phone number
must be a valid number of its country (libphonenumber), and an email address
must pass ``email-validator``.

Whitespace around names, emails and URLs is trimmed before they are stored;
lengths count the value as sent.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, get_args

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, Field, StringConstraints, WithJsonSchema

# --- names ---------------------------------------------------------------------------------

NAME_MAX_LENGTH = 200
# Something other than white space, and no control characters (CR, LF, NUL, tab…): names
# end up in email headers and on pages.
NAME_PATTERN = r"^[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*$"


_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


def check_person_name(value: str) -> str:
    """A name on one line (trimmed): a clear message for each way it can be wrong."""
    if _CONTROL_CHARACTERS.search(value):
        raise ValueError("must not contain line breaks or control characters (CR, LF, NUL)")
    if len(value) > NAME_MAX_LENGTH:
        raise ValueError(f"must be at most {NAME_MAX_LENGTH} characters")
    stripped = value.strip()
    if not stripped:
        raise ValueError("must not be empty")
    return stripped


# Checked by one function (so each refusal says what is wrong); the document says the
# same rule as a pattern, so the two cannot drift (tests compare them).
PersonName = Annotated[
    str,
    AfterValidator(check_person_name),
    WithJsonSchema({"type": "string", "maxLength": NAME_MAX_LENGTH, "pattern": NAME_PATTERN}),
]

# --- email ---------------------------------------------------------------------------------

EMAIL_MAX_LENGTH = 254


def check_email(email: str) -> str:
    """Validate an email address; returns it trimmed (otherwise as given)."""
    email = email.strip()
    if not email:
        raise ValueError("email is required")
    if len(email) > EMAIL_MAX_LENGTH:
        raise ValueError("email is too long")
    if "@" in email and not email.rsplit("@", 1)[0].isascii():
        raise ValueError(
            "the part before @ must use ASCII characters only (the mail relay does not "
            "support international local parts)"
        )
    try:
        # No DNS lookups (they would block and flake); test_environment admits the
        # reserved ".test" domain that dev data and e2e mailboxes use. Our relay path
        # does not use SMTPUTF8, so a non-ASCII local part could never be mailed.
        validate_email(
            email, check_deliverability=False, test_environment=True, allow_smtputf8=False
        )
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid email address: {exc}") from None
    return email


EmailAddress = Annotated[
    str,
    AfterValidator(check_email),
    WithJsonSchema({"type": "string", "format": "email", "maxLength": EMAIL_MAX_LENGTH}),
]

# --- phone numbers -------------------------------------------------------------------------

PHONE_FORMAT = "phone-e164"


def check_phone_number(value: str | None) -> str | None:
    """Validate a phone number and return it in E.164 (``+393471234567``); empty -> None.

    Numbers must be international (start with ``+``): without a country we
    cannot tell which national plan they belong to.
    """
    if value is None or not value.strip():
        return None
    try:
        parsed = phonenumbers.parse(value.strip(), None)
    except phonenumbers.NumberParseException:
        raise ValueError(
            "phone_number must be in international format, e.g. +393471234567"
        ) from None
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError("phone_number is not a valid phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def check_given_phone_number(value: str) -> str:
    """A phone number that was sent as a string: it must be one (JSON says "none" with null)."""
    checked = check_phone_number(value)
    if checked is None:
        raise ValueError("phone_number must not be empty; send null for no phone number")
    return checked


# The API's type: a string is a phone number, null is "none" (the document says the
# same, so a blank string is refused rather than quietly read as null).
PhoneNumber = Annotated[
    str,
    AfterValidator(check_given_phone_number),
    WithJsonSchema(
        {
            "type": "string",
            "format": PHONE_FORMAT,
            "description": "A valid phone number in international format (E.164 once "
            "stored), e.g. +393331234567.",
        }
    ),
]

# --- URLs ----------------------------------------------------------------------------------

URL_MAX_LENGTH = 2048
# An absolute http(s) URL: a DNS name or IPv4 host (no user:password@, which browsers
# show misleadingly), an optional port, then RFC 3986 path/query/fragment characters
# without quotes, angle brackets, backslashes or white space.
_HOST_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
HTTP_URL_PATTERN = (
    rf"^[Hh][Tt][Tt][Pp][Ss]?://{_HOST_LABEL}(?:\.{_HOST_LABEL})*(?::[0-9]{{1,5}})?"
    r"(?:[/?#][A-Za-z0-9\-._~:/?#\[\]@!$&()*+,;=%]*)?$"
)
_HTTP_URL = re.compile(HTTP_URL_PATTERN)


def check_http_url(value: str | None) -> str | None:
    """An absolute http(s) URL with a host and no credentials; empty -> None."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if len(value) > URL_MAX_LENGTH:
        raise ValueError("URL is too long")
    if not _HTTP_URL.fullmatch(value):
        raise ValueError(
            "must be an absolute http:// or https:// URL with a host name and no user name "
            "or password"
        )
    return value


def is_http_url(value: str) -> bool:
    """True for a URL :func:`check_http_url` accepts (empty is not one)."""
    try:
        return check_http_url(value) is not None
    except ValueError:
        return False


HttpUrl = Annotated[
    str,
    StringConstraints(max_length=URL_MAX_LENGTH, pattern=HTTP_URL_PATTERN),
]

# --- portal deep links ---------------------------------------------------------------------

NEXT_PATH_MAX_LENGTH = 512
# A path inside one business's portal: /b/{business_id}/ then plain segments (none made
# of dots, none starting with one), no "//", no backslash, no percent escapes (so no
# encoded separators), and an optional plain query. Which business it must name is the
# caller's own: checked by :func:`check_next_path`.
_SEGMENT = r"[A-Za-z0-9_~-][A-Za-z0-9_.~-]*"
NEXT_PATH_PATTERN = (
    rf"^/b/[A-Za-z0-9_-]{{1,64}}/(?:{_SEGMENT}(?:/{_SEGMENT})*/?)?(?:\?[A-Za-z0-9_.~=&-]*)?$"
)
_NEXT_PATH = re.compile(NEXT_PATH_PATTERN)


def portal_home(business_id: str) -> str:
    """The portal home path of a business (relative to the mode's base URL)."""
    return f"/b/{business_id}/"


def check_next_path(value: str | None, business_id: str) -> str | None:
    """A deep-link target inside this business's portal, or None when not given."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if len(value) > NEXT_PATH_MAX_LENGTH:
        raise ValueError("next is too long")
    if not _NEXT_PATH.fullmatch(value) or not value.startswith(portal_home(business_id)):
        raise ValueError(
            f"next must be a plain path inside the portal, starting with {portal_home(business_id)}"
        )
    return value


NextPath = Annotated[
    str,
    StringConstraints(max_length=NEXT_PATH_MAX_LENGTH, pattern=NEXT_PATH_PATTERN),
]

# --- customer language and metadata --------------------------------------------------------

# Dodo's ``Locale`` codes (dodopayments.types.Locale), in its order: the languages a
# customer's emails may be asked in. Notifications falls back to English for languages
# it has no templates for, so every one of these is accepted and stored.
CustomerLocale = Literal[
    "ar", "ca", "zh", "nl", "en", "fr", "de", "he", "id", "it", "ja",
    "ka", "ko", "ms", "pl", "pt", "ro", "ru", "es", "sv", "th", "tr",
]  # fmt: skip
CUSTOMER_LOCALES: tuple[str, ...] = get_args(CustomerLocale)

# Stripe-like metadata limits: enough for ids and tags, too small to be a database.
MAX_METADATA_KEYS = 50
MAX_METADATA_KEY_LENGTH = 40
MAX_METADATA_VALUE_LENGTH = 500
# Keys are stored as document field names, which cannot hold NUL.
METADATA_KEY_PATTERN = r"^[^\x00]*$"


def check_metadata(value: Any) -> dict[str, str]:
    """At most 50 string keys of 1-40 characters (no NUL) with string values of up to 500.

    None -> {}.

    Messages say what is wrong and never repeat a key or value: metadata is the
    merchant's data and errors end up in logs.
    """
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError("must be an object of string keys and string values")
    if len(value) > MAX_METADATA_KEYS:
        raise ValueError(f"at most {MAX_METADATA_KEYS} keys are allowed")
    checked: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not 1 <= len(key) <= MAX_METADATA_KEY_LENGTH:
            raise ValueError(f"keys must be 1 to {MAX_METADATA_KEY_LENGTH} characters")
        if "\x00" in key:
            raise ValueError("keys must not contain the NUL character")
        if not isinstance(item, str):
            raise ValueError("values must be strings")
        if len(item) > MAX_METADATA_VALUE_LENGTH:
            raise ValueError(f"values must be at most {MAX_METADATA_VALUE_LENGTH} characters")
        checked[key] = item
    return checked


def check_preferred_locale(value: Any) -> str | None:
    """One of Dodo's language codes, stored as given; None or ``""`` -> None (no language)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or value not in CUSTOMER_LOCALES:
        raise ValueError("must be one of " + ", ".join(CUSTOMER_LOCALES))
    return value


Metadata = Annotated[
    dict[
        Annotated[
            str,
            StringConstraints(
                min_length=1, max_length=MAX_METADATA_KEY_LENGTH, pattern=METADATA_KEY_PATTERN
            ),
        ],
        Annotated[str, StringConstraints(max_length=MAX_METADATA_VALUE_LENGTH, strict=True)],
    ],
    Field(max_length=MAX_METADATA_KEYS),
    # Said by hand: pydantic would put the key pattern in patternProperties, which
    # constrains values of matching keys instead of refusing the other keys.
    WithJsonSchema(
        {
            "type": "object",
            "maxProperties": MAX_METADATA_KEYS,
            "propertyNames": {
                "minLength": 1,
                "maxLength": MAX_METADATA_KEY_LENGTH,
                "pattern": METADATA_KEY_PATTERN,
            },
            "additionalProperties": {"type": "string", "maxLength": MAX_METADATA_VALUE_LENGTH},
        }
    ),
]

# --- pages ---------------------------------------------------------------------------------

DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 100
MAX_PAGE_NUMBER = 100_000
PageSize = Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE)]
PageNumber = Annotated[int, Field(ge=0, le=MAX_PAGE_NUMBER)]
