"""``GET /openapi.json``: the merchant API described from its pydantic models."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel

from gateway.api import business
from gateway.api.addons_openapi import ADDON_MODELS, addon_paths
from gateway.api.invoices_openapi import invoice_paths
from gateway.api.payments_openapi import PAYMENT_MODELS, payment_paths
from gateway.api.product_schemas import (
    CreateProductBody,
    ListProductsQuery,
    ProductListOut,
    ProductOut,
    RetrieveProductQuery,
    UpdateProductBody,
)
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
from gateway.api.webhooks_openapi import WEBHOOK_MODELS, webhook_paths
from gateway.problems import PROBLEM_CONTENT_TYPE

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


def _problem(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "headers": {"x-should-retry": _SHOULD_RETRY, **(headers or {})},
        "content": {PROBLEM_CONTENT_TYPE: {"schema": _ref(ProblemOut)}},
    }
    return response


def _header(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "required": True, "schema": schema}


_SHOULD_RETRY = _header(
    "Whether retrying the same request may succeed (true only on 503).",
    {"type": "string", "enum": ["true", "false"]},
)
_RETRY_AFTER = _header(
    "Seconds to wait before retrying.", {"type": "string", "pattern": "^[0-9]+$"}
)


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """An optional parameter's schema without pydantic's ``null`` branch and title.

    A query parameter is either absent or a string: ``null`` cannot be sent.
    """
    out = {k: v for k, v in schema.items() if k not in ("title", "description")}
    branches = out.pop("anyOf", None)
    if branches is not None:
        kept = [b for b in branches if b.get("type") != "null"]
        if len(kept) == 1:
            out.update(kept[0])
        else:
            out["anyOf"] = kept
    if out.get("default", 0) is None:
        del out["default"]
    return out


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema()
    return [
        {
            "name": name,
            "in": "query",
            "required": False,
            "description": prop.get("description", ""),
            "schema": _without_null(prop),
        }
        for name, prop in schema["properties"].items()
    ]


# Every operation: the key (401), a backend that refused for too many requests (429),
# failed (502) or is down or slow (503).
_COMMON_ERRORS = {
    "401": _problem(
        "Missing, malformed, invalid or revoked API key",
        {"WWW-Authenticate": _header("The Bearer challenge.", {"type": "string"})},
    ),
    "429": _problem("Too many requests; retry later", {"Retry-After": _RETRY_AFTER}),
    "502": _problem("A backend service failed to answer"),
    "503": _problem("A backend service is unavailable; retry", {"Retry-After": _RETRY_AFTER}),
}
# Operations that read a JSON body: the body itself can be refused before it is validated.
_BODY_ERRORS = {
    "400": _problem("The body is not JSON, not an object, not UTF-8 or nested too deeply"),
    "413": _problem("The body is larger than the gateway accepts"),
    "415": _problem("The body is not application/json (UTF-8)"),
    "422": _problem("Invalid, missing or unknown fields (errors names each, with its reason)"),
}
_NOT_FOUND = {"404": _problem("No such customer for this business and mode")}
# The customer a create answers with feeds the calls about one customer (the stateful
# tests follow these links, and so can a reader).
_CUSTOMER_LINKS = {
    "retrieve_customer": {
        "operationId": "retrieve_customer",
        "parameters": {"customer_id": "$response.body#/customer_id"},
    },
    "update_customer": {
        "operationId": "update_customer",
        "parameters": {"customer_id": "$response.body#/customer_id"},
    },
    "create_customer_portal_session": {
        "operationId": "create_customer_portal_session",
        "parameters": {"customer_id": "$response.body#/customer_id"},
    },
}


def _customer_response(description: str) -> dict[str, Any]:
    return {**_json(CustomerOut, description), "links": _CUSTOMER_LINKS}


def build_openapi() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the merchant API.

    Bodies and query strings are the pydantic models the handlers validate with,
    whose fields are the shared rules auth enforces (billing_kit.field_rules), so
    every pattern, length and enum here is the one the server applies.
    """
    # They build on this module's helpers.
    from gateway.api import license_openapi, subscription_openapi

    customer_id = {
        "name": "customer_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "minLength": 1},
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Customer portal merchant API",
            "version": "1.0.0",
            "description": "Wire-compatible with the Dodo Payments API (customers, payments).",
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
                CreateProductBody,
                UpdateProductBody,
                ProductOut,
                ProductListOut,
                *subscription_openapi.MODELS,
                *PAYMENT_MODELS,
                *license_openapi.MODELS,
                *WEBHOOK_MODELS,
                *ADDON_MODELS,
                *business.MODELS,
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
                        "200": _customer_response("The customer"),
                        **_BODY_ERRORS,
                        "409": _problem("Conflicts with an existing customer"),
                        **_COMMON_ERRORS,
                    },
                },
                "get": {
                    "operationId": "list_customers",
                    "summary": "List customers, one page at a time",
                    "parameters": _query_parameters(ListCustomersQuery),
                    "responses": {
                        "200": _json(CustomerListOut, "One page of customers"),
                        "422": _problem("Invalid, repeated or unknown query parameters"),
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
                        **_NOT_FOUND,
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
                        **_BODY_ERRORS,
                        **_NOT_FOUND,
                        "409": _problem("Another customer of the business has this email"),
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
                        **_NOT_FOUND,
                        "422": _problem(
                            "Invalid, repeated or unknown query parameters; a next path of "
                            "another business (errors names each, with its reason)"
                        ),
                        **_COMMON_ERRORS,
                    },
                },
            },
            **_product_paths(),
            **addon_paths(
                json=_json,
                ref=_ref,
                problem=_problem,
                query_parameters=_query_parameters,
                common_errors=_COMMON_ERRORS,
                body_errors=_BODY_ERRORS,
            ),
            **subscription_openapi.paths(),
            **payment_paths(
                json=_json,
                problem=_problem,
                query_parameters=_query_parameters,
                common_errors=_COMMON_ERRORS,
            ),
            **license_openapi.paths(),
            **invoice_paths(
                problem=_problem,
                query_parameters=_query_parameters,
                common_errors=_COMMON_ERRORS,
            ),
            **webhook_paths(
                json=_json,
                ref=_ref,
                problem=_problem,
                query_parameters=_query_parameters,
                common_errors=_COMMON_ERRORS,
                body_errors=_BODY_ERRORS,
            ),
            **business.business_paths(
                json=_json, ref=_ref, common_errors=_COMMON_ERRORS, body_errors=_BODY_ERRORS
            ),
        },
    }


