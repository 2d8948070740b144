"""The license part of the OpenAPI document: the public ``/licenses/*`` calls and the
merchant's ``/license_keys`` and ``/license_key_instances``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from gateway.api.license_schemas import (
    ActivateLicenseBody,
    CreateLicenseKeyBody,
    DeactivateLicenseBody,
    LicenseActivateOut,
    LicenseKeyInstanceListOut,
    LicenseKeyInstanceOut,
    LicenseKeyListOut,
    LicenseKeyOut,
    ListLicenseKeyInstancesQuery,
    ListLicenseKeysQuery,
    UpdateLicenseKeyBody,
    UpdateLicenseKeyInstanceBody,
    ValidateLicenseBody,
    ValidateLicenseOut,
)
from gateway.api.openapi import (
    _BODY_ERRORS,
    _COMMON_ERRORS,
    _json,
    _problem,
    _query_parameters,
    _ref,
)

MODELS: tuple[type[BaseModel], ...] = (
    ActivateLicenseBody,
    DeactivateLicenseBody,
    ValidateLicenseBody,
    ValidateLicenseOut,
    LicenseActivateOut,
    CreateLicenseKeyBody,
    UpdateLicenseKeyBody,
    UpdateLicenseKeyInstanceBody,
    LicenseKeyOut,
    LicenseKeyListOut,
    LicenseKeyInstanceOut,
    LicenseKeyInstanceListOut,
)

_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
# The public calls need no API key: the body's license key is the credential.
_PUBLIC_ERRORS = {k: v for k, v in _COMMON_ERRORS.items() if k != "401"}
_INVALID_KEY = _problem(
    "The key is unknown, malformed, disabled, expired or no longer entitled (one answer for "
    "all), or the instance is not one of the key's"
)


def _body(model: type[BaseModel]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": _ref(model)}}}


def paths() -> dict[str, Any]:
    """The license paths."""
    key_missing = {"404": _problem("No such license key for this business and mode")}
    instance_missing = {"404": _problem("No such instance for this business and mode")}
    return {
        "/licenses/activate": {
            "post": {
                "operationId": "activate_license",
                "summary": "Activate a license key for a new instance (public: no API key)",
                "security": [],
                "requestBody": _body(ActivateLicenseBody),
                "responses": {
                    "200": _json(LicenseActivateOut, "The new instance"),
                    **_BODY_ERRORS,
                    "404": _INVALID_KEY,
                    "409": _problem("The key has reached its activation limit"),
                    **_PUBLIC_ERRORS,
                },
            },
        },
        "/licenses/deactivate": {
            "post": {
                "operationId": "deactivate_license",
                "summary": "Remove an instance of a license key, freeing its slot (public)",
                "security": [],
                "requestBody": _body(DeactivateLicenseBody),
                "responses": {
                    "204": {"description": "Removed"},
                    **_BODY_ERRORS,
                    "404": _INVALID_KEY,
                    **_PUBLIC_ERRORS,
                },
            },
        },
        "/licenses/validate": {
            "post": {
                "operationId": "validate_license",
                "summary": "Whether a license key (and instance) works now (public)",
                "security": [],
                "requestBody": _body(ValidateLicenseBody),
                "responses": {
                    "200": _json(ValidateLicenseOut, "valid: false for any unusable key"),
                    **_BODY_ERRORS,
                    **_PUBLIC_ERRORS,
                },
            },
        },
        "/license_keys": {
            "post": {
                "operationId": "create_license_key",
                "summary": "Import a license key for one of the business's customers",
                "requestBody": _body(CreateLicenseKeyBody),
                "responses": {
                    "200": _json(LicenseKeyOut, "The imported key"),
                    **_BODY_ERRORS,
                    "404": _problem("No such product for this business and mode"),
                    "409": _problem("This key already exists"),
                    **_COMMON_ERRORS,
                },
            },
            "get": {
                "operationId": "list_license_keys",
                "summary": "List license keys, newest first, one page at a time",
                "parameters": _query_parameters(ListLicenseKeysQuery),
                "responses": {
                    "200": _json(LicenseKeyListOut, "One page of keys"),
                    "422": _problem("Invalid, repeated or unknown query parameters"),
                    **_COMMON_ERRORS,
                },
            },
        },
        "/license_keys/{id}": {
            "get": {
                "operationId": "retrieve_license_key",
                "summary": "Retrieve a license key",
                "parameters": [_ID],
                "responses": {
                    "200": _json(LicenseKeyOut, "The key"),
                    **key_missing,
                    **_COMMON_ERRORS,
                },
            },
            "patch": {
                "operationId": "update_license_key",
                "summary": "Change a key's activation limit, disabled flag or expiry "
                "(null clears the limit or the expiry)",
                "parameters": [_ID],
                "requestBody": _body(UpdateLicenseKeyBody),
                "responses": {
                    "200": _json(LicenseKeyOut, "The updated key"),
                    **_BODY_ERRORS,
                    **key_missing,
                    **_COMMON_ERRORS,
                },
            },
        },
        "/license_key_instances": {
            "get": {
                "operationId": "list_license_key_instances",
                "summary": "List activated instances, newest first, one page at a time",
                "parameters": _query_parameters(ListLicenseKeyInstancesQuery),
                "responses": {
                    "200": _json(LicenseKeyInstanceListOut, "One page of instances"),
                    "422": _problem("Invalid, repeated or unknown query parameters"),
                    **_COMMON_ERRORS,
                },
            },
        },
        "/license_key_instances/{id}": {
            "get": {
                "operationId": "retrieve_license_key_instance",
                "summary": "Retrieve an instance",
                "parameters": [_ID],
                "responses": {
                    "200": _json(LicenseKeyInstanceOut, "The instance"),
                    **instance_missing,
                    **_COMMON_ERRORS,
                },
            },
            "patch": {
                "operationId": "update_license_key_instance",
                "summary": "Rename an instance",
                "parameters": [_ID],
                "requestBody": _body(UpdateLicenseKeyInstanceBody),
                "responses": {
                    "200": _json(LicenseKeyInstanceOut, "The renamed instance"),
                    **_BODY_ERRORS,
                    **instance_missing,
                    **_COMMON_ERRORS,
                },
            },
        },
    }
