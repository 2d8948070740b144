"""``GET /openapi.json``: the merchant API described from its pydantic models."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel

from gateway.api.schemas import (
    CreateCustomerBody,
    CustomerListOut,
    CustomerOut,
    ListCustomersQuery,
    PortalSessionOut,
    PortalSessionQuery,
    ProblemOut,
    UpdateCustomerBody,
)

_REF = "#/components/schemas/{model}"


def _schemas(*models: type[BaseModel]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for model in models:
        schema = model.model_json_schema(ref_template=_REF)
        out.update(schema.pop("$defs", {}))
        out[model.__name__] = schema
    return out


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": _REF.format(model=model.__name__)}


def _json(model: type[BaseModel], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(model)}}}


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/problem+json": {"schema": _ref(ProblemOut)}},
    }


def _query_parameters(model: type[BaseModel] = ListCustomersQuery) -> list[dict[str, Any]]:
    schema = model.model_json_schema()
    return [
        {
            "name": name,
            "in": "query",
            "required": False,
            "description": prop.get("description", ""),
            "schema": {k: v for k, v in prop.items() if k != "description"},
        }
        for name, prop in schema["properties"].items()
    ]


_COMMON_ERRORS = {
    "401": _problem("Missing, invalid or revoked API key"),
    "503": _problem("A backend service is unavailable; retry"),
}


def build_openapi() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the merchant API."""
    customer_id = {
        "name": "customer_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Customer portal merchant API",
            "version": "1.0.0",
            "description": "Wire-compatible with the Dodo Payments API (customers).",
        },
        "components": {
            "securitySchemes": {"API_KEY": {"type": "http", "scheme": "bearer"}},
            "schemas": _schemas(
                CreateCustomerBody,
                UpdateCustomerBody,
                CustomerOut,
                CustomerListOut,
                PortalSessionOut,
                ProblemOut,
            ),
        },
        "security": [{"API_KEY": []}],
        "paths": {
            "/customers": {
                "post": {
                    "operationId": "create_customer",
                    "summary": "Create a customer (returns the existing one for a known email)",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref(CreateCustomerBody)}},
                    },
                    "responses": {
                        "200": _json(CustomerOut, "The customer"),
                        "400": _problem("Malformed JSON"),
                        "409": _problem("Conflicts with an existing customer"),
                        "415": _problem("Body is not JSON"),
                        "422": _problem("Invalid or unknown fields"),
                        **_COMMON_ERRORS,
                    },
                },
                "get": {
                    "operationId": "list_customers",
                    "summary": "List customers, one page at a time",
                    "parameters": _query_parameters(),
                    "responses": {
                        "200": _json(CustomerListOut, "One page of customers"),
                        "422": _problem("Invalid or unknown query parameters"),
                        **_COMMON_ERRORS,
                    },
                },
            },
            "/customers/{customer_id}": {
                "get": {
                    "operationId": "retrieve_customer",
                    "summary": "Retrieve a customer",
                    "parameters": [customer_id],
                    "responses": {
                        "200": _json(CustomerOut, "The customer"),
                        "404": _problem("No such customer for this business and mode"),
                        **_COMMON_ERRORS,
                    },
                },
                "patch": {
                    "operationId": "update_customer",
                    "summary": "Update a customer's email, name, phone number, metadata "
                    "and/or language (null removes phone_number, metadata, preferred_locale)",
                    "parameters": [customer_id],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref(UpdateCustomerBody)}},
                    },
                    "responses": {
                        "200": _json(CustomerOut, "The updated customer"),
                        "400": _problem("Malformed JSON"),
                        "404": _problem("No such customer for this business and mode"),
                        "409": _problem("Another customer of the business has this email"),
                        "415": _problem("Body is not JSON"),
                        "422": _problem("Invalid or unknown fields"),
                        **_COMMON_ERRORS,
                    },
                },
            },
            "/customers/{customer_id}/customer-portal/session": {
                "post": {
                    "operationId": "create_customer_portal_session",
                    "summary": "A one-time customer portal link (expires after 24 hours)",
                    "parameters": [customer_id, *_query_parameters(PortalSessionQuery)],
                    "responses": {
                        "200": _json(PortalSessionOut, "The link"),
                        "404": _problem("No such customer for this business and mode"),
                        "422": _problem("Invalid query parameters"),
                        **_COMMON_ERRORS,
                    },
                },
            },
        },
    }


async def openapi_document(request: web.Request) -> web.Response:
    """``GET /openapi.json`` (public: it describes the API, it holds no data)."""
    return web.json_response(build_openapi())
