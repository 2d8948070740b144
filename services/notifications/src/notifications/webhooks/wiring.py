"""Wiring of merchant webhooks into the notifications runtime (called from ``app.py``)."""

from __future__ import annotations

from billing.notifications.v1 import webhooks_pb2, webhooks_pb2_grpc
from billing_kit.clock import utc_now
from billing_kit.events import CloudEvent
from billing_kit.runtime import ServiceRuntime
from billing_kit.sealing import Sealer
from pymongo.asynchronous.client_session import AsyncClientSession

from notifications.config import NotificationsSettings
from notifications.repository import RecipientsRepository
from notifications.webhooks.delivery import DeliveryPolicy, WebhookDelivery
from notifications.webhooks.models import DELIVERED_EVENT_TYPES
from notifications.webhooks.repository import WebhooksRepository
from notifications.webhooks.service import WebhooksService
from notifications.webhooks.servicer import WebhooksServicer

# The consumer's purpose (queue ``<prefix>notifications.webhook-events``) and bindings.
WEBHOOK_EVENTS = "webhook-events"
WEBHOOK_EVENTS_BINDINGS = list(DELIVERED_EVENT_TYPES)


def delivery_policy(settings: NotificationsSettings) -> DeliveryPolicy:
    """The worker's policy from the settings."""
    return DeliveryPolicy(
        retry_base_seconds=settings.webhook_retry_base_seconds,
        retry_max_seconds=settings.webhook_retry_max_seconds,
        max_attempts=settings.webhook_max_attempts,
        disable_after_failures=settings.webhook_disable_after_failures,
        disable_after_seconds=settings.webhook_disable_after_seconds,
        timeout_seconds=settings.webhook_timeout_seconds,
        lease_seconds=settings.webhook_lease_seconds,
        allow_private_targets_in_test=settings.webhook_private_targets_allowed,
    )


def add_webhooks(runtime: ServiceRuntime, settings: NotificationsSettings) -> WebhookDelivery:
    """Serve WebhooksService, consume the events merchants hear about, run the workers."""
    repository = WebhooksRepository(runtime.db)
    deliveries: list[WebhookDelivery] = []

    def wake_workers() -> None:
        for delivery in deliveries:
            delivery.wake()

    service = WebhooksService(
        repository,
        RecipientsRepository(runtime.db),
        Sealer(settings.webhook_secret_keys.get_secret_value()),
        clock=utc_now,
        rotation_grace_seconds=settings.webhook_secret_rotation_grace_seconds,
        on_delivery_queued=wake_workers,
        license_sealer=Sealer(settings.license_key_seal_keys.get_secret_value()),
    )
    delivery = WebhookDelivery(
        repository,
        service,
        delivery_policy(settings),
        clock=utc_now,
        workers=settings.webhook_workers,
    )
    deliveries.append(delivery)

    async def handle(event: CloudEvent, session: AsyncClientSession) -> None:
        await service.queue_event(event, session)

    runtime.add_consumer(WEBHOOK_EVENTS, bindings=WEBHOOK_EVENTS_BINDINGS, handler=handle)
    servicer = WebhooksServicer(service)
    runtime.add_grpc_service(
        lambda server: webhooks_pb2_grpc.add_WebhooksServiceServicer_to_server(servicer, server),
        webhooks_pb2.DESCRIPTOR.services_by_name["WebhooksService"].full_name,
    )
    return delivery
