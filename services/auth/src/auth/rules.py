"""Rules and helpers the three aggregates share: ids, UTC datetimes, email
lookup form, modes, secret hashing, input validation and paging.

The customer-field rules (email, phone, name, URL, metadata, preferred locale)
are :mod:`billing_kit.field_rules`, re-exported here so the gateway's API
schema is generated from the same definitions. Nothing here does I/O.
"""

from __future__ import annotations

import hashlib
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
)

MODES: tuple[Mode, ...] = ("test", "live")


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


def check_mode(value: str) -> Mode:
    """``test`` or ``live``."""
    if value not in MODES:
        raise ValueError("mode must be 'test' or 'live'")
    return value  # type: ignore[return-value]


Email = Annotated[str, AfterValidator(check_email)]
PhoneNumber = Annotated[str | None, AfterValidator(check_phone_number)]
HttpUrl = Annotated[str | None, AfterValidator(check_http_url)]
Name = PersonName
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


class InputModel(BaseModel):
    """Base of the models that validate what a caller sent: unknown fields refused."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class PageRequest(InputModel):
    """Page size/number for simple lists (zero-based pages, as in the Dodo API)."""

    page_size: int = Field(default=DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)
    page_number: int = Field(default=0, ge=0)


def hash_secret(secret: str) -> str:
    """SHA-256 hex digest of a secret.

    The secrets are 256-bit random values, so a fast hash is enough: there is
    nothing to brute-force, and a slow KDF would only cost time on every request.
    """
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()
