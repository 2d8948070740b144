"""Merchant API: the business's product catalogue (Dodo's ``/products``).

Every call is scoped to the API key's business and mode; a product of another
business or of the other mode is "not found", exactly like a missing one.
``PATCH``, ``DELETE`` (archive) and ``unarchive`` answer 204 with no body, as
Dodo's do (the SDK returns None and re-reads with ``retrieve``).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from billing.subscriptions.v1 import products_pb2
from billing_kit.errors import NotFound

from gateway.api.merchant import merchant_api
from gateway.api.parsing import M, parse_json_body, parse_query
from gateway.api.product_schemas import (
    CreateProductBody,
    ListProductsQuery,
    ProductListItemOut,
    ProductListOut,
    ProductOut,
    RetrieveProductQuery,
    UpdateProductBody,
    duration_to_proto,
    price_to_proto,
)
from gateway.api.schemas import dump
from gateway.api_keys import Merchant
from gateway.keys import PRODUCTS_STUB
from gateway.problems import ApiProblem, resource_not_found

# Fields a PATCH may set to null, and what null means for them (see UpdateProductBody).
_CLEARABLE = (
    "description",
    "license_key_activations_limit",
    "license_key_duration",
    "license_key_activation_message",
    "metadata",
)


_PRICE_TAGS = (".one_time_price.", ".recurring_price.")


async def _parse_product_body(request: web.Request, model: type[M]) -> M:
    """The body as ``model``; a 422 names price fields as sent (``price.price``).

    pydantic puts the price's ``type`` in the path of a discriminated union's error
    (``price.one_time_price.price``); the merchant never wrote that segment.
    """
    try:
        return await parse_json_body(request, model)
    except ApiProblem as problem:
        if problem.status != 422 or not problem.errors:
            raise
        for error in problem.errors:
            for tag in _PRICE_TAGS:
                error["field"] = error["field"].replace(tag, ".")
        fields = "; ".join(dict.fromkeys(f"{e['field']}: {e['message']}" for e in problem.errors))
        raise ApiProblem(
            422, problem.code, f"Invalid body: {fields}", errors=problem.errors
        ) from None


@merchant_api
async def create_product(request: web.Request, merchant: Merchant) -> web.Response:
    """``POST /products``: a new product with a one-time or recurring price."""
    body = await _parse_product_body(request, CreateProductBody)
    message = products_pb2.CreateProductRequest(
        business_id=merchant.business_id,
        mode=merchant.proto_mode,
        name=body.name,
        price=price_to_proto(body.price),
        tax_category=body.tax_category,
        license_key_enabled=bool(body.license_key_enabled),
        metadata=body.metadata or {},
        merchant_key_id=merchant.key_id,
        plan_group=body.plan_group or "",
        max_quantity=body.max_quantity or 0,
        addons=body.addons or [],
    )
    if body.description is not None:
        message.description = body.description
    if body.license_key_activations_limit is not None:
        message.license_key_activations_limit = body.license_key_activations_limit
    if body.license_key_duration is not None:
        message.license_key_duration.CopyFrom(duration_to_proto(body.license_key_duration))
    if body.license_key_activation_message is not None:
        message.license_key_activation_message = body.license_key_activation_message
    product = await request.app[PRODUCTS_STUB].CreateProduct(message)
    return web.json_response(dump(ProductOut.from_proto(product)))


@merchant_api
async def retrieve_product(request: web.Request, merchant: Merchant) -> web.Response:
    """``GET /products/{id}`` (archived products too)."""
    parse_query(request, RetrieveProductQuery)
    try:
        product = await request.app[PRODUCTS_STUB].GetProduct(
            products_pb2.GetProductRequest(
                business_id=merchant.business_id,
                mode=merchant.proto_mode,
                product_id=request.match_info["id"],
            )
        )
    except NotFound:
        raise resource_not_found("Product") from None
    return web.json_response(dump(ProductOut.from_proto(product)))


@merchant_api
async def list_products(request: web.Request, merchant: Merchant) -> web.Response:
    """``GET /products``: one page, newest first, live (or archived) products."""
    query = parse_query(request, ListProductsQuery)
    message = products_pb2.ListProductsRequest(
        business_id=merchant.business_id,
        mode=merchant.proto_mode,
        archived=query.archived,
        page_size=query.page_size,
        page_number=query.page_index,
    )
    if query.recurring is not None:
        message.recurring = query.recurring
    reply = await request.app[PRODUCTS_STUB].ListProducts(message)
    page = ProductListOut(items=[ProductListItemOut.from_proto(p) for p in reply.products])
    return web.json_response(dump(page))


@merchant_api
async def update_product(request: web.Request, merchant: Merchant) -> web.Response:
    """``PATCH /products/{id}``: change only the fields sent; 204."""
    body = await _parse_product_body(request, UpdateProductBody)
    sent = body.model_fields_set
    message = products_pb2.UpdateProductRequest(
        business_id=merchant.business_id,
        mode=merchant.proto_mode,
        product_id=request.match_info["id"],
        merchant_key_id=merchant.key_id,
    )
    simple: dict[str, Any] = {
        field: getattr(body, field)
        for field in (
            "name",
            "tax_category",
            "license_key_enabled",
            "description",
            "license_key_activations_limit",
            "license_key_activation_message",
            "plan_group",
            "max_quantity",
        )
        if field in sent and getattr(body, field) is not None
    }
    for field, value in simple.items():
        setattr(message, field, value)
    if body.price is not None:
        message.price.CopyFrom(price_to_proto(body.price))
    if body.license_key_duration is not None:
        message.license_key_duration.CopyFrom(duration_to_proto(body.license_key_duration))
    if body.metadata is not None:
        message.metadata.SetInParent()  # {} is a change too: it removes every key
        message.metadata.values.update(body.metadata)
    if body.addons is not None:
        message.addons.SetInParent()  # [] is a change too: it removes every add-on
        message.addons.addon_ids.extend(body.addons)
    message.cleared.extend(f for f in _CLEARABLE if f in sent and getattr(body, f) is None)
    try:
        await request.app[PRODUCTS_STUB].UpdateProduct(message)
    except NotFound:
        raise resource_not_found("Product") from None
    return web.Response(status=204)


@merchant_api
async def archive_product(request: web.Request, merchant: Merchant) -> web.Response:
    """``DELETE /products/{id}``: archive (no longer offered); 204, idempotent."""
    await _set_archived(request, merchant, archived=True)
    return web.Response(status=204)


@merchant_api
async def unarchive_product(request: web.Request, merchant: Merchant) -> web.Response:
    """``POST /products/{id}/unarchive``: offer it again; 204, idempotent."""
    await _set_archived(request, merchant, archived=False)
    return web.Response(status=204)


async def _set_archived(request: web.Request, merchant: Merchant, *, archived: bool) -> None:
    stub = request.app[PRODUCTS_STUB]
    message = products_pb2.ArchiveProductRequest(
        business_id=merchant.business_id,
        mode=merchant.proto_mode,
        product_id=request.match_info["id"],
        merchant_key_id=merchant.key_id,
    )
    try:
        if archived:
            await stub.ArchiveProduct(message)
        else:
            await stub.UnarchiveProduct(message)
    except NotFound:
        raise resource_not_found("Product") from None
