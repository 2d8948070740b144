"""Merchant API: the business's add-ons (Dodo's ``/addons``).

Every call is scoped to the API key's business and mode; an add-on of another
business or of the other mode is "not found", exactly like a missing one.
``PATCH`` answers the updated add-on (as Dodo's does); ``DELETE`` (archive) and
``unarchive`` answer 204 with no body.
"""

from __future__ import annotations

from aiohttp import web
from billing.subscriptions.v1 import addons_pb2
from billing_kit.errors import NotFound

from gateway.api.addon_schemas import (
    AddonListOut,
    AddonOut,
    CreateAddonBody,
    ListAddonsQuery,
    RetrieveAddonQuery,
    UpdateAddonBody,
)
from gateway.api.merchant import merchant_api
from gateway.api.parsing import parse_json_body, parse_query
from gateway.api.schemas import dump
from gateway.api_keys import Merchant
from gateway.keys import ADDONS_STUB
from gateway.problems import resource_not_found


@merchant_api
async def create_addon(request: web.Request, merchant: Merchant) -> web.Response:
    """``POST /addons``: a new add-on with a per-unit price."""
    body = await parse_json_body(request, CreateAddonBody)
    message = addons_pb2.CreateAddonRequest(
        business_id=merchant.business_id,
        mode=merchant.proto_mode,
        name=body.name,
        price=body.price,
        currency=body.currency,
        tax_category=body.tax_category,
        max_quantity=body.max_quantity or 0,
        merchant_key_id=merchant.key_id,
    )
    if body.description is not None:
        message.description = body.description
    addon = await request.app[ADDONS_STUB].CreateAddon(message)
    return web.json_response(dump(AddonOut.from_proto(addon)))


@merchant_api
async def retrieve_addon(request: web.Request, merchant: Merchant) -> web.Response:
    """``GET /addons/{id}`` (archived ones too)."""
    parse_query(request, RetrieveAddonQuery)
    try:
        addon = await request.app[ADDONS_STUB].GetAddon(
            addons_pb2.GetAddonRequest(
                business_id=merchant.business_id,
                mode=merchant.proto_mode,
                addon_id=request.match_info["id"],
            )
        )
    except NotFound:
        raise resource_not_found("Addon") from None
    return web.json_response(dump(AddonOut.from_proto(addon)))


@merchant_api
async def list_addons(request: web.Request, merchant: Merchant) -> web.Response:
    """``GET /addons``: one page, newest first, live (or archived) add-ons."""
    query = parse_query(request, ListAddonsQuery)
    reply = await request.app[ADDONS_STUB].ListAddons(
        addons_pb2.ListAddonsRequest(
            business_id=merchant.business_id,
            mode=merchant.proto_mode,
            archived=query.archived,
            page_size=query.page_size,
            page_number=query.page_index,
        )
    )
    return web.json_response(
        dump(AddonListOut(items=[AddonOut.from_proto(a) for a in reply.addons]))
    )


@merchant_api
async def update_addon(request: web.Request, merchant: Merchant) -> web.Response:
    """``PATCH /addons/{id}``: change only the fields sent; the updated add-on."""
    body = await parse_json_body(request, UpdateAddonBody)
    sent = body.model_fields_set
    message = addons_pb2.UpdateAddonRequest(
        business_id=merchant.business_id,
        mode=merchant.proto_mode,
        addon_id=request.match_info["id"],
        merchant_key_id=merchant.key_id,
    )
    if body.name is not None:
        message.name = body.name
    if body.price is not None:
        message.price = body.price
    if body.currency is not None:
        message.currency = body.currency
    if body.tax_category is not None:
        message.tax_category = body.tax_category
    if body.max_quantity is not None:
        message.max_quantity = body.max_quantity
    if body.description is not None:
        message.description = body.description
    elif "description" in sent:
        message.cleared.append("description")
    try:
        addon = await request.app[ADDONS_STUB].UpdateAddon(message)
    except NotFound:
        raise resource_not_found("Addon") from None
    return web.json_response(dump(AddonOut.from_proto(addon)))


@merchant_api
async def archive_addon(request: web.Request, merchant: Merchant) -> web.Response:
    """``DELETE /addons/{id}``: archive (no longer offered); 204, idempotent."""
    await _set_archived(request, merchant, archived=True)
    return web.Response(status=204)


@merchant_api
async def unarchive_addon(request: web.Request, merchant: Merchant) -> web.Response:
    """``POST /addons/{id}/unarchive``: offer it again; 204, idempotent."""
    await _set_archived(request, merchant, archived=False)
    return web.Response(status=204)


async def _set_archived(request: web.Request, merchant: Merchant, *, archived: bool) -> None:
    stub = request.app[ADDONS_STUB]
    message = addons_pb2.ArchiveAddonRequest(
        business_id=merchant.business_id,
        mode=merchant.proto_mode,
        addon_id=request.match_info["id"],
        merchant_key_id=merchant.key_id,
    )
    try:
        if archived:
            await stub.ArchiveAddon(message)
        else:
            await stub.UnarchiveAddon(message)
    except NotFound:
        raise resource_not_found("Addon") from None
