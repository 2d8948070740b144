"""Models and rules of merchants: businesses (with branding) and their API keys.

``NewBusiness`` / ``NewApiKey`` validate what a caller sent; ``Business`` and
``ApiKey`` are what the repository stores and returns. Nothing here does I/O.
"""

from __future__ import annotations

import re
import secrets
from typing import Annotated, Any, Literal

from billing_kit.field_rules import PersonName, check_email
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from auth.rules import HttpUrl, InputModel, Mode, UtcDatetime

BUSINESS_PREFIX = "bus_"
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


Color = Annotated[str | None, AfterValidator(check_color)]
Locale = Annotated[str | None, AfterValidator(check_locale)]
BusinessName = Annotated[PersonName, AfterValidator(check_business_name)]
SupportEmail = Annotated[str, AfterValidator(check_support_email)]


# --- businesses ----------------------------------------------------------------------------


class Branding(BaseModel):
    """What makes the portal look like the merchant's own."""

    model_config = ConfigDict(frozen=True)

    logo_url: HttpUrl = None
    primary_color: Color = None


# Renewal reminders: how many days ahead, per business (subscriptions asks GetBusiness).
DEFAULT_RENEWAL_REMINDER_DAYS = 3
MAX_RENEWAL_REMINDER_DAYS = 30
# License keys of an on_hold subscription keep validating this long after its paid period;
# 0 = subscriptions' default (SUBSCRIPTIONS_LICENSE_GRACE_DAYS), read via GetBusiness.
MAX_LICENSE_GRACE_DAYS = 365


class NewBusiness(InputModel):
    """A request to create a business."""

    name: BusinessName
    branding: Branding = Branding()
    support_email: SupportEmail | None = None
    default_return_url: HttpUrl = None
    locale: Locale = "en"
    # 0 (unset on the wire) means the default.
    renewal_reminder_days: int = Field(default=0, ge=0, le=MAX_RENEWAL_REMINDER_DAYS)

    @field_validator("renewal_reminder_days", mode="after")
    @classmethod
    def _zero_is_default(cls, value: int) -> int:
        return value or DEFAULT_RENEWAL_REMINDER_DAYS

    # 0 (unset on the wire) means the subscriptions service's default.
    license_grace_days: int = Field(default=0, ge=0, le=MAX_LICENSE_GRACE_DAYS)

    # Printed on invoices (the seller block); free text, may be empty.
    address: str = Field(default="", max_length=500)
    tax_id: str = Field(default="", max_length=64)

    @field_validator("support_email", mode="before")
    @classmethod
    def _empty_email_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value


# When a customer's downgrade takes effect (the wire's DowngradeTiming, lower case).
DowngradeTiming = Literal["next_billing_date", "immediately"]
DOWNGRADE_TIMINGS: tuple[DowngradeTiming, ...] = ("next_billing_date", "immediately")


class PortalSettings(BaseModel):
    """What the business lets its customers do themselves in the portal.

    The defaults are what a business that never chose gets (also one stored
    before these settings existed): every action allowed, cancellation reasons
    asked, downgrades at the next billing date. Undoing a scheduled
    cancellation is always allowed and so is not a setting.
    """

    model_config = ConfigDict(frozen=True)

    allow_cancel: bool = True
    allow_pause: bool = True
    allow_plan_change: bool = True
    allow_quantity_change: bool = True
    ask_cancel_reason: bool = True
    downgrade_timing: DowngradeTiming = "next_billing_date"


PORTAL_SETTING_FIELDS = tuple(PortalSettings.model_fields)


class BusinessChanges(InputModel):
    """A request to change a business's settings: only the fields given change."""

    allow_cancel: bool | None = None
    allow_pause: bool | None = None
    allow_plan_change: bool | None = None
    allow_quantity_change: bool | None = None
    ask_cancel_reason: bool | None = None
    downgrade_timing: DowngradeTiming | None = None
    renewal_reminder_days: int | None = Field(default=None, ge=1, le=MAX_RENEWAL_REMINDER_DAYS)
    license_grace_days: int | None = Field(default=None, ge=0, le=MAX_LICENSE_GRACE_DAYS)

    def given(self) -> dict[str, Any]:
        """The fields that were given (None means "leave it")."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


class Business(BaseModel):
    """A merchant: the owner of API keys and customers."""

    model_config = ConfigDict(frozen=True)

    business_id: str
    name: str
    branding: Branding
    support_email: str | None = None
    default_return_url: str | None = None
    locale: str = "en"
    address: str = ""
    tax_id: str = ""
    created_at: UtcDatetime
    # Days before a renewal the customer gets a reminder email (subscriptions emits it).
    renewal_reminder_days: int = DEFAULT_RENEWAL_REMINDER_DAYS
    # Days an on_hold subscription's license keys keep validating; 0 = subscriptions' default.
    license_grace_days: int = 0
    # What customers may do in the portal; absent in documents stored before it existed.
    portal_settings: PortalSettings = PortalSettings()


# --- API keys ------------------------------------------------------------------------------


class NewApiKey(InputModel):
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
