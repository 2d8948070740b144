"""Domain models of the auth service and the rules that validate them.

Input models (``NewBusiness``, ``NewCustomer`` …) validate what a caller sent;
the record models (``Business``, ``ApiKey``, ``Customer``) are what the
repository stores and returns. Nothing here does I/O.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from billing_kit.clock import utc_now as utc_now  # re-exported: the kit's one clock
from billing_kit.errors import InvalidArgument
from billing_kit.field_rules import (
    CUSTOMER_LOCALES as CUSTOMER_LOCALES,
)
from billing_kit.field_rules import (
    DEFAULT_PAGE_SIZE as DEFAULT_PAGE_SIZE,
)
from billing_kit.field_rules import (
    MAX_PAGE_SIZE as MAX_PAGE_SIZE,
)
from billing_kit.field_rules import (
    PersonName,
)
from billing_kit.field_rules import (
    check_email as check_email,
)
from billing_kit.field_rules import (
    check_http_url as check_http_url,
)
from billing_kit.field_rules import (
    check_metadata as check_metadata,
)
from billing_kit.field_rules import (
    check_phone_number as check_phone_number,
)
from billing_kit.field_rules import (
    check_preferred_locale as check_preferred_locale,
)
from billing_kit.scoping import Mode as Mode  # re-exported: the domain spelling of a mode
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

MODES: tuple[Mode, ...] = ("test", "live")

BUSINESS_PREFIX = "bus_"
CUSTOMER_PREFIX = "cus_"
API_KEY_PREFIX = "key_"
# The secret's own prefix says which mode it is for, so a leaked key is greppable
# and a test key can never be mistaken for a live one.
SECRET_PREFIXES: dict[Mode, str] = {"test": "sk_test_", "live": "sk_live_"}
SECRET_RANDOM_BYTES = 32
# Characters of the secret kept for display after the mode prefix: enough to
# recognise a key in a list, far too few to guess the rest.
DISPLAY_RANDOM_CHARS = 4

_COLOR = re.compile(r"^#[0-9A-Fa-f]{6}$")
_LOCALE = re.compile(r"^[a-z]{2,3}(-[A-Z]{2})?$")


def new_id(prefix: str) -> str:
    """A prefixed random id such as ``cus_5fpsWAa...`` (128 bits of randomness)."""
    return prefix + secrets.token_urlsafe(16).replace("-", "x").replace("_", "y")


def _as_utc(value: Any) -> Any:
    # The driver may hand back naive datetimes (BSON dates are UTC).
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


UtcDatetime = Annotated[datetime, BeforeValidator(_as_utc)]


# --- field rules ---------------------------------------------------------------------------


def normalize_email(email: str) -> str:
    """The form used for lookups and uniqueness: trimmed and lowercased."""
    return email.strip().lower()


# Top-level domains that never deliver mail (RFC 2606 / RFC 6761).
RESERVED_TLDS = ("test", "example", "invalid", "localhost")


def check_support_email(email: str) -> str:
    """A business's support address: a valid email outside the reserved TLDs.

    It is the Reply-To of the business's live customer emails, so it must be
    able to receive mail; ``.test``/``.example``/``.invalid``/``.localhost`` never do.
    """
    checked = check_email(email)
    tld = checked.rsplit("@", 1)[-1].rstrip(".").rsplit(".", 1)[-1].lower()
    if tld in RESERVED_TLDS:
        raise ValueError(
            f"cannot use the reserved domain .{tld}: it can never receive "
            "replies from live customers"
        )
    return checked


def check_business_name(value: str) -> str:
    """A business's name, shown as the sender's name in the From header of its emails.

    Control characters are refused by ``PersonName`` already; ``<`` and ``>`` are
    refused too: they would let a name pose as (part of) an address in mail clients.
    """
    if "<" in value or ">" in value:
        raise ValueError('must not contain "<" or ">"')
    return value


def check_color(value: str | None) -> str | None:
    """``#RRGGBB`` (stored uppercase); empty -> None."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if not _COLOR.match(value):
        raise ValueError("primary_color must look like #RRGGBB")
    return value.upper()


