"""Merchant API: checkout sessions (Dodo's ``/checkouts``).

The subscriptions service owns the session (it prices the cart and turns the
paid cart into subscriptions); payments' hosted page takes the payment. The
gateway resolves the customer through auth, as for ``POST /subscriptions``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from aiohttp import web
from billing.subscriptions.v1 import subscriptions_pb2 as pb
from billing_kit.catalog_fields import json_integer
from billing_kit.errors import InvalidArgument, NotFound
from billing_kit.field_rules import HttpUrl, Metadata
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from gateway.api.merchant import merchant_api
from gateway.api.parsing import parse_json_body
from gateway.api.product_schemas import Unsupported
from gateway.api.schemas import dump
from gateway.api.subscription_schemas import (
    BillingAddressIn,
    ExistingCustomerIn,
    NewCustomerIn,
    TaxId,
)
from gateway.api.subscriptions import resolve_customer
from gateway.api_keys import Merchant
from gateway.keys import SUBSCRIPTIONS_STUB
from gateway.problems import ApiProblem, resource_not_found


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CartItemIn(_Body):
    """Dodo's ProductItemReq."""

    product_id: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    quantity: Annotated[int, Field(ge=1, le=1000), BeforeValidator(json_integer)]
    addons: Unsupported
    amount: Unsupported
    credit_entitlements: Unsupported


class CreateCheckoutBody(_Body):
    """``POST /checkouts``: the cart is paid once on the hosted page at ``checkout_url``."""

    product_cart: list[CartItemIn] = Field(
        min_length=1, max_length=20, description="1..20 products (collections are not supported)."
    )
    customer: ExistingCustomerIn | NewCustomerIn = Field(
        description="Required here: an existing customer_id, or email (+ name) to create one."
    )
    billing_address: BillingAddressIn | None = None
    return_url: HttpUrl = Field(
        description="Required here: where the hosted page sends the customer when done."
    )
    metadata: Metadata | None = None
    # UI options of Dodo's own page that this hosted page does not have: accepted, ignored.
    customization: dict[str, Any] | None = None
    feature_flags: dict[str, Any] | None = None
    minimal_address: bool | None = None
    show_saved_payment_methods: bool | None = None
    allowed_payment_method_types: Unsupported
    billing_currency: Unsupported
    cancel_url: Unsupported
    confirm: Unsupported
    custom_fields: Unsupported
    customer_business_name: Unsupported
    discount_code: Unsupported
    discount_codes: Unsupported
    force_3ds: Unsupported
    mandate_min_amount_inr_paise: Unsupported
    payment_method_id: Unsupported
    product_collection_id: Unsupported
    short_link: Unsupported
    subscription_data: Unsupported
    tax_id: TaxId | None = Field(
        default=None,
        description="The buyer's tax id (e.g. a VAT number). Printed on the invoice.",
    )


class CheckoutSessionOut(BaseModel):
    """Dodo's CheckoutSessionResponse."""

    session_id: str
    checkout_url: str | None = None
    client_secret: str | None = None
    payment_id: str | None = None
    publishable_key: str | None = None


class CheckoutStatusOut(BaseModel):
    """Dodo's CheckoutSessionStatus."""

    id: str
    created_at: datetime
    customer_email: str | None = None
    customer_name: str | None = None
    payment_id: str | None = None
    payment_status: str | None = None


CHECKOUT_MODELS: tuple[type[BaseModel], ...] = (
    CreateCheckoutBody,
    CheckoutSessionOut,
    CheckoutStatusOut,
)


@merchant_api
async def create_checkout(request: web.Request, merchant: Merchant) -> web.Response:
    """``POST /checkouts``: price the cart, open the hosted page for it."""
    body = await parse_json_body(request, CreateCheckoutBody)
    message = pb.CreateCheckoutRequest(
        business_id=merchant.business_id,
        mode=merchant.proto_mode,
        product_cart=[
            pb.CheckoutItem(product_id=item.product_id, quantity=item.quantity)
            for item in body.product_cart
        ],
        return_url=body.return_url,
        metadata=body.metadata or {},
        tax_id=body.tax_id or "",
    )
    if body.billing_address is not None:
        message.billing.CopyFrom(body.billing_address.to_proto())
    stub = request.app[SUBSCRIPTIONS_STUB]
    try:
        if isinstance(body.customer, NewCustomerIn):
            # A bad cart must not leave a new customer behind: check it before creating one.
            check = pb.CreateCheckoutRequest()
            check.CopyFrom(message)
            check.validate_only = True
            await stub.CreateCheckout(check)
        customer = await resolve_customer(request, merchant, body.customer)
        message.customer_id = customer.customer_id
        message.customer_email = customer.email
        message.customer_name = customer.name
        checkout = await stub.CreateCheckout(message)
    except NotFound as missing:
        if not (missing.field or "").startswith("product_cart"):
            raise
        # Unknown and another business's product get this same answer: it names the line only.
        raise ApiProblem(
            404,
            "NOT_FOUND",
            "Product not found",
            errors=[
                {"field": missing.field or "", "message": "Product not found", "type": "NOT_FOUND"}
            ],
        ) from None
    out = CheckoutSessionOut(session_id=checkout.session_id, checkout_url=checkout.checkout_url)
    return web.json_response(dump(out))


@merchant_api
async def retrieve_checkout(request: web.Request, merchant: Merchant) -> web.Response:
    """``GET /checkouts/{id}``: the session and its payment's outcome."""
    try:
        checkout = await request.app[SUBSCRIPTIONS_STUB].GetCheckout(
            pb.GetCheckoutRequest(
                business_id=merchant.business_id,
                mode=merchant.proto_mode,
                session_id=request.match_info["id"],
            )
        )
    except (NotFound, InvalidArgument):
        raise resource_not_found("Checkout session") from None
    out = CheckoutStatusOut(
        id=checkout.session_id,
        created_at=checkout.created_at.ToDatetime(tzinfo=UTC),
        customer_email=checkout.customer_email or None,
        customer_name=checkout.customer_name or None,
        payment_id=checkout.payment_id or None,
        payment_status=checkout.payment_status or None,
    )
    return web.json_response(dump(out))
