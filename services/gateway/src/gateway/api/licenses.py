"""License APIs: the public one the software calls, and the merchant's key management.

Public (``/licenses/*``): no API key is needed. The SDK sends one anyway; it is
neither required nor checked, so a key of another business (or none) changes
nothing in the answer. An unknown, malformed or disabled key gets one answer:
activate/deactivate a 404 problem, validate ``{"valid": false}``. Calls are rate
limited per client and per key by the subscriptions service (429).

Merchant (``/license_keys``, ``/license_key_instances``): scoped to the API key's
business and mode; another business's id is "not found", like a missing one.
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from billing.auth.v1 import auth_pb2
from billing.subscriptions.v1 import licenses_pb2, products_pb2
from billing_kit.errors import DomainError, NotFound
from google.protobuf.timestamp_pb2 import Timestamp

from gateway.api.license_schemas import (
    ActivatedCustomerOut,
    ActivatedProductOut,
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
from gateway.api.merchant import merchant_api
from gateway.api.parsing import parse_json_body, parse_query
from gateway.api.schemas import dump
from gateway.api_keys import Merchant
from gateway.keys import AUTH_STUB, LICENSES_STUB, PRODUCTS_STUB
from gateway.problems import ApiProblem, resource_not_found
from gateway.web.security import client_key


def _invalid_key() -> ApiProblem:
    # The same body whatever made the key unusable (unknown, malformed, disabled, expired).
    return ApiProblem(404, "NOT_FOUND", "Resource not found")


# --- public ---------------------------------------------------------------------------------


async def activate_license(request: web.Request) -> web.Response:
    """``POST /licenses/activate``: a new instance of the key, within its limit."""
    body = await parse_json_body(request, ActivateLicenseBody)
    try:
        done = await request.app[LICENSES_STUB].ActivateLicenseKey(
            licenses_pb2.ActivateLicenseKeyRequest(
                license_key=body.license_key, name=body.name, client_key=client_key(request)
            )
        )
    except NotFound:
        raise _invalid_key() from None
    instance = done.instance
    customer, product = await asyncio.gather(
        _customer(request, instance, done.customer_id), _product(request, instance, done.product_id)
    )
    out = LicenseActivateOut(
        id=instance.instance_id,
        business_id=instance.business_id,
        created_at=LicenseKeyInstanceOut.from_proto(instance).created_at,
        customer=customer,
        license_key_id=instance.license_key_id,
        name=instance.name,
        product=product,
    )
    return web.json_response(dump(out))


async def _customer(
    request: web.Request, instance: licenses_pb2.LicenseKeyInstance, customer_id: str
) -> ActivatedCustomerOut:
    """The key owner's limited details; empty (never a failed activation) if auth cannot say."""
    try:
        customer = await request.app[AUTH_STUB].GetCustomer(
            auth_pb2.GetCustomerRequest(
                business_id=instance.business_id, mode=instance.mode, customer_id=customer_id
            )
        )
    except DomainError:
        return ActivatedCustomerOut(customer_id=customer_id, email="", name="")
    return ActivatedCustomerOut(customer_id=customer_id, email=customer.email, name=customer.name)


async def _product(
    request: web.Request, instance: licenses_pb2.LicenseKeyInstance, product_id: str
) -> ActivatedProductOut:
    try:
        product = await request.app[PRODUCTS_STUB].GetProduct(
            products_pb2.GetProductRequest(
                business_id=instance.business_id, mode=instance.mode, product_id=product_id
            )
        )
    except DomainError:
        return ActivatedProductOut(product_id=product_id)
    return ActivatedProductOut(product_id=product_id, name=product.name)


async def deactivate_license(request: web.Request) -> web.Response:
    """``POST /licenses/deactivate``: remove one of the key's instances (204)."""
    body = await parse_json_body(request, DeactivateLicenseBody)
    try:
        await request.app[LICENSES_STUB].DeactivateLicenseKey(
            licenses_pb2.DeactivateLicenseKeyRequest(
                license_key=body.license_key,
                license_key_instance_id=body.license_key_instance_id,
                client_key=client_key(request),
            )
        )
    except NotFound:
        raise _invalid_key() from None
    return web.Response(status=204)


async def validate_license(request: web.Request) -> web.Response:
    """``POST /licenses/validate``: ``{"valid": true|false}``."""
    body = await parse_json_body(request, ValidateLicenseBody)
    answer = await request.app[LICENSES_STUB].ValidateLicenseKey(
        licenses_pb2.ValidateLicenseKeyRequest(
            license_key=body.license_key,
            license_key_instance_id=body.license_key_instance_id or "",
            client_key=client_key(request),
        )
    )
    return web.json_response(dump(ValidateLicenseOut(valid=answer.valid)))


# --- merchant -------------------------------------------------------------------------------


def _stamp(moment: object) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)  # type: ignore[arg-type]
    return stamp


@merchant_api
async def create_license_key(request: web.Request, merchant: Merchant) -> web.Response:
    """``POST /license_keys``: import a key for one of the business's customers."""
    body = await parse_json_body(request, CreateLicenseKeyBody)
    message = licenses_pb2.ImportLicenseKeyRequest(
        business_id=merchant.business_id,
        mode=merchant.proto_mode,
        customer_id=body.customer_id,
        product_id=body.product_id,
        key=body.key,
        merchant_key_id=merchant.key_id,
    )
    if body.activations_limit is not None:
        message.activations_limit = body.activations_limit
    if body.expires_at is not None:
        message.expires_at.CopyFrom(_stamp(body.expires_at))
    try:
        key = await request.app[LICENSES_STUB].ImportLicenseKey(message)
    except NotFound:
        raise resource_not_found("Product") from None
    return web.json_response(dump(LicenseKeyOut.from_proto(key)))


