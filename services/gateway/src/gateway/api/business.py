"""Merchant API extension: the calling business's own settings (``GET``/``PATCH /business``).

What customers may do themselves in the portal (cancel, pause, change plan or
quantity; whether a cancellation asks why; when downgrades apply) and the
renewal-reminder and license-grace days. The Dodo SDK has no such call: use
``client.get("/business", cast_to=object)`` / ``client.patch(...)`` or plain HTTP.

The settings are the business's, so a key of either mode reads and changes the
same ones. Auth owns them (``UpdateBusiness``, audited with the calling key's
id); after a change this gateway forgets its cached copy of the business at
once, and other gateway replicas within ``GATEWAY_BUSINESS_CACHE_SECONDS``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from aiohttp import web
from billing.auth.v1 import auth_pb2
from billing_kit.errors import InvalidArgument
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StrictInt

from gateway.api.merchant import merchant_api
from gateway.api.parsing import parse_json_body
from gateway.api_keys import Merchant
from gateway.keys import AUTH_STUB, BUSINESSES
from gateway.problems import ApiProblem, reason_errors

DowngradeTiming = Literal["next_billing_date", "immediately"]
_TIMINGS: dict[str, auth_pb2.DowngradeTiming.ValueType] = {
    "next_billing_date": auth_pb2.DOWNGRADE_TIMING_NEXT_BILLING_DATE,
    "immediately": auth_pb2.DOWNGRADE_TIMING_IMMEDIATELY,
}
_TIMING_NAMES: dict[int, DowngradeTiming] = {
    auth_pb2.DOWNGRADE_TIMING_NEXT_BILLING_DATE: "next_billing_date",
    auth_pb2.DOWNGRADE_TIMING_IMMEDIATELY: "immediately",
}
# Auth's ranges (auth.merchants.models), so the document states them.
MAX_RENEWAL_REMINDER_DAYS = 30
MAX_LICENSE_GRACE_DAYS = 365
SWITCHES = (
    "allow_cancel",
    "allow_pause",
    "allow_plan_change",
    "allow_quantity_change",
    "ask_cancel_reason",
)


def _not_nullable(schema: dict[str, Any]) -> None:
    # Absent means "unchanged"; null is refused, so the document offers neither.
    branches = schema.pop("anyOf", None)
    if branches is not None:
        schema.update(next(b for b in branches if b.get("type") != "null"))
    schema.pop("default", None)


def _refuse_null(value: Any) -> Any:
    # Optional only so that an absent field reads as None; a sent null is refused
    # (with the field's own name, which a union with None would not give).
    if value is None:
        raise ValueError("must not be null; leave the field out to keep its value")
    return value


Bool = Annotated[StrictBool | None, BeforeValidator(_refuse_null)]
Timing = Annotated[DowngradeTiming | None, BeforeValidator(_refuse_null)]


def _whole_number(value: Any) -> Any:
    # JSON Schema's "integer" includes 28.0; a bool, a string or 28.5 is not one.
    value = _refuse_null(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("must be a whole number")
    return value


Days = Annotated[StrictInt | None, BeforeValidator(_whole_number)]


class PortalSettingsOut(BaseModel):
    """What the business's customers may do themselves in the portal."""

    allow_cancel: bool = Field(
        description="Customers may cancel (undoing a scheduled cancellation is always allowed)."
    )
    allow_pause: bool = Field(
        description="Customers may pause (resuming a paused subscription is always allowed)."
    )
    allow_plan_change: bool = Field(description="Customers may switch to another plan.")
    allow_quantity_change: bool = Field(description="Customers may change seats and add-ons.")
    ask_cancel_reason: bool = Field(
        description="The cancel page asks why (cancellation_feedback) and for a comment."
    )
    downgrade_timing: DowngradeTiming = Field(
        description="When a customer's downgrade (cheaper plan, fewer units) takes effect."
    )


class BusinessSettingsOut(BaseModel):
    """``GET``/``PATCH /business`` (extension): the calling business's settings."""

    business_id: str
    name: str
    portal_settings: PortalSettingsOut
    renewal_reminder_days: int = Field(
        description="Days before a renewal that the customer is reminded by email (1..30)."
    )
    license_grace_days: int = Field(
        description="Days an on_hold subscription's license keys keep validating after its "
        "paid period (0..365; 0 = the service default, 7)."
    )

    @classmethod
    def from_proto(cls, business: auth_pb2.Business) -> BusinessSettingsOut:
        """Auth's answer (portal_settings always filled in; unset reads as the defaults)."""
        settings = business.portal_settings
        given = business.HasField("portal_settings")
        return cls(
            business_id=business.business_id,
            name=business.name,
            portal_settings=PortalSettingsOut(
                **{name: getattr(settings, name) if given else True for name in SWITCHES},
                downgrade_timing=_TIMING_NAMES.get(settings.downgrade_timing, "next_billing_date"),
            ),
            renewal_reminder_days=business.renewal_reminder_days,
            license_grace_days=business.license_grace_days,
        )