def check_locale(value: str | None) -> str:
    """A BCP 47 language tag such as ``en``, ``it`` or ``pt-BR``; empty -> ``en``."""
    if value is None or not value.strip():
        return "en"
    value = value.strip()
    if not _LOCALE.match(value):
        raise ValueError("locale must be a language tag such as 'en', 'it' or 'pt-BR'")
    return value


def check_mode(value: str) -> Mode:
    """``test`` or ``live``."""
    if value not in MODES:
        raise ValueError("mode must be 'test' or 'live'")
    return value  # type: ignore[return-value]


Email = Annotated[str, AfterValidator(check_email)]
PhoneNumber = Annotated[str | None, AfterValidator(check_phone_number)]
Color = Annotated[str | None, AfterValidator(check_color)]
HttpUrl = Annotated[str | None, AfterValidator(check_http_url)]
Locale = Annotated[str | None, AfterValidator(check_locale)]
Name = PersonName
BusinessName = Annotated[PersonName, AfterValidator(check_business_name)]
SupportEmail = Annotated[str, AfterValidator(check_support_email)]
# Checked before pydantic's own coercion so a bad value gets our message (never the value).
Metadata = Annotated[dict[str, str], BeforeValidator(check_metadata)]
PreferredLocale = Annotated[str | None, BeforeValidator(check_preferred_locale)]


M = TypeVar("M", bound=BaseModel)


def validated(model: type[M], **data: Any) -> M:
    """Build an input model or raise :class:`InvalidArgument` naming every bad field."""
    try:
        return model(**data)
    except ValidationError as exc:
        parts = []
        fields = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "request"
            message = str(err["msg"]).removeprefix("Value error, ")
            parts.append(f"{field}: {message}")
            fields.append(str(err["loc"][0]) if err["loc"] else "request")
        # The first bad field travels with the error, so a caller can show it in place.
        raise InvalidArgument("; ".join(parts), field=fields[0] if fields else None) from None


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


# --- businesses ----------------------------------------------------------------------------


class Branding(BaseModel):
    """What makes the portal look like the merchant's own."""

    model_config = ConfigDict(frozen=True)

    logo_url: HttpUrl = None
    primary_color: Color = None


class NewBusiness(_Input):
    """A request to create a business."""

    name: BusinessName
    branding: Branding = Branding()
    support_email: SupportEmail | None = None
    default_return_url: HttpUrl = None
    locale: Locale = "en"

    @field_validator("support_email", mode="before")
    @classmethod
    def _empty_email_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value


class Business(BaseModel):
    """A merchant: the owner of API keys and customers."""

    model_config = ConfigDict(frozen=True)

    business_id: str
    name: str
    branding: Branding
    support_email: str | None = None
    default_return_url: str | None = None
    locale: str = "en"
    created_at: UtcDatetime


# --- API keys ------------------------------------------------------------------------------


class NewApiKey(_Input):
    """A request to issue an API key."""

    business_id: str = Field(min_length=1)
    mode: Mode
    name: str = Field(default="", max_length=200)


class ApiKey(BaseModel):
    """A merchant API key as stored: never the secret, only its hash."""

    model_config = ConfigDict(frozen=True)

    key_id: str
    business_id: str
    mode: Mode
    name: str
    display_prefix: str
    created_at: UtcDatetime
    revoked_at: UtcDatetime | None = None


class IssuedApiKey(BaseModel):
    """A freshly issued key: the only place the plaintext secret ever appears."""

    model_config = ConfigDict(frozen=True)

    api_key: ApiKey
    secret: str = Field(repr=False)


class ApiKeyPrincipal(BaseModel):
    """Who a valid API key speaks for."""

    model_config = ConfigDict(frozen=True)

    business_id: str
    mode: Mode
    key_id: str


def generate_secret(mode: Mode) -> str:
    """A new API key secret: mode prefix + 32 random bytes, urlsafe base64."""
    return SECRET_PREFIXES[mode] + secrets.token_urlsafe(SECRET_RANDOM_BYTES)


