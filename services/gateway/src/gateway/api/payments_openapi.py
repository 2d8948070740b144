"""The OpenAPI paths of the payments endpoints (merged into ``build_openapi``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from gateway.api.payment_schemas import (
    ListPaymentsQuery,
    PaymentListOut,
    PaymentMethodListOut,
    PaymentOut,
)

PAYMENT_MODELS: tuple[type[BaseModel], ...] = (PaymentListOut, PaymentOut, PaymentMethodListOut)
# Filters the Dodo SDK can send that this API refuses with a 422 naming them: left out of
# the parameters (no value of theirs is valid), named in the 422's description.
UNSUPPORTED_PAYMENT_FILTERS = frozenset({"brand_id", "currency", "product_id"})


def _path_parameter(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string", "minLength": 1},
    }


def payment_paths(
    *,
    json: Any,
    problem: Any,
    query_parameters: Any,
    common_errors: dict[str, Any],
) -> dict[str, Any]:
    """``/payments``, ``/payments/{payment_id}`` and the customer's payment methods."""
    customer_id = _path_parameter("customer_id")
    return {
        "/payments": {
            "get": {
                "operationId": "list_payments",
                "summary": "List payments, newest first, one page at a time",
                "parameters": [
                    p
                    for p in query_parameters(ListPaymentsQuery)
                    if p["name"] not in UNSUPPORTED_PAYMENT_FILTERS
                ],
                "responses": {
                    "200": json(PaymentListOut, "One page of payments"),
                    "422": problem(
                        "Invalid, repeated, unknown or unsupported (brand_id, currency, "
                        "product_id) query parameters"
                    ),
                    **common_errors,
                },
            },
        },
        "/payments/{payment_id}": {
            "get": {
                "operationId": "retrieve_payment",
                "summary": "Retrieve a payment",
                "parameters": [_path_parameter("payment_id")],
                "responses": {
                    "200": json(PaymentOut, "The payment"),
                    "404": problem("No such payment for this business and mode"),
                    **common_errors,
                },
            },
        },
        "/customers/{customer_id}/payment-methods": {
            "get": {
                "operationId": "retrieve_customer_payment_methods",
                "summary": "The customer's saved payment methods (not paginated)",
                "parameters": [customer_id],
                "responses": {
                    "200": json(PaymentMethodListOut, "The saved methods, newest first"),
                    "404": problem("No such customer for this business and mode"),
                    **common_errors,
                },
            },
        },
        "/customers/{customer_id}/payment-methods/{payment_method_id}": {
            "delete": {
                "operationId": "delete_customer_payment_method",
                "summary": "Delete one of the customer's saved payment methods",
                "parameters": [customer_id, _path_parameter("payment_method_id")],
                "responses": {
                    "204": {"description": "Deleted"},
                    "404": problem("No such customer or payment method for this business and mode"),
                    **common_errors,
                },
            },
        },
    }
