"""Merchant API: create, retrieve and list the merchant's customers.

Every call is scoped to the API key's business and mode; a customer of another
business or of the other mode is "not found", exactly like a missing one.
"""

from __future__ import annotations

from aiohttp import web
from billing.auth.v1 import auth_pb2
from billing_kit.errors import InvalidArgument, NotFound, PermissionDenied

from gateway.api.merchant import merchant_api
from gateway.api.parsing import parse_json_body, parse_query
from gateway.api.schemas import (
    CreateCustomerBody,
    CustomerListOut,
    CustomerOut,
    ListCustomersQuery,
    dump,
)
from gateway.api_keys import Merchant
from gateway.keys import AUTH_STUB, SETTINGS
from gateway.problems import resource_not_found
from gateway.rpc import rpc


@merchant_api
async def create_customer(request: web.Request, merchant: Merchant) -> web.Response:
    """``POST /customers``: create a customer (or return the one with that email)."""
    body = await parse_json_body(request, CreateCustomerBody)
    reply = await rpc(
        request.app[AUTH_STUB].CreateCustomer(
            auth_pb2.CreateCustomerRequest(
                business_id=merchant.business_id,
                mode=merchant.proto_mode,
                email=str(body.email),
                name=body.name,
                phone_number=body.phone_number or "",
            ),
            timeout=request.app[SETTINGS].backend_timeout_seconds,
        )
    )
    return web.json_response(dump(CustomerOut.from_proto(reply.customer)))


@merchant_api
async def retrieve_customer(request: web.Request, merchant: Merchant) -> web.Response:
    """``GET /customers/{customer_id}``."""
    customer_id = request.match_info["customer_id"]
    try:
        customer = await rpc(
            request.app[AUTH_STUB].GetCustomer(
                auth_pb2.GetCustomerRequest(
                    business_id=merchant.business_id,
                    mode=merchant.proto_mode,
                    customer_id=customer_id,
                ),
                timeout=request.app[SETTINGS].backend_timeout_seconds,
            )
        )
    except (NotFound, PermissionDenied, InvalidArgument):
        # A malformed id, a foreign id and a missing id all read the same.
        raise resource_not_found("Customer") from None
    return web.json_response(dump(CustomerOut.from_proto(customer)))


@merchant_api
async def list_customers(request: web.Request, merchant: Merchant) -> web.Response:
    """``GET /customers``: one page, optionally filtered by email."""
    query = parse_query(request, ListCustomersQuery)
    reply = await rpc(
        request.app[AUTH_STUB].ListCustomers(
            auth_pb2.ListCustomersRequest(
                business_id=merchant.business_id,
                mode=merchant.proto_mode,
                page_size=query.page_size,
                page_number=query.page_number,
                email=query.email or "",
            ),
            timeout=request.app[SETTINGS].backend_timeout_seconds,
        )
    )
    page = CustomerListOut(items=[CustomerOut.from_proto(c) for c in reply.customers])
    return web.json_response(dump(page))