def hash_secret(secret: str) -> str:
    """SHA-256 hex digest of a secret.

    The secrets are 256-bit random values, so a fast hash is enough: there is
    nothing to brute-force, and a slow KDF would only cost time on every request.
    """
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def display_prefix(secret: str) -> str:
    """The first characters of a secret (``sk_test_AbCd``), safe to show and log."""
    for prefix in SECRET_PREFIXES.values():
        if secret.startswith(prefix):
            return secret[: len(prefix) + DISPLAY_RANDOM_CHARS]
    return secret[:DISPLAY_RANDOM_CHARS]


def secret_mode(secret: str) -> Mode | None:
    """The mode a secret's prefix claims, or None when it is not one of ours."""
    for mode, prefix in SECRET_PREFIXES.items():
        if secret.startswith(prefix):
            return mode
    return None


# --- customers -----------------------------------------------------------------------------


class NewCustomer(_Input):
    """A request to create a customer (Dodo's ``POST /customers``)."""

    business_id: str = Field(min_length=1)
    mode: Mode
    email: Email
    name: PersonName
    phone_number: PhoneNumber = None
    metadata: Metadata = Field(default_factory=dict)
    preferred_locale: PreferredLocale = None

    @field_validator("phone_number", mode="before")
    @classmethod
    def _empty_phone_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value


class Customer(BaseModel):
    """A customer of one business in one mode."""

    model_config = ConfigDict(frozen=True)

    customer_id: str
    business_id: str
    mode: Mode
    email: str
    name: str
    phone_number: str | None = None
    created_at: UtcDatetime
    metadata: dict[str, str] = Field(default_factory=dict)
    # One of CUSTOMER_LOCALES, or None: the customer's emails then follow the request
    # or the business's locale.
    preferred_locale: str | None = None

    @property
    def email_normalized(self) -> str:
        """The lookup form of the email."""
        return normalize_email(self.email)


class CustomerQuery(_Input):
    """A page of one business's customers, optionally filtered by email."""

    business_id: str = Field(min_length=1)
    mode: Mode
    page_size: int = Field(default=DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)
    page_number: int = Field(default=0, ge=0)
    email: str | None = None

    @field_validator("email", mode="before")
    @classmethod
    def _normalize_filter(cls, value: Any) -> Any:
        if isinstance(value, str):
            return normalize_email(value) or None
        return value


class PageRequest(_Input):
    """Page size/number for simple lists (zero-based pages, as in the Dodo API)."""

    page_size: int = Field(default=DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)
    page_number: int = Field(default=0, ge=0)


# --- events --------------------------------------------------------------------------------

CUSTOMER_CREATED = "customer.created"


class CustomerSnapshot(BaseModel):
    """The customer as an event describes it; both customer events carry all of it."""

    customer_id: str = Field(description="The customer's id (cus_...).")
    business_id: str = Field(description="The business the customer belongs to.")
    mode: Mode = Field(description="test or live.")
    email: str = Field(description="The customer's email (verified, or as the merchant gave it).")
    name: str = Field(description="The customer's full name.")
    phone_number: str | None = Field(default=None, description="E.164, or null.")
    created_at: datetime = Field(description="When the customer was created (UTC).")
    metadata: dict[str, str] = Field(
        default_factory=dict, description="The merchant's key/value pairs ({} when none)."
    )
    preferred_locale: str | None = Field(
        default=None,
        description="The language of the customer's emails (a Dodo Locale code), or null.",
    )
    locale: str | None = Field(
        default=None,
        description="Same as preferred_locale: the name the notifications directory reads.",
    )


class CustomerCreatedData(CustomerSnapshot):
    """``data`` of a ``customer.created`` event."""

    @classmethod
    def from_customer(cls, customer: Customer) -> CustomerCreatedData:
        """The event payload describing ``customer``."""
        return cls(**customer.model_dump(), locale=customer.preferred_locale)
