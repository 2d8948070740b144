"""Domain models of transactional emails: what to send, to whom, and what is logged."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Literal
from urllib.parse import urlsplit

from billing_kit.field_rules import EmailAddress
from billing_kit.scoping import Mode
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    field_validator,
    model_validator,
)

# queued: waiting for its (next) attempt; sending: an attempt holds its lease;
# sent: the relay accepted it; failed: a synchronous SendEmail attempt failed;
# rejected: the relay refused the recipient for good; dead: retries exhausted,
# waiting for an operator's replay.
# The event auth writes (with its outbox) for every customer email it needs.
EMAIL_REQUESTED = "email.requested"

Status = Literal["queued", "sending", "sent", "failed", "rejected", "dead"]

SUPPORTED_LOCALES = ("en", "it")
DEFAULT_LOCALE = "en"
# Accent colours go into a style attribute: only this exact shape is allowed there.
HEX_COLOR = re.compile(r"^#[0-9A-Fa-f]{6}$")
DEFAULT_ACCENT = "#2563EB"
# Control characters would break headers (CR/LF injection) and layouts.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_LINK_LENGTH = 2048
# A week: longer-lived links are not something auth issues.
MAX_LINK_EXPIRES_MINUTES = 7 * 24 * 60


class EmailTemplate(StrEnum):
    """The emails this service knows how to write."""

    SIGN_IN_LINK = "sign_in_link"
    NO_ACCOUNT_FOUND = "no_account_found"
    PORTAL_LINK = "portal_link"
    EMAIL_CHANGE_VERIFY = "email_change_verify"
    EMAIL_CHANGE_NOTICE = "email_change_notice"
    UNIFIED_SIGN_IN_LINK = "unified_sign_in_link"
    UNIFIED_NO_ACCOUNT_FOUND = "unified_no_account_found"
    EMAIL_IN_USE_NOTICE = "email_in_use_notice"
    # Billing emails, written by this service from invoicing's and subscriptions'
    # events (notifications.billing), never requested over gRPC.
    PAYMENT_RECEIPT = "payment_receipt"
    SUBSCRIPTION_ON_HOLD = "subscription_on_hold"
    SUBSCRIPTION_REACTIVATED = "subscription_reactivated"
    SUBSCRIPTION_CANCELLED = "subscription_cancelled"
    CANCELLATION_SCHEDULED = "cancellation_scheduled"
    RENEWAL_REMINDER = "renewal_reminder"
    # subscriptions' license_key.created: the key itself (opened only at send time).
    LICENSE_KEY_DELIVERED = "license_key_delivered"

    @property
    def has_link(self) -> bool:
        """Whether this email carries a one-time link (and so an expiry)."""
        return self not in (
            EmailTemplate.NO_ACCOUNT_FOUND,
            EmailTemplate.EMAIL_CHANGE_NOTICE,
            EmailTemplate.UNIFIED_NO_ACCOUNT_FOUND,
            EmailTemplate.EMAIL_IN_USE_NOTICE,
            EmailTemplate.PAYMENT_RECEIPT,
            EmailTemplate.SUBSCRIPTION_REACTIVATED,
            EmailTemplate.SUBSCRIPTION_CANCELLED,
            EmailTemplate.RENEWAL_REMINDER,
            EmailTemplate.LICENSE_KEY_DELIVERED,
        )

    @property
    def is_billing(self) -> bool:
        """Whether the email is about a payment or subscription (it carries BillingDetails)."""
        return self in BILLING_TEMPLATES

    @property
    def per_business(self) -> bool:
        """Whether the email is about one business (the unified portal spans all)."""
        return self not in (
            EmailTemplate.UNIFIED_SIGN_IN_LINK,
            EmailTemplate.UNIFIED_NO_ACCOUNT_FOUND,
        )


BILLING_TEMPLATES = frozenset(
    {
        EmailTemplate.PAYMENT_RECEIPT,
        EmailTemplate.SUBSCRIPTION_ON_HOLD,
        EmailTemplate.SUBSCRIPTION_REACTIVATED,
        EmailTemplate.SUBSCRIPTION_CANCELLED,
        EmailTemplate.CANCELLATION_SCHEDULED,
        EmailTemplate.RENEWAL_REMINDER,
        EmailTemplate.LICENSE_KEY_DELIVERED,
    }
)
# The longest license key (subscriptions accepts imported keys up to this).
MAX_LICENSE_KEY_LENGTH = 256


class BillingDetails(BaseModel):
    """What a billing email says about the money and the subscription.

    Amounts are minor units of ``currency``; the renderer formats them (and the
    dates) for the recipient's locale with Babel. ``customer_id`` and
    ``invoice_id`` let the delivery worker fetch the receipt's PDF at send time.
    """

    model_config = ConfigDict(frozen=True, str_strip_whitespace=True)

    customer_id: str = Field(default="", max_length=128)
    subscription_id: str = Field(default="", max_length=128)
    product_name: str = Field(default="", max_length=256)
    amount: int | None = Field(default=None, ge=0)
    currency: str = Field(default="", max_length=3)
    # The date the email is about: renewal, end of access, payment.
    date: AwareDatetime | None = None
    invoice_id: str = Field(default="", max_length=128)
    invoice_number: str = Field(default="", max_length=64)
    # License keys: the activations limit (None = unlimited) and the product's
    # activation message; ``date`` is the key's expiry (None = never).
    activations_limit: int | None = Field(default=None, ge=0)
    activation_message: str = Field(default="", max_length=4000)

    @field_validator("activation_message")
    @classmethod
    def _readable_message(cls, value: str) -> str:
        # The merchant's text (products accept any string): line breaks are its layout,
        # other control characters become spaces rather than cost the customer the email.
        lines = value.replace("\r\n", "\n").split("\n")
        return "\n".join(_CONTROL.sub(" ", line) for line in lines)

    @field_validator("product_name", "invoice_number")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if _CONTROL.search(value):
            raise ValueError("must not contain control characters")
        return value

    @field_validator("currency")
    @classmethod
    def _currency_code(cls, value: str) -> str:
        if value and not re.fullmatch(r"[A-Za-z]{3}", value):
            raise ValueError("must be an ISO 4217 code")
        return value.upper()


def resolve_locale(tag: str | None) -> str:
    """The supported language for a BCP 47 tag ("it-IT" -> "it"), English otherwise."""
    if not tag:
        return DEFAULT_LOCALE
    language = tag.replace("_", "-").split("-", 1)[0].strip().lower()
    return language if language in SUPPORTED_LOCALES else DEFAULT_LOCALE


def _is_web_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


class Branding(BaseModel):
    """How the business presents itself in the email."""

    model_config = ConfigDict(frozen=True, str_strip_whitespace=True)

    business_name: str = Field(default="", max_length=120)
    logo_url: str = Field(default="", max_length=MAX_LINK_LENGTH)
    primary_color: str = Field(default="")
    support_email: EmailStr | None = None

    @field_validator("business_name")
    @classmethod
    def _no_control_characters(cls, value: str) -> str:
        if _CONTROL.search(value):
            raise ValueError("must not contain control characters")
        return value

    @field_validator("logo_url")
    @classmethod
    def _logo_is_web_url(cls, value: str) -> str:
        if value and not _is_web_url(value):
            raise ValueError("must be an absolute http(s) URL")
        return value

    @field_validator("primary_color")
    @classmethod
    def _color_is_hex(cls, value: str) -> str:
        if value and not HEX_COLOR.match(value):
            raise ValueError('must look like "#RRGGBB"')
        return value.upper()

    @field_validator("support_email", mode="before")
    @classmethod
    def _empty_means_none(cls, value: object) -> object:
        return value or None

    @property
    def accent(self) -> str:
        """The validated accent colour, or the portal's default."""
        return self.primary_color or DEFAULT_ACCENT


