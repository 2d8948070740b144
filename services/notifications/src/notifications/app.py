"""Wiring: the notifications service as a kit ServiceRuntime."""

from __future__ import annotations

from billing.notifications.v1 import notifications_pb2, notifications_pb2_grpc
from billing_kit.runtime import ServiceRuntime

from notifications.billing.wiring import add_billing_emails, invoice_pdfs
from notifications.config import NotificationsSettings
from notifications.consumers import (
    CUSTOMER_DIRECTORY,
    CUSTOMER_DIRECTORY_BINDINGS,
    customer_directory_handler,
)
from notifications.email.delivery import EmailDelivery
from notifications.email.repository import EMAIL_INDEXES
from notifications.email_servicer import add_email_service
from notifications.repository import INDEXES, RecipientsRepository
from notifications.service import NotificationsService
from notifications.servicer import NotificationsServicer
from notifications.webhooks.delivery import WebhookDelivery
from notifications.webhooks.repository import WEBHOOK_INDEXES
from notifications.webhooks.wiring import add_webhooks

SERVICE_NAME = "notifications"


def create_app(settings: NotificationsSettings) -> NotificationsRuntime:
    """Build the runtime; ``await runtime.start()`` brings it up."""
    runtime = NotificationsRuntime(
        settings, name=SERVICE_NAME, indexes={**INDEXES, **EMAIL_INDEXES, **WEBHOOK_INDEXES}
    )
    runtime.repository = RecipientsRepository(runtime.db)
    service = NotificationsService(runtime.repository)
    runtime.add_consumer(
        CUSTOMER_DIRECTORY,
        bindings=CUSTOMER_DIRECTORY_BINDINGS,
        handler=customer_directory_handler(service),
    )
    servicer = NotificationsServicer(service)
    runtime.add_grpc_service(
        lambda server: notifications_pb2_grpc.add_NotificationsServiceServicer_to_server(
            servicer, server
        ),
        notifications_pb2.DESCRIPTOR.services_by_name["NotificationsService"].full_name,
    )
    runtime.delivery = add_email_service(
        runtime, settings, attachments=invoice_pdfs(runtime, settings)
    )
    add_billing_emails(runtime, settings, runtime.repository, runtime.delivery)
    runtime.webhook_delivery = add_webhooks(runtime, settings)
    return runtime


class NotificationsRuntime(ServiceRuntime):
    """The kit runtime plus the repository and the email delivery workers."""

    repository: RecipientsRepository
    delivery: EmailDelivery
    webhook_delivery: WebhookDelivery

    async def _start_grpc(self) -> None:
        # After the indexes (the workers' claims use them), before serving.
        await self.delivery.start()
        await self.webhook_delivery.start()
        await super()._start_grpc()

    async def _stop_grpc(self) -> None:
        # An attempt in progress finishes (or its lease lets another replica retry)
        # while MongoDB is still open; later steps close it.
        await super()._stop_grpc()
        await self.delivery.stop()
        await self.webhook_delivery.stop()
