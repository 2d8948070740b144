"""Event handlers: the kit calls these inside the processed-events transaction."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from billing_kit.events import CloudEvent
from pydantic import ValidationError
from pymongo.asynchronous.client_session import AsyncClientSession

from notifications.billing.service import BILLING_EMAIL_BINDINGS, BillingEmails
from notifications.email.delivery import EmailDelivery, InvalidEmailRequest
from notifications.email.models import EMAIL_REQUESTED, EmailRequestedData
from notifications.models import CUSTOMER_EVENT_TYPES
from notifications.service import NotificationsService

CUSTOMER_DIRECTORY = "customer-directory"
CUSTOMER_DIRECTORY_BINDINGS = list(CUSTOMER_EVENT_TYPES)
EMAIL_REQUESTS = "email-requests"
EMAIL_REQUESTS_BINDINGS = [EMAIL_REQUESTED]
BILLING_EMAILS = "billing-emails"
BILLING_EMAILS_BINDINGS = list(BILLING_EMAIL_BINDINGS)

EventHandler = Callable[[CloudEvent, AsyncClientSession], Awaitable[None]]


def customer_directory_handler(service: NotificationsService) -> EventHandler:
    """Handler for customer.created / customer.updated: keep the recipient directory."""

    async def handle(event: CloudEvent, session: AsyncClientSession) -> None:
        await service.apply_customer_event(event, session)

    return handle


def email_requests_handler(delivery: EmailDelivery) -> EventHandler:
    """Handler for email.requested: queue the email (once per email_key) for delivery.

    Bad data or a link our keys cannot open raises :class:`InvalidEmailRequest`
    (fields named, never values): the broker retries, then dead-letters it.
    """

    async def handle(event: CloudEvent, session: AsyncClientSession) -> None:
        try:
            data = EmailRequestedData.model_validate(event.data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'data'}: {e['msg']}" for e in exc.errors()
            )
            raise InvalidEmailRequest(f"invalid {event.type} data: {problems}") from None
        await delivery.enqueue(data, session)

    return handle


def billing_emails_handler(emails: BillingEmails) -> EventHandler:
    """Handler for invoice.created and the subscription.* notices: queue the customer's
    email (once per event) in the processed-events transaction."""

    async def handle(event: CloudEvent, session: AsyncClientSession) -> None:
        await emails.handle(event, session)

    return handle
