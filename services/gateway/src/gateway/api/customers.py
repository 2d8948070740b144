"""Merchant API: create, retrieve and list the merchant's customers.

Every call is scoped to the API key's business and mode; a customer of another
business or of the other mode is "not found", exactly like a missing one.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from billing.auth.v1 import auth_pb2, portal_access_pb2
from billing_kit.errors import InvalidArgument, NotFound, PermissionDenied

from gateway.api.merchant import merchant_api
from gateway.api.parsing import parse_json_body, parse_query
from gateway.api.schemas import (
    CreateCustomerBody,
    CustomerListOut,
    CustomerOut,
    ListCustomersQuery,
    PortalSessionOut,
    PortalSessionQuery,
    UpdateCustomerBody,
    dump,
)
from gateway.api_keys import Merchant
from gateway.keys import AUTH_STUB, PORTAL_STUB
from gateway.problems import invalid_query, resource_not_found


@merchant_api
async def create_customer(request: web.Request, merchant: Merchant) -> web.Response:
    """``POST /customers``: create a customer (or return the one with that email)."""
    body = await parse_json_body(request, CreateCustomerBody)
    reply = await request.app[AUTH_STUB].CreateCustomer(
        auth_pb2.CreateCustomerRequest(
            business_id=merchant.business_id,
            mode=merchant.proto_mode,
            email=str(body.email),
            name=body.name,
            phone_number=body.phone_number or "",
            metadata=body.metadata or {},
            preferred_locale=body.preferred_locale or "",
        ),
    )
    return web.json_response(dump(CustomerOut.from_proto(reply.customer)))


@merchant_api
async def retrieve_customer(request: web.Request, merchant: Merchant) -> web.Response:
    """``GET /customers/{customer_id}``."""
    customer_id = request.match_info["customer_id"]
    try:
        customer = await request.app[AUTH_STUB].GetCustomer(
            auth_pb2.GetCustomerRequest(
                business_id=merchant.business_id,
                mode=merchant.proto_mode,
                customer_id=customer_id,
            ),
        )
    except (NotFound, PermissionDenied, InvalidArgument):
        # A malformed id, a foreign id and a missing id all read the same.
        raise resource_not_found("Customer") from None
    return web.json_response(dump(CustomerOut.from_proto(customer)))


@merchant_api
async def list_customers(request: web.Request, merchant: Merchant) -> web.Response:
    """``GET /customers``: one page, optionally filtered by email."""
    query = parse_query(request, ListCustomersQuery)
    reply = await request.app[AUTH_STUB].ListCustomers(
        auth_pb2.ListCustomersRequest(
            business_id=merchant.business_id,
            mode=merchant.proto_mode,
            page_size=query.page_size,
            page_number=query.page_index,
            email=query.email or "",
        ),
    )
    page = CustomerListOut(items=[CustomerOut.from_proto(c) for c in reply.customers])
    return web.json_response(dump(page))


@merchant_api
async def update_customer(request: web.Request, merchant: Merchant) -> web.Response:
    """``PATCH /customers/{customer_id}``: change only the fields sent.

    JSON ``null`` removes ``phone_number`` and ``preferred_locale`` (sent as
    ``""``) and every ``metadata`` key (sent as an empty wrapper); an absent
    field is left out of the request, so auth leaves it alone.
    """
    customer_id = request.match_info["customer_id"]
    body = await parse_json_body(request, UpdateCustomerBody)
    sent = body.model_fields_set
    changes: dict[str, Any] = {}
    if "email" in sent and body.email is not None:
        changes["email"] = str(body.email)
    if "name" in sent and body.name is not None:
        changes["name"] = body.name
    if "phone_number" in sent:
        changes["phone_number"] = body.phone_number or ""
    if "metadata" in sent:
        changes["metadata"] = auth_pb2.CustomerMetadata(values=body.metadata or {})
    if "preferred_locale" in sent:
        changes["preferred_locale"] = body.preferred_locale or ""
    try:
        if changes:
            customer = await request.app[PORTAL_STUB].UpdateProfile(
                portal_access_pb2.UpdateProfileRequest(
                    business_id=merchant.business_id,
                    mode=merchant.proto_mode,
                    customer_id=customer_id,
                    merchant_key_id=merchant.key_id,
                    **changes,
                ),
            )
        else:
            customer = await request.app[AUTH_STUB].GetCustomer(
                auth_pb2.GetCustomerRequest(
                    business_id=merchant.business_id,
                    mode=merchant.proto_mode,
                    customer_id=customer_id,
                ),
            )
    except (NotFound, PermissionDenied):
        raise resource_not_found("Customer") from None
    return web.json_response(dump(CustomerOut.from_proto(customer)))


@merchant_api
async def create_portal_session(request: web.Request, merchant: Merchant) -> web.Response:
    """``POST /customers/{customer_id}/customer-portal/session``: a one-time portal link."""
    customer_id = request.match_info["customer_id"]
    # return_url and next are auth's rules (the query model names the same shared
    # types, so the document says them); which business ``next`` may name is auth's
    # call alone, and its refusal comes back as a field reason.
    query = parse_query(request, PortalSessionQuery)
    try:
        reply = await request.app[PORTAL_STUB].CreatePortalLink(
            portal_access_pb2.CreatePortalLinkRequest(
                business_id=merchant.business_id,
                mode=merchant.proto_mode,
                customer_id=customer_id,
                send_email=query.send_email,
                return_url=query.return_url or "",
                next_path=query.next or "",
            ),
        )
    except (NotFound, PermissionDenied):
        raise resource_not_found("Customer") from None
    except InvalidArgument as exc:
        if exc.field is None:
            # Not about a query parameter (a recipient the mail relay refused for good):
            # the reason's own row in the one error table.
            raise
        raise invalid_query(exc, renamed={"next_path": "next"}) from None
    return web.json_response(dump(PortalSessionOut(link=reply.link)))
