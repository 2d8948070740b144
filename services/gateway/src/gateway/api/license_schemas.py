"""Request and response bodies of the license APIs, in Dodo's shapes (SDK 1.123 §8).

Public: ``/licenses/activate|deactivate|validate``. Merchant: ``/license_keys`` and
``/license_key_instances``. The key and instance name rules are the subscriptions
service's; these models only shape the wire.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from billing.subscriptions.v1 import licenses_pb2
from billing_kit.catalog_fields import MAX_ACTIVATIONS_LIMIT, json_integer
from billing_kit.field_rules import PageSize
from billing_kit.scoping import MAX_PAGE_NUMBER
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from gateway.api.parsing import Rfc3339
from gateway.api.schemas import SdkPages, _query_int


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# Any string: an unknown or malformed key gets the one "invalid" answer from the service,
# not a 422 that would tell a malformed key from an unknown one.
LicenseKeyText = Annotated[str, Field(max_length=10_000, description="The license key.")]
# Not only whitespace: the service trims the name (as it does a key).
InstanceName = Annotated[
    str,
    Field(min_length=1, max_length=256, pattern=r"\S", description="The device or install's name."),
]


class ActivateLicenseBody(_Body):
    """``POST /licenses/activate``."""

    license_key: LicenseKeyText
    name: InstanceName


class DeactivateLicenseBody(_Body):
    """``POST /licenses/deactivate``."""

    license_key: LicenseKeyText
    license_key_instance_id: str = Field(max_length=256, description="The instance to remove.")


class ValidateLicenseBody(_Body):
    """``POST /licenses/validate``."""

    license_key: LicenseKeyText
    license_key_instance_id: str | None = Field(
        default=None, max_length=256, description="Also check this instance is the key's."
    )


class ValidateLicenseOut(BaseModel):
    """``{valid}``."""

    valid: bool


class ActivatedCustomerOut(BaseModel):
    """Dodo's CustomerLimitedDetails."""

    customer_id: str
    email: str
    name: str


class ActivatedProductOut(BaseModel):
    """The key's product."""

    product_id: str
    name: str | None = None


class LicenseActivateOut(BaseModel):
    """Dodo's LicenseActivateResponse: the new instance."""

    id: str = Field(description="The license key instance id.")
    business_id: str
    created_at: datetime
    customer: ActivatedCustomerOut
    license_key_id: str
    name: str
    product: ActivatedProductOut


def _time(stamp: Timestamp) -> datetime:
    return stamp.ToDatetime(tzinfo=UTC)


class LicenseKeyOut(BaseModel):
    """Dodo's LicenseKey."""

    id: str
    brand_id: str = Field(description="The business id (one brand per business here).")
    business_id: str
    created_at: datetime
    customer_id: str
    instances_count: int
    key: str
    product_id: str
    source: Literal["auto", "import", "manual"]
    status: Literal["active", "expired", "disabled"]
    activations_limit: int | None
    expires_at: datetime | None
    payment_id: str | None
    subscription_id: str | None

    @classmethod
    def from_proto(cls, key: licenses_pb2.LicenseKey) -> LicenseKeyOut:
        """The wire shape of a stored key."""
        return cls(
            id=key.license_key_id,
            brand_id=key.business_id,
            business_id=key.business_id,
            created_at=_time(key.created_at),
            customer_id=key.customer_id,
            instances_count=key.instances_count,
            key=key.key,
            product_id=key.product_id,
            source=key.source,  # type: ignore[arg-type]
            status=key.status,  # type: ignore[arg-type]
            activations_limit=(
                key.activations_limit if key.HasField("activations_limit") else None
            ),
            expires_at=_time(key.expires_at) if key.HasField("expires_at") else None,
            payment_id=key.payment_id or None,
            subscription_id=key.subscription_id or None,
        )


class LicenseKeyListOut(BaseModel):
    """One page of keys."""

    items: list[LicenseKeyOut]


class LicenseKeyInstanceOut(BaseModel):
    """Dodo's LicenseKeyInstance."""

    id: str
    business_id: str
    created_at: datetime
    license_key_id: str
    name: str

    @classmethod
    def from_proto(cls, instance: licenses_pb2.LicenseKeyInstance) -> LicenseKeyInstanceOut:
        """The wire shape of an instance."""
        return cls(
            id=instance.instance_id,
            business_id=instance.business_id,
            created_at=_time(instance.created_at),
            license_key_id=instance.license_key_id,
            name=instance.name,
        )


class LicenseKeyInstanceListOut(BaseModel):
    """One page of instances."""

    items: list[LicenseKeyInstanceOut]


ActivationsLimitIn = Annotated[
    int, Field(ge=0, le=MAX_ACTIVATIONS_LIMIT), BeforeValidator(json_integer)
]


class CreateLicenseKeyBody(_Body):
    """``POST /license_keys``: import a key the merchant made."""

    customer_id: str = Field(min_length=1, max_length=128)
    key: str = Field(min_length=1, max_length=256, pattern=r"\S")
    product_id: str = Field(min_length=1, max_length=128)
    activations_limit: ActivationsLimitIn | None = Field(
        default=None, description="null: unlimited."
    )
    expires_at: Rfc3339 | None = Field(default=None, description="null: never expires.")


class UpdateLicenseKeyBody(_Body):
    """``PATCH /license_keys/{id}``: absent = unchanged; null clears the limit or expiry."""

    activations_limit: ActivationsLimitIn | None = Field(
        default=None, description="null: unlimited; absent: unchanged."
    )
    disabled: bool | None = Field(default=None, description="true disables, false re-enables.")
    expires_at: Rfc3339 | None = Field(
        default=None, description="null: never expires; absent: unchanged."
    )


class UpdateLicenseKeyInstanceBody(_Body):
    """``PATCH /license_key_instances/{id}``."""

    name: InstanceName


PageNumberIn = Annotated[int, Field(ge=0, le=MAX_PAGE_NUMBER), BeforeValidator(_query_int)]


class _Page(SdkPages, _Body):
    page_size: Annotated[PageSize, BeforeValidator(_query_int)] = Field(
        default=10, description="Page size, at most 100."
    )
    page_number: PageNumberIn = Field(
        default=0,
        description="Page number: 0 or 1 is the first page, 2 the second, … (as the SDK's "
        "auto-pagination asks for them).",
    )


class ListLicenseKeysQuery(_Page):
    """Query string of ``GET /license_keys``."""

    customer_id: str | None = Field(default=None, min_length=1, max_length=128)
    product_id: str | None = Field(default=None, min_length=1, max_length=128)
    status: Literal["active", "expired", "disabled"] | None = None


class ListLicenseKeyInstancesQuery(_Page):
    """Query string of ``GET /license_key_instances``."""

    license_key_id: str | None = Field(default=None, min_length=1, max_length=128)