@merchant_api
async def list_license_keys(request: web.Request, merchant: Merchant) -> web.Response:
    """``GET /license_keys``: one page, newest first."""
    query = parse_query(request, ListLicenseKeysQuery)
    found = await request.app[LICENSES_STUB].ListLicenseKeys(
        licenses_pb2.ListLicenseKeysRequest(
            business_id=merchant.business_id,
            mode=merchant.proto_mode,
            customer_id=query.customer_id or "",
            product_id=query.product_id or "",
            status=query.status or "",
            page_size=query.page_size,
            page_number=query.page_index,
        )
    )
    items = [LicenseKeyOut.from_proto(key) for key in found.license_keys]
    return web.json_response(dump(LicenseKeyListOut(items=items)))


@merchant_api
async def retrieve_license_key(request: web.Request, merchant: Merchant) -> web.Response:
    """``GET /license_keys/{id}``."""
    try:
        key = await request.app[LICENSES_STUB].GetLicenseKey(
            licenses_pb2.GetLicenseKeyRequest(
                business_id=merchant.business_id,
                mode=merchant.proto_mode,
                license_key_id=request.match_info["id"],
            )
        )
    except NotFound:
        raise resource_not_found("License key") from None
    return web.json_response(dump(LicenseKeyOut.from_proto(key)))


@merchant_api
async def update_license_key(request: web.Request, merchant: Merchant) -> web.Response:
    """``PATCH /license_keys/{id}``: limit, disabled, expiry (null clears limit/expiry)."""
    body = await parse_json_body(request, UpdateLicenseKeyBody)
    given = body.model_fields_set
    message = licenses_pb2.UpdateLicenseKeyRequest(
        business_id=merchant.business_id,
        mode=merchant.proto_mode,
        license_key_id=request.match_info["id"],
        merchant_key_id=merchant.key_id,
    )
    if "activations_limit" in given:
        if body.activations_limit is None:
            message.cleared.append("activations_limit")
        else:
            message.activations_limit = body.activations_limit
    if body.disabled is not None:
        message.disabled = body.disabled
    if "expires_at" in given:
        if body.expires_at is None:
            message.cleared.append("expires_at")
        else:
            message.expires_at.CopyFrom(_stamp(body.expires_at))
    try:
        key = await request.app[LICENSES_STUB].UpdateLicenseKey(message)
    except NotFound:
        raise resource_not_found("License key") from None
    return web.json_response(dump(LicenseKeyOut.from_proto(key)))


@merchant_api
async def list_license_key_instances(request: web.Request, merchant: Merchant) -> web.Response:
    """``GET /license_key_instances``: one page, newest first (of one key if asked)."""
    query = parse_query(request, ListLicenseKeyInstancesQuery)
    found = await request.app[LICENSES_STUB].ListLicenseKeyInstances(
        licenses_pb2.ListLicenseKeyInstancesRequest(
            business_id=merchant.business_id,
            mode=merchant.proto_mode,
            license_key_id=query.license_key_id or "",
            page_size=query.page_size,
            page_number=query.page_index,
        )
    )
    items = [LicenseKeyInstanceOut.from_proto(i) for i in found.instances]
    return web.json_response(dump(LicenseKeyInstanceListOut(items=items)))


@merchant_api
async def retrieve_license_key_instance(request: web.Request, merchant: Merchant) -> web.Response:
    """``GET /license_key_instances/{id}``."""
    try:
        instance = await request.app[LICENSES_STUB].GetLicenseKeyInstance(
            licenses_pb2.GetLicenseKeyInstanceRequest(
                business_id=merchant.business_id,
                mode=merchant.proto_mode,
                instance_id=request.match_info["id"],
            )
        )
    except NotFound:
        raise resource_not_found("License key instance") from None
    return web.json_response(dump(LicenseKeyInstanceOut.from_proto(instance)))


@merchant_api
async def update_license_key_instance(request: web.Request, merchant: Merchant) -> web.Response:
    """``PATCH /license_key_instances/{id}``: rename."""
    body = await parse_json_body(request, UpdateLicenseKeyInstanceBody)
    try:
        instance = await request.app[LICENSES_STUB].UpdateLicenseKeyInstance(
            licenses_pb2.UpdateLicenseKeyInstanceRequest(
                business_id=merchant.business_id,
                mode=merchant.proto_mode,
                instance_id=request.match_info["id"],
                name=body.name,
                merchant_key_id=merchant.key_id,
            )
        )
    except NotFound:
        raise resource_not_found("License key instance") from None
    return web.json_response(dump(LicenseKeyInstanceOut.from_proto(instance)))


ROUTES = [
    web.post("/licenses/activate", activate_license, name="activate_license"),
    web.post("/licenses/deactivate", deactivate_license, name="deactivate_license"),
    web.post("/licenses/validate", validate_license, name="validate_license"),
    web.post("/license_keys", create_license_key, name="create_license_key"),
    web.get("/license_keys", list_license_keys, name="list_license_keys", allow_head=False),
    web.get(
        "/license_keys/{id}", retrieve_license_key, name="retrieve_license_key", allow_head=False
    ),
    web.patch("/license_keys/{id}", update_license_key, name="update_license_key"),
    web.get(
        "/license_key_instances",
        list_license_key_instances,
        name="list_license_key_instances",
        allow_head=False,
    ),
    web.get(
        "/license_key_instances/{id}",
        retrieve_license_key_instance,
        name="retrieve_license_key_instance",
        allow_head=False,
    ),
    web.patch(
        "/license_key_instances/{id}",
        update_license_key_instance,
        name="update_license_key_instance",
    ),
]
