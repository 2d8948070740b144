"""Every route of the gateway, in one table, each named for its use case."""

from __future__ import annotations

from aiohttp import web

from gateway.api import customers, openapi, payments

ROUTES = [
    web.post("/customers", customers.create_customer, name="create_customer"),
    web.get("/customers", customers.list_customers, name="list_customers", allow_head=False),
    web.get(
        "/customers/{customer_id}",
        customers.retrieve_customer,
        name="retrieve_customer",
        allow_head=False,
    ),
    web.patch("/customers/{customer_id}", customers.update_customer, name="update_customer"),
    web.post(
        "/customers/{customer_id}/customer-portal/session",
        customers.create_portal_session,
        name="create_portal_session",
    ),
    web.get("/openapi.json", openapi.openapi_document, name="openapi_document"),
    web.get("/payments", payments.list_payments, name="list_payments", allow_head=False),
    web.get(
        "/payments/{payment_id}",
        payments.retrieve_payment,
        name="retrieve_payment",
        allow_head=False,
    ),
    web.get(
        "/customers/{customer_id}/payment-methods",
        payments.list_customer_payment_methods,
        name="list_customer_payment_methods",
        allow_head=False,
    ),
    web.delete(
        "/customers/{customer_id}/payment-methods/{payment_method_id}",
        payments.delete_customer_payment_method,
        name="delete_customer_payment_method",
    ),
]