# --- products ------------------------------------------------------------------------------

_PRODUCT_NOT_FOUND = {"404": _problem("No such product for this business and mode")}
_ADDON_UNAVAILABLE = {
    "409": _problem(
        "An add-on named in addons cannot be offered: not a live add-on of this business "
        "and mode, or priced in another currency"
    )
}
_PRODUCT_LINKS = {
    operation: {"operationId": operation, "parameters": {"id": "$response.body#/product_id"}}
    for operation in (
        "retrieve_product",
        "update_product",
        "archive_product",
        "unarchive_product",
    )
}
_NO_CONTENT = {"204": {"description": "Done (no body, as in the Dodo API)"}}
_UNSUPPORTED = (
    "Invalid, missing or unknown fields, or a field this server does not support "
    "(errors names each; type unsupported_field for the latter)"
)


def _product_paths() -> dict[str, Any]:
    product_id = {
        "name": "id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "minLength": 1},
    }
    return {
        "/products": {
            "post": {
                "operationId": "create_product",
                "summary": "Create a product with a one-time or recurring price",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref(CreateProductBody)}},
                },
                "responses": {
                    "200": {**_json(ProductOut, "The new product"), "links": _PRODUCT_LINKS},
                    **_BODY_ERRORS,
                    **_ADDON_UNAVAILABLE,
                    "422": _problem(_UNSUPPORTED),
                    **_COMMON_ERRORS,
                },
            },
            "get": {
                "operationId": "list_products",
                "summary": "List live (or archived) products, newest first, one page at a time",
                "parameters": _query_parameters(ListProductsQuery),
                "responses": {
                    "200": _json(ProductListOut, "One page of products"),
                    "422": _problem("Invalid, repeated, unknown or unsupported query parameters"),
                    **_COMMON_ERRORS,
                },
            },
        },
        "/products/{id}": {
            "get": {
                "operationId": "retrieve_product",
                "summary": "Retrieve a product (archived ones too)",
                "parameters": [product_id, *_query_parameters(RetrieveProductQuery)],
                "responses": {
                    "200": _json(ProductOut, "The product"),
                    **_PRODUCT_NOT_FOUND,
                    "422": _problem("Invalid, repeated or unknown query parameters"),
                    **_COMMON_ERRORS,
                },
            },
            "patch": {
                "operationId": "update_product",
                "summary": "Change a product's fields (null clears the optional ones)",
                "parameters": [product_id],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref(UpdateProductBody)}},
                },
                "responses": {
                    **_NO_CONTENT,
                    **_BODY_ERRORS,
                    "422": _problem(_UNSUPPORTED),
                    **_PRODUCT_NOT_FOUND,
                    **_ADDON_UNAVAILABLE,
                    **_COMMON_ERRORS,
                },
            },
            "delete": {
                "operationId": "archive_product",
                "summary": "Archive a product (no longer offered); repeating it is harmless",
                "parameters": [product_id],
                "responses": {**_NO_CONTENT, **_PRODUCT_NOT_FOUND, **_COMMON_ERRORS},
            },
        },
        "/products/{id}/unarchive": {
            "post": {
                "operationId": "unarchive_product",
                "summary": "Offer an archived product again; repeating it is harmless",
                "parameters": [product_id],
                "responses": {**_NO_CONTENT, **_PRODUCT_NOT_FOUND, **_COMMON_ERRORS},
            },
        },
    }


async def openapi_document(request: web.Request) -> web.Response:
    """``GET /openapi.json`` (public: it describes the API, it holds no data)."""
    return web.json_response(build_openapi())
