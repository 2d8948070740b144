"""The OpenAPI paths of the webhooks endpoints (merged into ``build_openapi``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from gateway.api.webhooks_schemas import (
    CreateWebhookBody,
    DeliveryListOut,
    ListWebhooksQuery,
    RotatedSecretOut,
    UpdateWebhookBody,
    UpdateWebhookHeadersBody,
    WebhookHeadersOut,
    WebhookListOut,
    WebhookOut,
    WebhookSecretOut,
)

WEBHOOK_MODELS: tuple[type[BaseModel], ...] = (
    CreateWebhookBody,
    UpdateWebhookBody,
    UpdateWebhookHeadersBody,
    WebhookOut,
    WebhookListOut,
    WebhookSecretOut,
    RotatedSecretOut,
    WebhookHeadersOut,
    DeliveryListOut,
)
_WEBHOOK_ID = {
    "name": "webhook_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "minLength": 1},
}
_LINKS = {
    operation: {"operationId": operation, "parameters": {"webhook_id": "$response.body#/id"}}
    for operation in (
        "retrieve_webhook",
        "update_webhook",
        "retrieve_webhook_secret",
        "retrieve_webhook_headers",
        "list_webhook_deliveries",
    )
}
_UNSUPPORTED = (
    "Invalid, missing or unknown fields, a header name the platform sets (webhook-*, "
    "content-type, host…), or rate_limit, which this server does not support (errors names "
    "each; type unsupported_field for the latter)"
)


def webhook_paths(
    *,
    json: Any,
    ref: Any,
    problem: Any,
    query_parameters: Any,
    common_errors: dict[str, Any],
    body_errors: dict[str, Any],
) -> dict[str, Any]:
    """``/webhooks`` and its sub-resources (Dodo's, plus the rotate and deliveries extensions)."""
    not_found = {"404": problem("No such webhook for this business and mode")}
    body_errors = {**body_errors, "422": problem(_UNSUPPORTED)}

    def body(model: type[BaseModel]) -> dict[str, Any]:
        return {"required": True, "content": {"application/json": {"schema": ref(model)}}}

    return {
        "/webhooks": {
            "post": {
                "operationId": "create_webhook",
                "summary": "Create a webhook endpoint (signed with a fresh whsec_ secret)",
                "requestBody": body(CreateWebhookBody),
                "responses": {
                    "200": {**json(WebhookOut, "The new endpoint"), "links": _LINKS},
                    **body_errors,
                    **common_errors,
                },
            },
            "get": {
                "operationId": "list_webhooks",
                "summary": "List webhook endpoints, newest first (cursor pages)",
                "parameters": query_parameters(ListWebhooksQuery),
                "responses": {
                    "200": json(WebhookListOut, "One page: data, iterator, done"),
                    "422": problem("Invalid, repeated or unknown query parameters"),
                    **common_errors,
                },
            },
        },
        "/webhooks/{webhook_id}": {
            "get": {
                "operationId": "retrieve_webhook",
                "summary": "Retrieve a webhook endpoint",
                "parameters": [_WEBHOOK_ID],
                "responses": {
                    "200": json(WebhookOut, "The endpoint"),
                    **not_found,
                    **common_errors,
                },
            },
            "patch": {
                "operationId": "update_webhook",
                "summary": "Change an endpoint (absent or null fields stay as they are)",
                "parameters": [_WEBHOOK_ID],
                "requestBody": body(UpdateWebhookBody),
                "responses": {
                    "200": json(WebhookOut, "The updated endpoint"),
                    **body_errors,
                    **not_found,
                    **common_errors,
                },
            },
            "delete": {
                "operationId": "delete_webhook",
                "summary": "Delete an endpoint and its deliveries not yet made",
                "parameters": [_WEBHOOK_ID],
                "responses": {
                    "204": {"description": "Deleted"},
                    **not_found,
                    **common_errors,
                },
            },
        },
        "/webhooks/{webhook_id}/secret": {
            "get": {
                "operationId": "retrieve_webhook_secret",
                "summary": "The endpoint's current signing secret",
                "parameters": [_WEBHOOK_ID],
                "responses": {
                    "200": json(WebhookSecretOut, "The secret"),
                    **not_found,
                    **common_errors,
                },
            },
        },
        "/webhooks/{webhook_id}/secret/rotate": {
            "post": {
                "operationId": "rotate_webhook_secret",
                "summary": "Extension: a new secret now; the previous one keeps signing "
                "alongside for a grace period",
                "parameters": [_WEBHOOK_ID],
                "responses": {
                    "200": json(RotatedSecretOut, "The new secret"),
                    **not_found,
                    **common_errors,
                },
            },
        },
        "/webhooks/{webhook_id}/headers": {
            "get": {
                "operationId": "retrieve_webhook_headers",
                "summary": "Custom headers (sensitive ones by name only)",
                "parameters": [_WEBHOOK_ID],
                "responses": {
                    "200": json(WebhookHeadersOut, "The headers"),
                    **not_found,
                    **common_errors,
                },
            },
            "patch": {
                "operationId": "update_webhook_headers",
                "summary": "Add or replace custom headers; an empty value removes one",
                "parameters": [_WEBHOOK_ID],
                "requestBody": body(UpdateWebhookHeadersBody),
                "responses": {
                    "204": {"description": "Updated"},
                    **body_errors,
                    **not_found,
                    **common_errors,
                },
            },
        },
        "/webhooks/{webhook_id}/deliveries": {
            "get": {
                "operationId": "list_webhook_deliveries",
                "summary": "Extension: the endpoint's delivery log, newest first (cursor pages)",
                "parameters": [_WEBHOOK_ID, *query_parameters(ListWebhooksQuery)],
                "responses": {
                    "200": json(DeliveryListOut, "One page of deliveries with their attempts"),
                    "422": problem("Invalid, repeated or unknown query parameters"),
                    **not_found,
                    **common_errors,
                },
            },
        },
    }
