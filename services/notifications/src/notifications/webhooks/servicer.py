"""gRPC adapter of ``WebhooksService``: proto <-> models; domain errors become statuses
in the kit's interceptor. Secrets cross only in ``GetWebhookSecret`` and
``RotateWebhookSecret`` answers."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeAlias

import grpc
from billing.notifications.v1 import webhooks_pb2, webhooks_pb2_grpc
from billing_kit.errors import InvalidArgument, Reason
from billing_kit.scoping import Mode, mode_from_proto, mode_to_proto
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import ValidationError

from notifications.webhooks.models import Delivery, Endpoint, EndpointChanges, EndpointSpec
from notifications.webhooks.service import WebhooksService

Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]


def _ts(moment: datetime) -> Timestamp:
    value = Timestamp()
    value.FromDatetime(moment)
    return value


def _scope(scope: webhooks_pb2.WebhookScope) -> tuple[str, Mode]:
    if not scope.business_id:
        raise InvalidArgument("scope.business_id is required", reason=Reason.INVALID_SCOPE)
    return scope.business_id, mode_from_proto(scope.mode)


def _webhook_id(value: str) -> str:
    if not value:
        raise InvalidArgument("webhook_id is required", reason=Reason.INVALID_WEBHOOK)
    return value


def webhook_to_proto(endpoint: Endpoint) -> webhooks_pb2.Webhook:
    """The wire form of an endpoint (no secret, no header)."""
    message = webhooks_pb2.Webhook(
        webhook_id=endpoint.webhook_id,
        business_id=endpoint.business_id,
        mode=mode_to_proto(endpoint.mode),
        url=endpoint.url,
        description=endpoint.description,
        filter_types=endpoint.filter_types,
        metadata=endpoint.metadata,
        disabled=endpoint.disabled,
        disabled_reason=endpoint.disabled_reason,
        created_at=_ts(endpoint.created_at),
        updated_at=_ts(endpoint.updated_at),
    )
    if endpoint.rate_limit is not None:
        message.rate_limit = endpoint.rate_limit
    return message


def delivery_to_proto(delivery: Delivery) -> webhooks_pb2.WebhookDelivery:
    """The wire form of a delivery and its attempts (no body)."""
    message = webhooks_pb2.WebhookDelivery(
        delivery_id=delivery.delivery_id,
        webhook_id=delivery.webhook_id,
        event_id=delivery.event_id,
        event_type=delivery.event_type,
        status="pending" if delivery.status == "sending" else delivery.status,
        attempts=delivery.attempts,
        created_at=_ts(delivery.created_at),
        attempt_log=[
            webhooks_pb2.WebhookDeliveryAttempt(
                at=_ts(a.at), status_code=a.status_code, duration_ms=a.duration_ms, error=a.error
            )
            for a in reversed(delivery.attempt_log)
        ],
    )
    if delivery.next_attempt_at is not None and delivery.status == "pending":
        message.next_attempt_at.CopyFrom(_ts(delivery.next_attempt_at))
    return message


class WebhooksServicer(webhooks_pb2_grpc.WebhooksServiceServicer):
    """Implements billing.notifications.v1.WebhooksService."""

    def __init__(self, service: WebhooksService) -> None:
        self._service = service

    async def CreateWebhook(
        self, request: webhooks_pb2.CreateWebhookRequest, context: Context
    ) -> webhooks_pb2.Webhook:
        """A new endpoint with a fresh signing secret."""
        business_id, mode = _scope(request.scope)
        try:
            spec = EndpointSpec(
                url=request.url,
                description=request.description,
                filter_types=list(request.filter_types),
                headers=dict(request.headers),
                metadata=dict(request.metadata),
                disabled=request.disabled,
                rate_limit=request.rate_limit if request.HasField("rate_limit") else None,
                idempotency_key=request.idempotency_key or None,
            )
        except ValidationError as exc:
            raise InvalidArgument(_describe(exc), reason=Reason.INVALID_WEBHOOK) from None
        return webhook_to_proto(await self._service.create(business_id, mode, spec))

    async def GetWebhook(
        self, request: webhooks_pb2.GetWebhookRequest, context: Context
    ) -> webhooks_pb2.Webhook:
        """One endpoint of the caller's business."""
        business_id, mode = _scope(request.scope)
        endpoint = await self._service.get(business_id, mode, _webhook_id(request.webhook_id))
        return webhook_to_proto(endpoint)

    async def UpdateWebhook(
        self, request: webhooks_pb2.UpdateWebhookRequest, context: Context
    ) -> webhooks_pb2.Webhook:
        """Change the fields present."""
        business_id, mode = _scope(request.scope)
        changes = EndpointChanges(
            url=request.url if request.HasField("url") else None,
            description=request.description if request.HasField("description") else None,
            filter_types=list(request.filter_types) if request.update_filter_types else None,
            metadata=dict(request.metadata) if request.update_metadata else None,
            disabled=request.disabled if request.HasField("disabled") else None,
            rate_limit=request.rate_limit if request.HasField("rate_limit") else None,
        )
        endpoint = await self._service.update(
            business_id, mode, _webhook_id(request.webhook_id), changes
        )
        return webhook_to_proto(endpoint)

    async def ListWebhooks(
        self, request: webhooks_pb2.ListWebhooksRequest, context: Context
    ) -> webhooks_pb2.ListWebhooksResponse:
        """One cursor page, newest first."""
        business_id, mode = _scope(request.scope)
        page, iterator = await self._service.list_page(
            business_id, mode, limit=request.limit, iterator=request.iterator
        )
        return webhooks_pb2.ListWebhooksResponse(
            webhooks=[webhook_to_proto(e) for e in page], iterator=iterator, done=not iterator
        )

    async def DeleteWebhook(
        self, request: webhooks_pb2.DeleteWebhookRequest, context: Context
    ) -> webhooks_pb2.DeleteWebhookResponse:
        """Remove the endpoint and its pending deliveries."""
        business_id, mode = _scope(request.scope)
        await self._service.delete(business_id, mode, _webhook_id(request.webhook_id))
        return webhooks_pb2.DeleteWebhookResponse()

    async def GetWebhookSecret(
        self, request: webhooks_pb2.GetWebhookRequest, context: Context
    ) -> webhooks_pb2.GetWebhookSecretResponse:
        """The current ``whsec_`` secret."""
        business_id, mode = _scope(request.scope)
        secret = await self._service.secret(business_id, mode, _webhook_id(request.webhook_id))
        return webhooks_pb2.GetWebhookSecretResponse(secret=secret)

    async def RotateWebhookSecret(
        self, request: webhooks_pb2.GetWebhookRequest, context: Context
    ) -> webhooks_pb2.RotateWebhookSecretResponse:
        """A new secret; the old one signs alongside until its grace period ends."""
        business_id, mode = _scope(request.scope)
        secret, expires = await self._service.rotate_secret(
            business_id, mode, _webhook_id(request.webhook_id)
        )
        return webhooks_pb2.RotateWebhookSecretResponse(
            secret=secret, previous_expires_at=_ts(expires)
        )

    async def GetWebhookHeaders(
        self, request: webhooks_pb2.GetWebhookRequest, context: Context
    ) -> webhooks_pb2.WebhookHeaders:
        """Custom headers; sensitive ones by name only."""
        business_id, mode = _scope(request.scope)
        headers, sensitive = await self._service.headers(
            business_id, mode, _webhook_id(request.webhook_id)
        )
        return webhooks_pb2.WebhookHeaders(headers=headers, sensitive=sensitive)

    async def UpdateWebhookHeaders(
        self, request: webhooks_pb2.UpdateWebhookHeadersRequest, context: Context
    ) -> webhooks_pb2.UpdateWebhookHeadersResponse:
        """Add, replace or (empty value) remove headers."""
        business_id, mode = _scope(request.scope)
        await self._service.update_headers(
            business_id, mode, _webhook_id(request.webhook_id), dict(request.headers)
        )
        return webhooks_pb2.UpdateWebhookHeadersResponse()

    async def ListWebhookDeliveries(
        self, request: webhooks_pb2.ListWebhookDeliveriesRequest, context: Context
    ) -> webhooks_pb2.ListWebhookDeliveriesResponse:
        """The endpoint's delivery log, newest first."""
        business_id, mode = _scope(request.scope)
        page, iterator = await self._service.deliveries(
            business_id,
            mode,
            _webhook_id(request.webhook_id),
            limit=request.limit,
            iterator=request.iterator,
        )
        return webhooks_pb2.ListWebhookDeliveriesResponse(
            deliveries=[delivery_to_proto(d) for d in page], iterator=iterator, done=not iterator
        )


def _describe(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'request'}: {e['msg']}" for e in exc.errors()
    )
