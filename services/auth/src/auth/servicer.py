"""gRPC adapter: ``billing.auth.v1.AuthService`` requests -> use cases -> responses.

The RPCs of one proto service span two aggregates, so this adapter stays one
and delegates: businesses and API keys to :class:`MerchantService`, customer
records to :class:`CustomerService`.

Only translation lives here. Domain errors are raised as they are; the kit's
server interceptor turns them into status codes with a machine-readable reason.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from billing.auth.v1 import auth_pb2, auth_pb2_grpc
from billing_kit.scoping import mode_from_proto, mode_to_proto
from google.protobuf.timestamp_pb2 import Timestamp

from auth.customers.models import Customer
from auth.customers.service import CustomerService
from auth.merchants.models import ApiKey, Business, DowngradeTiming, PortalSettings
from auth.merchants.service import MerchantService

Context = Any  # grpc.aio.ServicerContext; unused by these handlers


def _timestamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


_DOWNGRADE_TIMINGS: dict[DowngradeTiming, auth_pb2.DowngradeTiming.ValueType] = {
    "next_billing_date": auth_pb2.DOWNGRADE_TIMING_NEXT_BILLING_DATE,
    "immediately": auth_pb2.DOWNGRADE_TIMING_IMMEDIATELY,
}
_DOWNGRADE_TIMING_NAMES = {number: name for name, number in _DOWNGRADE_TIMINGS.items()}


# UpdateBusinessRequest's optional fields (HasField tells given from default).
_OptionalSetting = Literal[
    "allow_cancel",
    "allow_pause",
    "allow_plan_change",
    "allow_quantity_change",
    "ask_cancel_reason",
    "renewal_reminder_days",
    "license_grace_days",
]


def portal_settings_to_proto(settings: PortalSettings) -> auth_pb2.PortalSettings:
    """The wire form of a business's portal settings (always filled in)."""
    return auth_pb2.PortalSettings(
        allow_cancel=settings.allow_cancel,
        allow_pause=settings.allow_pause,
        allow_plan_change=settings.allow_plan_change,
        allow_quantity_change=settings.allow_quantity_change,
        ask_cancel_reason=settings.ask_cancel_reason,
        downgrade_timing=_DOWNGRADE_TIMINGS[settings.downgrade_timing],
    )


def downgrade_timing_from_proto(value: int) -> str | None:
    """``next_billing_date`` / ``immediately``; None for UNSPECIFIED (leave it);
    an unknown number is passed on as itself so validation names the field."""
    if value == auth_pb2.DOWNGRADE_TIMING_UNSPECIFIED:
        return None
    name: str = _DOWNGRADE_TIMING_NAMES.get(value, str(value))  # type: ignore[call-overload]
    return name


def business_to_proto(business: Business) -> auth_pb2.Business:
    """The wire form of a business."""
    return auth_pb2.Business(
        business_id=business.business_id,
        name=business.name,
        branding=auth_pb2.Branding(
            logo_url=business.branding.logo_url or "",
            primary_color=business.branding.primary_color or "",
        ),
        support_email=business.support_email or "",
        default_return_url=business.default_return_url or "",
        locale=business.locale,
        created_at=_timestamp(business.created_at),
        renewal_reminder_days=business.renewal_reminder_days,
        license_grace_days=business.license_grace_days,
        address=business.address,
        tax_id=business.tax_id,
        portal_settings=portal_settings_to_proto(business.portal_settings),
    )


def api_key_to_proto(api_key: ApiKey) -> auth_pb2.ApiKey:
    """The wire form of an API key (never the secret)."""
    return auth_pb2.ApiKey(
        key_id=api_key.key_id,
        business_id=api_key.business_id,
        mode=mode_to_proto(api_key.mode),
        name=api_key.name,
        display_prefix=api_key.display_prefix,
        created_at=_timestamp(api_key.created_at),
        revoked_at=_timestamp(api_key.revoked_at),
    )


def customer_to_proto(customer: Customer) -> auth_pb2.Customer:
    """The wire form of a customer."""
    details = customer.billing_details
    message = auth_pb2.Customer(
        customer_id=customer.customer_id,
        business_id=customer.business_id,
        mode=mode_to_proto(customer.mode),
        email=customer.email,
        name=customer.name,
        phone_number=customer.phone_number or "",
        created_at=_timestamp(customer.created_at),
        metadata=customer.metadata,
        preferred_locale=customer.preferred_locale or "",
    )
    if details is not None:
        message.billing_details.CopyFrom(auth_pb2.CustomerBillingDetails(**details.model_dump()))
    return message


def _page(value: int) -> int | None:
    # proto3 cannot tell 0 from unset: 0 means "use the default" for page sizes.
    return value or None


