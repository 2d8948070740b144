"""Models and rules of portal access: one-time links, sessions, rate-limit windows.

Nothing here does I/O. Raw tokens and session secrets exist only in memory
and in the one response that hands them out; records keep their SHA-256.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from billing_kit.field_rules import check_next_path as check_next_path
from billing_kit.field_rules import portal_home as portal_home
from pydantic import BaseModel, ConfigDict, Field

from auth.rules import Mode, UtcDatetime, hash_secret

# Greppable prefixes: a leaked value is recognisable in a log or a paste and can be revoked.
PORTAL_TOKEN_PREFIX = "cpt_"  # noqa: S105 (a prefix, not a secret)
SESSION_SECRET_PREFIX = "cps_"  # noqa: S105
TOKEN_ID_PREFIX = "ptk_"  # noqa: S105
SESSION_ID_PREFIX = "pss_"
# 32 random bytes = 256 bits, well above the 128-bit floor.
TOKEN_RANDOM_BYTES = 32
# Longer than anything we issue; bigger input is rejected before hashing.
MAX_TOKEN_LENGTH = 128
# A hand-off's browser binding: 32+ URL-safe characters (192+ random bits).
MIN_BINDING_LENGTH = 32

_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]+$")


class Purpose(StrEnum):
    """What a one-time token is for."""

    SIGN_IN = "sign_in"
    MAGIC_LINK = "magic_link"
    UNIFIED_SIGN_IN = "unified_sign_in"
    EMAIL_CHANGE = "email_change"
    # Unified portal -> live per-business portal (possibly another host); never emailed.
    HANDOFF = "handoff"

    @property
    def starts_session(self) -> bool:
        """Whether ConsumeToken accepts it: a link opened from an email that signs in.

        An email-change token only confirms an address; a hand-off token is
        spent only by ConsumeHandoffToken, on the live site.
        """
        return self in (Purpose.SIGN_IN, Purpose.MAGIC_LINK, Purpose.UNIFIED_SIGN_IN)


class TokenState(StrEnum):
    """What opening a link would find."""

    VALID = "valid"
    USED = "used"
    EXPIRED = "expired"
    UNKNOWN = "unknown"


class SessionKind(StrEnum):
    """Per-business (one customer) or unified (one verified email, live mode)."""

    BUSINESS = "business"
    UNIFIED = "unified"


# --- tokens --------------------------------------------------------------------------------


def generate_portal_token() -> str:
    """A new one-time link token: ``cpt_`` + 256 random bits (urlsafe base64)."""
    return PORTAL_TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_RANDOM_BYTES)


def generate_session_secret() -> str:
    """A new session cookie value: ``cps_`` + 256 random bits."""
    return SESSION_SECRET_PREFIX + secrets.token_urlsafe(TOKEN_RANDOM_BYTES)


def generate_csrf_token() -> str:
    """A per-session CSRF token (not a credential by itself; stored as is)."""
    return secrets.token_urlsafe(32)


def browser_binding_hash(binding: str) -> str | None:
    """The hash a hand-off's browser binding is kept under; None when it is malformed.

    The binding is a random value the live site keeps in the browser's cookie
    (at least 32 URL-safe characters, so it cannot be guessed).
    """
    if not MIN_BINDING_LENGTH <= len(binding) <= MAX_TOKEN_LENGTH:
        return None
    if not _TOKEN_SHAPE.match(binding):
        return None
    return hash_secret(binding)


def token_hash(token: str, prefix: str = PORTAL_TOKEN_PREFIX) -> str | None:
    """The SHA-256 a well-formed token is stored under; None for anything else.

    Malformed input never reaches the database and costs no hashing.
    """
    if not token or len(token) > MAX_TOKEN_LENGTH or not token.startswith(prefix):
        return None
    if not _TOKEN_SHAPE.match(token[len(prefix) :]):
        return None
    return hash_secret(token)


class PortalToken(BaseModel):
    """A one-time link as stored (never the token itself)."""

    model_config = ConfigDict(frozen=True)

    token_id: str
    purpose: Purpose
    business_id: str | None = None
    mode: Mode
    customer_id: str | None = None
    # The verified-to-be address: the unified sign-in email or the new address of an email change.
    email: str | None = None
    next_path: str | None = None
    return_url: str | None = None
    # A hand-off token is bound to the unified session that asked for it...
    unified_session_id: str | None = None
    # ...and to the browser: the hash of the live site's cookie value in it.
    browser_binding_hash: str | None = None
    created_at: UtcDatetime
    expires_at: UtcDatetime
    used_at: UtcDatetime | None = None
    # A link minted for another service's email (CreateCustomerLink): the caller's
    # idempotency key and the link sealed for notifications, so a repeat returns it.
    link_key: str | None = None
    sealed_link: str | None = Field(default=None, repr=False)


def token_state(token: PortalToken | None, now: datetime) -> TokenState:
    """The state of a (possibly missing) token at ``now``: used wins over expired."""
    if token is None:
        return TokenState.UNKNOWN
    if token.used_at is not None:
        return TokenState.USED
    if token.expires_at <= now:
        return TokenState.EXPIRED
    return TokenState.VALID


# --- sessions ------------------------------------------------------------------------------


class PortalSession(BaseModel):
    """A signed-in browser, as stored (the secret only as its hash)."""

    model_config = ConfigDict(frozen=True)

    session_id: str
    kind: SessionKind
    business_id: str | None = None
    mode: Mode
    customer_id: str | None = None
    # Normalized verified email of a unified session.
    email: str | None = None
    csrf_token: str = Field(repr=False)
    created_at: UtcDatetime
    last_seen_at: UtcDatetime
    idle_expires_at: UtcDatetime
    absolute_expires_at: UtcDatetime
    ended_at: UtcDatetime | None = None
    return_url: str | None = None
    unified_session_id: str | None = None

    @property
    def expires_at(self) -> datetime:
        """When the session stops working if unused: the earlier of its two limits."""
        return min(self.idle_expires_at, self.absolute_expires_at)

    def is_active(self, now: datetime) -> bool:
        """Not ended and within both the idle and the absolute limit."""
        return self.ended_at is None and now < self.expires_at


@dataclass(frozen=True)
class StartedSession:
    """A new session and the only copy of its cookie value."""

    session: PortalSession
    secret: str
    next_path: str


def new_session_times(
    now: datetime, *, idle_seconds: int, absolute_seconds: int, absolute_cap: datetime | None
) -> tuple[datetime, datetime]:
    """(idle_expires_at, absolute_expires_at) of a session starting at ``now``.

    ``absolute_cap`` bounds a session opened from another one (a business area
    opened from the unified portal ends when the unified session would).
    """
    absolute = now + timedelta(seconds=absolute_seconds)
    if absolute_cap is not None:
        absolute = min(absolute, absolute_cap)
    return min(now + timedelta(seconds=idle_seconds), absolute), absolute


# --- next paths and links ------------------------------------------------------------------


@dataclass(frozen=True)
class BaseUrls:
    """Where links point: one base per mode for business portals, one for the unified portal."""

    live: str
    test: str
    unified: str

    def portal(self, mode: Mode) -> str:
        """The portal base URL of a mode."""
        return self.live if mode == "live" else self.test

    def token_link(self, purpose: Purpose, mode: Mode, token: str) -> str:
        """The URL a one-time token is opened at."""
        if purpose is Purpose.UNIFIED_SIGN_IN:
            return f"{self.unified}/link/{token}"
        if purpose is Purpose.EMAIL_CHANGE:
            return f"{self.portal(mode)}/email-change/{token}"
        if purpose is Purpose.HANDOFF:
            return f"{self.portal(mode)}/handoff/{token}"
        return f"{self.portal(mode)}/link/{token}"

    def static_link(self, business_id: str, mode: Mode) -> str:
        """The business's never-expiring sign-in page for a mode."""
        return f"{self.portal(mode)}/login/{business_id}"


