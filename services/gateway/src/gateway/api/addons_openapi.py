"""The OpenAPI paths of the ``/addons`` endpoints (merged into ``build_openapi``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from gateway.api.addon_schemas import (
    AddonListOut,
    AddonOut,
    CreateAddonBody,
    ListAddonsQuery,
    RetrieveAddonQuery,
    UpdateAddonBody,
)

ADDON_MODELS: tuple[type[BaseModel], ...] = (
    CreateAddonBody,
    UpdateAddonBody,
    AddonOut,
    AddonListOut,
)
_ADDON_ID = {
    "name": "id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "minLength": 1},
}
_LINKS = {
    operation: {"operationId": operation, "parameters": {"id": "$response.body#/id"}}
    for operation in ("retrieve_addon", "update_addon", "archive_addon", "unarchive_addon")
}
_UNSUPPORTED = (
    "Invalid, missing or unknown fields, or a field this server does not support "
    "(errors names each; type unsupported_field for the latter)"
)
_NO_CONTENT = {"204": {"description": "Done (no body, as in the Dodo API)"}}


def addon_paths(
    *,
    json: Any,
    ref: Any,
    problem: Any,
    query_parameters: Any,
    common_errors: dict[str, Any],
    body_errors: dict[str, Any],
) -> dict[str, Any]:
    """``/addons`` (Dodo's, plus the ``max_quantity`` extension)."""
    not_found = {"404": problem("No such add-on for this business and mode")}
    body_errors = {**body_errors, "422": problem(_UNSUPPORTED)}

    def body(model: type[BaseModel]) -> dict[str, Any]:
        return {"required": True, "content": {"application/json": {"schema": ref(model)}}}

    return {
        "/addons": {
            "post": {
                "operationId": "create_addon",
                "summary": "Create an add-on with a per-unit price",
                "requestBody": body(CreateAddonBody),
                "responses": {
                    "200": {**json(AddonOut, "The new add-on"), "links": _LINKS},
                    **body_errors,
                    **common_errors,
                },
            },
            "get": {
                "operationId": "list_addons",
                "summary": "List live (or archived) add-ons, newest first, one page at a time",
                "parameters": query_parameters(ListAddonsQuery),
                "responses": {
                    "200": json(AddonListOut, "One page of add-ons"),
                    "422": problem("Invalid, repeated or unknown query parameters"),
                    **common_errors,
                },
            },
        },
        "/addons/{id}": {
            "get": {
                "operationId": "retrieve_addon",
                "summary": "Retrieve an add-on (archived ones too)",
                "parameters": [_ADDON_ID, *query_parameters(RetrieveAddonQuery)],
                "responses": {
                    "200": json(AddonOut, "The add-on"),
                    **not_found,
                    "422": problem("Invalid, repeated or unknown query parameters"),
                    **common_errors,
                },
            },
            "patch": {
                "operationId": "update_addon",
                "summary": "Change an add-on's fields (null clears the description)",
                "parameters": [_ADDON_ID],
                "requestBody": body(UpdateAddonBody),
                "responses": {
                    "200": json(AddonOut, "The updated add-on"),
                    **body_errors,
                    **not_found,
                    **common_errors,
                },
            },
            "delete": {
                "operationId": "archive_addon",
                "summary": "Archive an add-on (no longer offered); repeating it is harmless",
                "parameters": [_ADDON_ID],
                "responses": {**_NO_CONTENT, **not_found, **common_errors},
            },
        },
        "/addons/{id}/unarchive": {
            "post": {
                "operationId": "unarchive_addon",
                "summary": "Offer an archived add-on again; repeating it is harmless",
                "parameters": [_ADDON_ID],
                "responses": {**_NO_CONTENT, **not_found, **common_errors},
            },
        },
    }
