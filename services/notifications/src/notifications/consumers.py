"""Event handlers: the kit calls these inside the processed-events transaction."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from billing_kit.events import CloudEvent
from pymongo.asynchronous.client_session import AsyncClientSession

from notifications.models import CUSTOMER_EVENT_TYPES
from notifications.service import NotificationsService

CUSTOMER_DIRECTORY = "customer-directory"
CUSTOMER_DIRECTORY_BINDINGS = list(CUSTOMER_EVENT_TYPES)

EventHandler = Callable[[CloudEvent, AsyncClientSession], Awaitable[None]]


def customer_directory_handler(service: NotificationsService) -> EventHandler:
    """Handler for customer.created / customer.updated: keep the recipient directory."""

    async def handle(event: CloudEvent, session: AsyncClientSession) -> None:
        await service.apply_customer_event(event, session)

    return handle