# --- rate limits ---------------------------------------------------------------------------


def rate_limit_key(scope: str, key: str) -> str:
    """The counter id of (scope, key); the key is hashed (no emails stored)."""
    return f"{scope}:{hash_secret(key)[:32]}"


def hits_in_window(hits: list[datetime], now: datetime, window_seconds: int) -> int:
    """How many of a counter's recorded hits fall in the sliding window ending at ``now``.

    A sliding window, not fixed ones aligned to the clock: with fixed windows a
    burst straddling a boundary gets twice the limit through.
    """
    since = now - timedelta(seconds=window_seconds)
    return sum(1 for hit in hits if _aware(hit) > since)


def _aware(moment: datetime) -> datetime:
    # The driver hands back naive UTC datetimes unless the client is tz-aware.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


EMAIL_REQUESTED = "email.requested"


class EmailRequestedData(BaseModel):
    """``data`` of an ``email.requested`` event: one customer email for notifications.

    Written to the outbox in the transaction of the state that needs the email
    (the one-time token), so the email exists exactly when the token does. The
    link is sealed for notifications: no usable token in the outbox or the queue.
    """

    model_config = ConfigDict(frozen=True)

    email_key: str = Field(
        description="Stable key of this email (the token id for a link email): one email per key."
    )
    template: str = Field(description="notifications' template name, e.g. sign_in_link.")
    to: str = Field(description="Recipient address.")
    locale: str = Field(description="BCP 47 language of the email.")
    business_id: str = Field(description="The business the email is about; empty for unified.")
    mode: Mode = Field(description="test or live.")
    business_name: str = Field(description="Shown as the sender's name and in the body.")
    logo_url: str = Field(description="The business's logo, or empty.")
    primary_color: str = Field(description="The business's accent colour #RRGGBB, or empty.")
    support_email: str = Field(description="Reply-To, or empty.")
    sealed_link: str = Field(
        description="The one-time link sealed for notifications (Fernet), or empty.", repr=False
    )
    link_expires_minutes: int = Field(description="Shown in the email; 0 without a link.")
    customer_name: str = Field(description="Greeting name, may be empty.")