class AuthServicer(auth_pb2_grpc.AuthServiceServicer):
    """Serves ``billing.auth.v1.AuthService`` from the merchant and customer use cases."""

    def __init__(self, merchants: MerchantService, customers: CustomerService) -> None:
        self.merchants = merchants
        self.customers = customers

    async def CreateBusiness(
        self, request: auth_pb2.CreateBusinessRequest, context: Context
    ) -> auth_pb2.Business:
        """Create a business."""
        business = await self.merchants.create_business(
            name=request.name,
            branding={
                "logo_url": request.branding.logo_url,
                "primary_color": request.branding.primary_color,
            },
            support_email=request.support_email,
            default_return_url=request.default_return_url,
            locale=request.locale,
            renewal_reminder_days=request.renewal_reminder_days,
            license_grace_days=request.license_grace_days,
            address=request.address,
            tax_id=request.tax_id,
        )
        return business_to_proto(business)

    async def GetBusiness(
        self, request: auth_pb2.GetBusinessRequest, context: Context
    ) -> auth_pb2.Business:
        """One business."""
        return business_to_proto(await self.merchants.get_business(request.business_id))

    async def UpdateBusiness(
        self, request: auth_pb2.UpdateBusinessRequest, context: Context
    ) -> auth_pb2.Business:
        """Change only the settings the request sets (our extension: PATCH /business)."""
        optional: tuple[_OptionalSetting, ...] = (
            "allow_cancel",
            "allow_pause",
            "allow_plan_change",
            "allow_quantity_change",
            "ask_cancel_reason",
            "renewal_reminder_days",
            "license_grace_days",
        )
        fields: dict[str, Any] = {
            name: getattr(request, name) for name in optional if request.HasField(name)
        }
        fields["downgrade_timing"] = downgrade_timing_from_proto(request.downgrade_timing)
        business = await self.merchants.update_business(
            request.business_id, actor=request.actor, **fields
        )
        return business_to_proto(business)

    async def ListBusinesses(
        self, request: auth_pb2.ListBusinessesRequest, context: Context
    ) -> auth_pb2.ListBusinessesResponse:
        """A page of businesses, newest first."""
        businesses = await self.merchants.list_businesses(
            page_size=_page(request.page_size), page_number=request.page_number
        )
        return auth_pb2.ListBusinessesResponse(
            businesses=[business_to_proto(b) for b in businesses]
        )

    async def CreateApiKey(
        self, request: auth_pb2.CreateApiKeyRequest, context: Context
    ) -> auth_pb2.CreateApiKeyResponse:
        """Issue an API key; the response carries the only copy of the secret."""
        issued = await self.merchants.create_api_key(
            business_id=request.business_id, mode=mode_from_proto(request.mode), name=request.name
        )
        return auth_pb2.CreateApiKeyResponse(
            api_key=api_key_to_proto(issued.api_key), secret=issued.secret
        )

    async def ListApiKeys(
        self, request: auth_pb2.ListApiKeysRequest, context: Context
    ) -> auth_pb2.ListApiKeysResponse:
        """A business's API keys."""
        keys = await self.merchants.list_api_keys(request.business_id)
        return auth_pb2.ListApiKeysResponse(api_keys=[api_key_to_proto(k) for k in keys])

    async def RevokeApiKey(
        self, request: auth_pb2.RevokeApiKeyRequest, context: Context
    ) -> auth_pb2.ApiKey:
        """Revoke one of a business's keys."""
        api_key = await self.merchants.revoke_api_key(
            business_id=request.business_id, key_id=request.key_id
        )
        return api_key_to_proto(api_key)

    async def AuthenticateApiKey(
        self, request: auth_pb2.AuthenticateApiKeyRequest, context: Context
    ) -> auth_pb2.AuthenticateApiKeyResponse:
        """Who a secret speaks for, or UNAUTHENTICATED."""
        principal = await self.merchants.authenticate_api_key(request.secret)
        return auth_pb2.AuthenticateApiKeyResponse(
            business_id=principal.business_id,
            mode=mode_to_proto(principal.mode),
            key_id=principal.key_id,
        )

    async def CreateCustomer(
        self, request: auth_pb2.CreateCustomerRequest, context: Context
    ) -> auth_pb2.CreateCustomerResponse:
        """Create a customer, or return the existing one with the same email."""
        customer, created = await self.customers.create_customer(
            business_id=request.business_id,
            mode=mode_from_proto(request.mode),
            email=request.email,
            name=request.name,
            phone_number=request.phone_number,
            metadata=dict(request.metadata),
            preferred_locale=request.preferred_locale or None,
        )
        return auth_pb2.CreateCustomerResponse(
            customer=customer_to_proto(customer), created=created
        )

    async def GetCustomer(
        self, request: auth_pb2.GetCustomerRequest, context: Context
    ) -> auth_pb2.Customer:
        """One customer of the business+mode."""
        customer = await self.customers.get_customer(
            business_id=request.business_id,
            mode=mode_from_proto(request.mode),
            customer_id=request.customer_id,
        )
        return customer_to_proto(customer)

    async def ListCustomers(
        self, request: auth_pb2.ListCustomersRequest, context: Context
    ) -> auth_pb2.ListCustomersResponse:
        """A page of the business's customers."""
        customers = await self.customers.list_customers(
            business_id=request.business_id,
            mode=mode_from_proto(request.mode),
            page_size=_page(request.page_size),
            page_number=request.page_number,
            email=request.email or None,
        )
        return auth_pb2.ListCustomersResponse(customers=[customer_to_proto(c) for c in customers])
