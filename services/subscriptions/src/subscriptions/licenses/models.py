"""License keys and their activated instances (Dodo's LicenseKey / LicenseKeyInstance).

A key is never stored in plaintext: ``key_hash`` (SHA-256 of the key, unique)
finds it when the software presents it, and ``key_sealed`` (Fernet under
``SUBSCRIPTIONS_LICENSE_KEY_SEAL_KEYS``) lets its owner see it again. A copy of
the database alone therefore holds nothing that activates anything.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from datetime import datetime
from enum import StrEnum

from billing_kit.scoping import Mode
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

LICENSE_KEY_PREFIX = "lic_"
INSTANCE_PREFIX = "lki_"
LICENSE_KEY_CREATED = "license_key.created"
# Longest key (imported ones) and instance name accepted.
MAX_KEY_LENGTH = 256
MAX_NAME_LENGTH = 256
# 6 groups of 5 base32 characters: 150 random bits, no 0/1/8/9 to misread.
_GROUPS = 6
_GROUP = 5


class LicenseKeyStatus(StrEnum):
    """Dodo's LicenseKeyStatus."""

    ACTIVE = "active"
    EXPIRED = "expired"
    DISABLED = "disabled"


class LicenseKeySource(StrEnum):
    """Where a key came from: a payment (auto) or the merchant (import)."""

    AUTO = "auto"
    IMPORT = "import"


def new_license_key() -> str:
    """A fresh key: ``XXXXX-XXXXX-XXXXX-XXXXX-XXXXX-XXXXX`` from ``secrets`` (150 bits)."""
    text = base64.b32encode(secrets.token_bytes(20)).decode()[: _GROUPS * _GROUP]
    return "-".join(text[i : i + _GROUP] for i in range(0, len(text), _GROUP))


def normalize_key(key: str) -> str:
    """The key as looked up: surrounding blanks (a sloppy paste) do not matter."""
    return key.strip()


def hash_key(key: str) -> str:
    """The lookup hash of a key (hex SHA-256 of its normalized form)."""
    return hashlib.sha256(normalize_key(key).encode()).hexdigest()


class LicenseKey(BaseModel):
    """The stored key (``license_keys``)."""

    model_config = ConfigDict(frozen=True)

    license_key_id: str = Field(min_length=1)
    business_id: str = Field(min_length=1)
    mode: Mode
    customer_id: str = Field(min_length=1)
    product_id: str = Field(min_length=1)
    source: LicenseKeySource
    key_hash: str
    key_sealed: str
    activations_limit: int | None = Field(default=None, ge=0)
    instances_count: int = Field(default=0, ge=0)
    expires_at: AwareDatetime | None = None
    disabled: bool = False
    payment_id: str = ""
    subscription_id: str = ""
    # What the key was issued for (a payment, a subscription, an import) and which unit
    # of it: unique with product_id, so a redelivered event issues nothing twice.
    purchase_id: str
    unit: int = Field(default=0, ge=0)
    activation_message: str = ""
    # The product's name when the key was issued, so a list needs no product lookups.
    product_name: str = ""
    created_at: AwareDatetime
    updated_at: AwareDatetime

    def status_at(self, now: datetime) -> LicenseKeyStatus:
        """Disabled by the merchant, past its expiry, or active."""
        if self.disabled:
            return LicenseKeyStatus.DISABLED
        if self.expires_at is not None and now >= self.expires_at:
            return LicenseKeyStatus.EXPIRED
        return LicenseKeyStatus.ACTIVE


class LicenseKeyInstance(BaseModel):
    """One activation of a key (``license_key_instances``)."""

    model_config = ConfigDict(frozen=True)

    instance_id: str = Field(min_length=1)
    license_key_id: str = Field(min_length=1)
    business_id: str = Field(min_length=1)
    mode: Mode
    customer_id: str = Field(min_length=1)
    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH)
    created_at: AwareDatetime


class LicenseKeyCreatedData(BaseModel):
    """The data of ``license_key.created``: enough for the key-delivered email."""

    license_key_id: str = Field(description="lic_…")
    business_id: str = Field(description="the owning business")
    mode: Mode = Field(description='"test" or "live"')
    customer_id: str = Field(description="the customer the key belongs to")
    product_id: str = Field(description="the product it unlocks")
    source: LicenseKeySource = Field(description="auto (a payment) or import")
    payment_id: str = Field(description="the payment that bought it, or empty")
    subscription_id: str = Field(description="the subscription it follows, or empty")
    key_sealed: str = Field(
        description="the key, Fernet-sealed under SUBSCRIPTIONS_LICENSE_KEY_SEAL_KEYS"
    )
    activation_message: str = Field(description="the product's activation message, or empty")
    activations_limit: int | None = Field(description="null = unlimited")
    expires_at: AwareDatetime | None = Field(description="null = never")
    # Additions for the key-delivered email and the Dodo-shaped webhook (defaults keep
    # older events readable).
    product_name: str = Field(default="", description="the product's name when issued")
    instances_count: int = Field(default=0, description="activations so far")
    disabled: bool = Field(default=False, description="disabled by the merchant")
    created_at: AwareDatetime | None = Field(default=None, description="when it was issued")

    @classmethod
    def of(cls, key: LicenseKey) -> LicenseKeyCreatedData:
        """The event data for ``key``."""
        return cls.model_validate({k: getattr(key, k) for k in cls.model_fields})
