"""Merchant API: the business's payments and its customers' saved payment methods.

Every call is scoped to the API key's business and mode; a payment, customer
or method of another business (or of the other mode) is "not found", exactly
like a missing one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import datetime

from aiohttp import web
from billing.auth.v1 import auth_pb2
from billing.payments.v1 import payments_pb2
from billing_kit.errors import InvalidArgument, NotFound, PermissionDenied
from google.protobuf.timestamp_pb2 import Timestamp

from gateway.api.merchant import merchant_api
from gateway.api.parsing import parse_query
from gateway.api.payment_schemas import (
    STATUS_TO_PROTO,
    ListPaymentsQuery,
    PaymentListOut,
    PaymentMethodListOut,
    PaymentMethodOut,
    payment_list_item,
    payment_out,
)
from gateway.api.schemas import dump
from gateway.api_keys import Merchant
from gateway.keys import AUTH_STUB, PAYMENTS_STUB
from gateway.problems import resource_not_found

# Dodo's list is not paginated; a customer keeps far fewer cards than this.
MAX_METHODS = 100


async def _customer(
    request: web.Request, merchant: Merchant, customer_id: str
) -> auth_pb2.Customer:
    try:
        customer: auth_pb2.Customer = await request.app[AUTH_STUB].GetCustomer(
            auth_pb2.GetCustomerRequest(
                business_id=merchant.business_id, mode=merchant.proto_mode, customer_id=customer_id
            )
        )
    except (NotFound, PermissionDenied, InvalidArgument):
        raise resource_not_found("Customer") from None
    return customer


async def _customers(
    request: web.Request, merchant: Merchant, customer_ids: Iterable[str]
) -> dict[str, auth_pb2.Customer]:
    # One call per distinct customer on the page (at most page_size), concurrently.
    unique = sorted(set(customer_ids))
    found = await asyncio.gather(*(_customer(request, merchant, c) for c in unique))
    return dict(zip(unique, found, strict=True))


@merchant_api
async def list_payments(request: web.Request, merchant: Merchant) -> web.Response:
    """``GET /payments``: one page, newest first, optionally filtered."""
    query = parse_query(request, ListPaymentsQuery)
    status: payments_pb2.PaymentStatus.ValueType = payments_pb2.PAYMENT_STATUS_UNSPECIFIED
    if query.status is not None:
        if query.status not in STATUS_TO_PROTO:
            # A Dodo status this processor never produces: nothing has it.
            return web.json_response(dump(PaymentListOut(items=[])))
        status = STATUS_TO_PROTO[query.status]
    rpc = payments_pb2.ListPaymentsRequest(
        business_id=merchant.business_id,
        mode=merchant.proto_mode,
        customer_ids=[query.customer_id] if query.customer_id else [],
        subscription_id=query.subscription_id or "",
        status=status,
        page_size=query.page_size,
        page_number=query.page_index,
    )
    if query.created_at_gte is not None:
        rpc.created_at_gte.CopyFrom(_timestamp(query.created_at_gte))
    if query.created_at_lte is not None:
        rpc.created_at_lte.CopyFrom(_timestamp(query.created_at_lte))
    reply = await request.app[PAYMENTS_STUB].ListPayments(rpc)
    customers = await _customers(request, merchant, (p.customer_id for p in reply.payments))
    items = [payment_list_item(p, customers[p.customer_id]) for p in reply.payments]
    return web.json_response(dump(PaymentListOut(items=items)))


@merchant_api
async def retrieve_payment(request: web.Request, merchant: Merchant) -> web.Response:
    """``GET /payments/{payment_id}``."""
    try:
        payment = await request.app[PAYMENTS_STUB].GetPayment(
            payments_pb2.GetPaymentRequest(
                business_id=merchant.business_id,
                mode=merchant.proto_mode,
                payment_id=request.match_info["payment_id"],
            )
        )
    except (NotFound, PermissionDenied, InvalidArgument):
        raise resource_not_found("Payment") from None
    customer = await _customer(request, merchant, payment.customer_id)
    return web.json_response(dump(payment_out(payment, customer)))


@merchant_api
async def list_customer_payment_methods(request: web.Request, merchant: Merchant) -> web.Response:
    """``GET /customers/{customer_id}/payment-methods``: every saved method (not paginated)."""
    customer = await _customer(request, merchant, request.match_info["customer_id"])
    reply = await request.app[PAYMENTS_STUB].ListPaymentMethods(
        payments_pb2.ListPaymentMethodsRequest(
            business_id=merchant.business_id,
            mode=merchant.proto_mode,
            customer_id=customer.customer_id,
            page_size=MAX_METHODS,
        )
    )
    items = [PaymentMethodOut.from_proto(m) for m in reply.payment_methods]
    return web.json_response(dump(PaymentMethodListOut(items=items)))


@merchant_api
async def delete_customer_payment_method(request: web.Request, merchant: Merchant) -> web.Response:
    """``DELETE /customers/{customer_id}/payment-methods/{payment_method_id}``."""
    customer = await _customer(request, merchant, request.match_info["customer_id"])
    try:
        await request.app[PAYMENTS_STUB].DeletePaymentMethod(
            payments_pb2.DeletePaymentMethodRequest(
                business_id=merchant.business_id,
                mode=merchant.proto_mode,
                customer_id=customer.customer_id,
                payment_method_id=request.match_info["payment_method_id"],
            )
        )
    except (NotFound, PermissionDenied, InvalidArgument):
        raise resource_not_found("Payment method") from None
    return web.Response(status=204)


def _timestamp(moment: datetime) -> Timestamp:
    value = Timestamp()
    value.FromDatetime(moment)
    return value
