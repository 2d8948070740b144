"""Merchant API: webhook endpoints (the SDK's ``client.webhooks``), their secrets,
headers and delivery log, served by notifications' WebhooksService.

Every call is scoped to the API key's business and mode; another business's
endpoint is "not found", exactly like a missing one. The secret crosses only in
``GET /webhooks/{id}/secret`` and the rotate extension's answer.
"""

from __future__ import annotations

from datetime import UTC

from aiohttp import web
from billing.notifications.v1 import webhooks_pb2
from billing_kit.errors import InvalidArgument, NotFound, PermissionDenied, Reason

from gateway.api.merchant import merchant_api
from gateway.api.parsing import parse_json_body, parse_query
from gateway.api.schemas import dump
from gateway.api.webhooks_schemas import (
    CreateWebhookBody,
    DeliveryListOut,
    DeliveryOut,
    ListWebhooksQuery,
    RotatedSecretOut,
    UpdateWebhookBody,
    UpdateWebhookHeadersBody,
    WebhookHeadersOut,
    WebhookListOut,
    WebhookOut,
    WebhookSecretOut,
)
from gateway.api_keys import Merchant
from gateway.keys import WEBHOOKS_STUB
from gateway.problems import ApiProblem, resource_not_found


def _scope(merchant: Merchant) -> webhooks_pb2.WebhookScope:
    return webhooks_pb2.WebhookScope(business_id=merchant.business_id, mode=merchant.proto_mode)


def _id(request: web.Request) -> str:
    return request.match_info["webhook_id"]


def _refused(exc: InvalidArgument) -> ApiProblem:
    # The service's own checks (reserved header names, a header count after a merge):
    # a 422 naming the field, as the body's validation would.
    field = exc.field or "body"
    return ApiProblem(
        422,
        "INVALID_REQUEST_BODY",
        f"Invalid body: {exc.message}",
        errors=[{"field": field, "message": exc.message, "type": exc.reason.value.lower()}],
    )


def _get_request(request: web.Request, merchant: Merchant) -> webhooks_pb2.GetWebhookRequest:
    return webhooks_pb2.GetWebhookRequest(scope=_scope(merchant), webhook_id=_id(request))


@merchant_api
async def create_webhook(request: web.Request, merchant: Merchant) -> web.Response:
    """``POST /webhooks``: a new endpoint with a fresh signing secret."""
    body = await parse_json_body(request, CreateWebhookBody)
    try:
        hook = await request.app[WEBHOOKS_STUB].CreateWebhook(
            webhooks_pb2.CreateWebhookRequest(
                scope=_scope(merchant),
                url=body.url,
                description=body.description or "",
                filter_types=body.filter_types or [],
                headers=body.headers or {},
                metadata=body.metadata or {},
                disabled=bool(body.disabled),
                idempotency_key=body.idempotency_key or "",
            )
        )
    except InvalidArgument as exc:
        raise _refused(exc) from None
    return web.json_response(dump(WebhookOut.from_proto(hook)))


@merchant_api
async def list_webhooks(request: web.Request, merchant: Merchant) -> web.Response:
    """``GET /webhooks``: cursor pages ``{data, iterator, done}``, newest first."""
    query = parse_query(request, ListWebhooksQuery)
    reply = await request.app[WEBHOOKS_STUB].ListWebhooks(
        webhooks_pb2.ListWebhooksRequest(
            scope=_scope(merchant), limit=query.limit, iterator=query.iterator or ""
        )
    )
    page = WebhookListOut(
        data=[WebhookOut.from_proto(h) for h in reply.webhooks],
        iterator=reply.iterator or None,
        done=reply.done,
    )
    return web.json_response(dump(page))


@merchant_api
async def retrieve_webhook(request: web.Request, merchant: Merchant) -> web.Response:
    """``GET /webhooks/{webhook_id}``."""
    try:
        hook = await request.app[WEBHOOKS_STUB].GetWebhook(_get_request(request, merchant))
    except (NotFound, PermissionDenied, InvalidArgument):
        raise resource_not_found("Webhook") from None
    return web.json_response(dump(WebhookOut.from_proto(hook)))


@merchant_api
async def update_webhook(request: web.Request, merchant: Merchant) -> web.Response:
    """``PATCH /webhooks/{webhook_id}``: absent or null fields stay as they are."""
    body = await parse_json_body(request, UpdateWebhookBody)
    rpc = webhooks_pb2.UpdateWebhookRequest(scope=_scope(merchant), webhook_id=_id(request))
    if body.url is not None:
        rpc.url = body.url
    if body.description is not None:
        rpc.description = body.description
    if body.disabled is not None:
        rpc.disabled = body.disabled
    if body.filter_types is not None:
        rpc.update_filter_types = True
        rpc.filter_types.extend(body.filter_types)
    if body.metadata is not None:
        rpc.update_metadata = True
        rpc.metadata.update(body.metadata)
    try:
        hook = await request.app[WEBHOOKS_STUB].UpdateWebhook(rpc)
    except (NotFound, PermissionDenied):
        raise resource_not_found("Webhook") from None
    except InvalidArgument as exc:
        raise _refused(exc) from None
    return web.json_response(dump(WebhookOut.from_proto(hook)))