def _switch(description: str) -> Any:
    return Field(default=None, description=description, json_schema_extra=_not_nullable)


class PortalSettingsChanges(BaseModel):
    """Only the settings sent change."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    allow_cancel: Bool = _switch("Customers may cancel.")
    allow_pause: Bool = _switch("Customers may pause.")
    allow_plan_change: Bool = _switch("Customers may switch to another plan.")
    allow_quantity_change: Bool = _switch("Customers may change seats and add-ons.")
    ask_cancel_reason: Bool = _switch("The cancel page asks why and for a comment.")
    downgrade_timing: Timing = _switch("When a customer's downgrade takes effect.")


class UpdateBusinessBody(BaseModel):
    """``PATCH /business`` (extension): only the fields sent change; unknown ones are a 422."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    portal_settings: Annotated[PortalSettingsChanges | None, BeforeValidator(_refuse_null)] = Field(
        default=None,
        description="What customers may do in the portal (only the keys sent change).",
        json_schema_extra=_not_nullable,
    )
    renewal_reminder_days: Days = Field(
        default=None,
        ge=1,
        le=MAX_RENEWAL_REMINDER_DAYS,
        description="Days before a renewal that the customer is reminded by email.",
        json_schema_extra=_not_nullable,
    )
    license_grace_days: Days = Field(
        default=None,
        ge=0,
        le=MAX_LICENSE_GRACE_DAYS,
        description="Days an on_hold subscription's license keys keep validating after its "
        "paid period; 0 = the service default (7).",
        json_schema_extra=_not_nullable,
    )


async def _get(request: web.Request, merchant: Merchant) -> auth_pb2.Business:
    business: auth_pb2.Business = await request.app[AUTH_STUB].GetBusiness(
        auth_pb2.GetBusinessRequest(business_id=merchant.business_id)
    )
    return business


@merchant_api
async def retrieve_business(request: web.Request, merchant: Merchant) -> web.Response:
    """``GET /business`` (extension): the calling business's settings."""
    business = await _get(request, merchant)
    return web.json_response(BusinessSettingsOut.from_proto(business).model_dump(mode="json"))


@merchant_api
async def update_business(request: web.Request, merchant: Merchant) -> web.Response:
    """``PATCH /business`` (extension): change only the settings sent (audited as the key)."""
    body = await parse_json_body(request, UpdateBusinessBody)
    changes: dict[str, Any] = {}
    if body.portal_settings is not None:
        for name in SWITCHES:
            value = getattr(body.portal_settings, name)
            if value is not None:
                changes[name] = value
        if body.portal_settings.downgrade_timing is not None:
            changes["downgrade_timing"] = _TIMINGS[body.portal_settings.downgrade_timing]
    for name in ("renewal_reminder_days", "license_grace_days"):
        value = getattr(body, name)
        if value is not None:
            changes[name] = value
    if not changes:
        business = await _get(request, merchant)
    else:
        try:
            business = await request.app[AUTH_STUB].UpdateBusiness(
                auth_pb2.UpdateBusinessRequest(
                    business_id=merchant.business_id, actor=merchant.key_id, **changes
                )
            )
        except InvalidArgument as refused:
            # Auth's range checks are the gateway's too; this is the backstop.
            renamed = {name: f"portal_settings.{name}" for name in (*SWITCHES, "downgrade_timing")}
            raise ApiProblem(
                422,
                "INVALID_REQUEST_BODY",
                f"Invalid body: {refused.message}",
                errors=reason_errors(refused, renamed),
            ) from None
        request.app[BUSINESSES].forget(merchant.business_id)
    return web.json_response(BusinessSettingsOut.from_proto(business).model_dump(mode="json"))


MODELS: tuple[type[BaseModel], ...] = (BusinessSettingsOut, UpdateBusinessBody)


def business_paths(
    *,
    json: Any,
    ref: Any,
    common_errors: dict[str, Any],
    body_errors: dict[str, Any],
) -> dict[str, Any]:
    """``/business`` (extension): the calling business's portal settings."""
    return {
        "/business": {
            "get": {
                "operationId": "retrieve_business",
                "summary": "Extension: the calling business's settings (what customers may do "
                "in the portal, reminder and license grace days)",
                "responses": {
                    "200": json(BusinessSettingsOut, "The business's settings"),
                    **common_errors,
                },
            },
            "patch": {
                "operationId": "update_business",
                "summary": "Extension: change the business's settings (only the fields sent; "
                "a key of either mode changes the business's one set of settings)",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": ref(UpdateBusinessBody)}},
                },
                "responses": {
                    "200": json(BusinessSettingsOut, "The business's settings after the change"),
                    **body_errors,
                    **common_errors,
                },
            },
        },
    }