class EmailRequest(BaseModel):
    """One email to send. ``link`` lives only in memory: it is never stored or logged."""

    model_config = ConfigDict(frozen=True, str_strip_whitespace=True)

    template: EmailTemplate
    to: EmailAddress  # auth's rule for customer emails (billing_kit.field_rules)
    locale: str = Field(default=DEFAULT_LOCALE, max_length=35)
    business_id: str = Field(default="", max_length=128)
    mode: Mode
    branding: Branding = Field(default_factory=Branding)
    link: str = Field(default="", max_length=MAX_LINK_LENGTH, repr=False)
    link_expires_minutes: int = Field(default=0, ge=0, le=MAX_LINK_EXPIRES_MINUTES)
    customer_name: str = Field(default="", max_length=256)
    idempotency_key: str | None = Field(default=None, max_length=255)
    billing: BillingDetails | None = None
    # The license key in clear, in memory only (stored sealed, never logged).
    license_key: str = Field(default="", max_length=MAX_LICENSE_KEY_LENGTH, repr=False)

    @field_validator("locale", mode="after")
    @classmethod
    def _supported_locale(cls, value: str) -> str:
        return resolve_locale(value)

    @field_validator("customer_name")
    @classmethod
    def _name_is_one_line(cls, value: str) -> str:
        if _CONTROL.search(value):
            raise ValueError("must not contain control characters")
        return value

    @field_validator("idempotency_key", mode="before")
    @classmethod
    def _empty_key_means_none(cls, value: object) -> object:
        return value or None

    @field_validator("link")
    @classmethod
    def _link_is_web_url(cls, value: str) -> str:
        # The message names no value: the link carries a one-time token.
        if value and not _is_web_url(value):
            raise ValueError("must be an absolute http(s) URL")
        return value

    @model_validator(mode="after")
    def _fits_the_template(self) -> EmailRequest:
        """Each template's own needs: a link or none, a business or the unified portal."""
        template = self.template
        if template.has_link:
            if not self.link:
                raise ValueError(f"link is required for {template.value}")
            if self.link_expires_minutes <= 0:
                raise ValueError(f"link_expires_minutes must be positive for {template.value}")
        elif self.link:
            # The no-account email in particular must never carry a way in.
            raise ValueError(f"{template.value} carries no link")
        # The messages name no value: the key is a secret.
        if template is EmailTemplate.LICENSE_KEY_DELIVERED and not self.license_key:
            raise ValueError(f"license_key is required for {template.value}")
        if template is not EmailTemplate.LICENSE_KEY_DELIVERED and self.license_key:
            raise ValueError(f"{template.value} carries no license_key")
        if template.is_billing and self.billing is None:
            raise ValueError(f"billing is required for {template.value}")
        if template.per_business:
            if not self.business_id:
                raise ValueError(f"business_id is required for {template.value}")
            if not self.branding.business_name:
                raise ValueError(f"branding.business_name is required for {template.value}")
        return self