@merchant_api
async def delete_webhook(request: web.Request, merchant: Merchant) -> web.Response:
    """``DELETE /webhooks/{webhook_id}``: the endpoint and its pending deliveries."""
    try:
        await request.app[WEBHOOKS_STUB].DeleteWebhook(
            webhooks_pb2.DeleteWebhookRequest(scope=_scope(merchant), webhook_id=_id(request))
        )
    except (NotFound, PermissionDenied, InvalidArgument):
        raise resource_not_found("Webhook") from None
    return web.Response(status=204)


@merchant_api
async def retrieve_webhook_secret(request: web.Request, merchant: Merchant) -> web.Response:
    """``GET /webhooks/{webhook_id}/secret``: ``{secret: "whsec_…"}``."""
    try:
        reply = await request.app[WEBHOOKS_STUB].GetWebhookSecret(_get_request(request, merchant))
    except (NotFound, PermissionDenied, InvalidArgument):
        raise resource_not_found("Webhook") from None
    response = web.json_response(dump(WebhookSecretOut(secret=reply.secret)))
    response.headers["Cache-Control"] = "no-store"
    return response


@merchant_api
async def rotate_webhook_secret(request: web.Request, merchant: Merchant) -> web.Response:
    """``POST /webhooks/{webhook_id}/secret/rotate`` (extension): a new secret now; the
    previous one keeps signing alongside until ``previous_secret_expires_at``."""
    try:
        reply = await request.app[WEBHOOKS_STUB].RotateWebhookSecret(
            _get_request(request, merchant)
        )
    except (NotFound, PermissionDenied, InvalidArgument):
        raise resource_not_found("Webhook") from None
    out = RotatedSecretOut(
        secret=reply.secret,
        previous_secret_expires_at=reply.previous_expires_at.ToDatetime(tzinfo=UTC),
    )
    response = web.json_response(dump(out))
    response.headers["Cache-Control"] = "no-store"
    return response


@merchant_api
async def retrieve_webhook_headers(request: web.Request, merchant: Merchant) -> web.Response:
    """``GET /webhooks/{webhook_id}/headers``: values of sensitive headers are withheld."""
    try:
        reply = await request.app[WEBHOOKS_STUB].GetWebhookHeaders(_get_request(request, merchant))
    except (NotFound, PermissionDenied, InvalidArgument):
        raise resource_not_found("Webhook") from None
    out = WebhookHeadersOut(headers=dict(reply.headers), sensitive=list(reply.sensitive))
    return web.json_response(dump(out))


@merchant_api
async def update_webhook_headers(request: web.Request, merchant: Merchant) -> web.Response:
    """``PATCH /webhooks/{webhook_id}/headers``: add or replace; an empty value removes one."""
    body = await parse_json_body(request, UpdateWebhookHeadersBody)
    try:
        await request.app[WEBHOOKS_STUB].UpdateWebhookHeaders(
            webhooks_pb2.UpdateWebhookHeadersRequest(
                scope=_scope(merchant), webhook_id=_id(request), headers=body.headers
            )
        )
    except (NotFound, PermissionDenied):
        raise resource_not_found("Webhook") from None
    except InvalidArgument as exc:
        if exc.reason is not Reason.INVALID_WEBHOOK or exc.field is None:
            raise resource_not_found("Webhook") from None
        raise _refused(exc) from None
    return web.Response(status=204)


@merchant_api
async def list_webhook_deliveries(request: web.Request, merchant: Merchant) -> web.Response:
    """``GET /webhooks/{webhook_id}/deliveries`` (extension): the delivery log, newest first."""
    query = parse_query(request, ListWebhooksQuery)
    try:
        reply = await request.app[WEBHOOKS_STUB].ListWebhookDeliveries(
            webhooks_pb2.ListWebhookDeliveriesRequest(
                scope=_scope(merchant),
                webhook_id=_id(request),
                limit=query.limit,
                iterator=query.iterator or "",
            )
        )
    except (NotFound, PermissionDenied):
        raise resource_not_found("Webhook") from None
    page = DeliveryListOut(
        data=[DeliveryOut.from_proto(d) for d in reply.deliveries],
        iterator=reply.iterator or None,
        done=reply.done,
    )
    return web.json_response(dump(page))