class QueuedRequest(BaseModel):
    """What a queued email needs besides the log fields: branding, greeting and the
    link sealed for this service (never in clear). Dropped once the email is final."""

    model_config = ConfigDict(frozen=True)

    branding: Branding = Field(default_factory=Branding)
    sealed_link: str = Field(default="", repr=False)
    link_expires_minutes: int = 0
    customer_name: str = ""
    billing: BillingDetails | None = None
    # The license key sealed (subscriptions' seal, opened with LICENSE_KEY_SEAL_KEYS).
    sealed_license_key: str = Field(default="", repr=False)


class EmailRecord(BaseModel):
    """A row of the email log: who was written to, with what, and whether it went out.

    Deliberately without the link, the token or the rendered body.
    """

    model_config = ConfigDict(frozen=True)

    email_id: str
    template: EmailTemplate
    to: str
    business_id: str
    mode: Mode
    locale: str
    status: Status
    created_at: AwareDatetime
    updated_at: AwareDatetime
    sent_at: AwareDatetime | None = None
    idempotency_key: str | None = None
    # Identifies the request an idempotency key was first used with (no link in it).
    request_fingerprint: str
    message_id: str | None = None
    attempts: int = 1
    # A short machine-readable cause of the last failure, never the server's text.
    error: str | None = None
    # Queued emails (email.requested): when the next attempt is due, until when the
    # current attempt holds the record, and what to send (link sealed).
    next_attempt_at: AwareDatetime | None = None
    lease_until: AwareDatetime | None = None
    queued: QueuedRequest | None = None


class RenderedEmail(BaseModel):
    """Subject and both bodies of one email, ready to be put in a MIME message."""

    model_config = ConfigDict(frozen=True)

    subject: str
    text: str = Field(repr=False)
    html: str = Field(repr=False)
    locale: str


class SentEmail(BaseModel):
    """What the caller learns: the email's id and when it was handed to the relay."""

    model_config = ConfigDict(frozen=True)

    email_id: str
    sent_at: datetime


class EmailRequestedData(BaseModel):
    """The ``data`` of ``email.requested`` as this service reads it.

    The link arrives sealed (``billing_kit.sealing``) and is opened only in
    memory when the email is rendered. Unknown fields are ignored so the
    producer can grow the payload.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    email_key: str = Field(min_length=1, max_length=255)
    template: EmailTemplate
    to: str = Field(min_length=3, max_length=320)
    locale: str = Field(default=DEFAULT_LOCALE, max_length=35)
    business_id: str = Field(default="", max_length=128)
    mode: Mode
    business_name: str = ""
    logo_url: str = ""
    primary_color: str = ""
    support_email: str = ""
    sealed_link: str = Field(default="", repr=False)
    link_expires_minutes: int = 0
    customer_name: str = ""
