"""Wiring of the billing emails into the notifications runtime."""

from __future__ import annotations

from billing_kit.runtime import ServiceRuntime

from notifications.billing.clients import AuthClient, InvoicePdfs
from notifications.billing.service import BillingEmails
from notifications.config import NotificationsSettings
from notifications.consumers import BILLING_EMAILS, BILLING_EMAILS_BINDINGS, billing_emails_handler
from notifications.email.delivery import EmailDelivery
from notifications.repository import RecipientsRepository


async def _nothing() -> None:
    return None


def invoice_pdfs(runtime: ServiceRuntime, settings: NotificationsSettings) -> InvoicePdfs:
    """The receipt's attachment source (invoicing), closed when the runtime stops."""
    pdfs = InvoicePdfs(settings.invoicing_target, timeout=settings.backend_timeout_seconds)
    runtime.add_step("invoicing-client", _nothing, pdfs.stop)
    return pdfs


def add_billing_emails(
    runtime: ServiceRuntime,
    settings: NotificationsSettings,
    recipients: RecipientsRepository,
    delivery: EmailDelivery,
) -> BillingEmails:
    """Consume invoice.created and the subscription notices into queued emails."""
    auth = AuthClient(
        settings.auth_target,
        timeout=settings.backend_timeout_seconds,
        cache_seconds=settings.business_cache_seconds,
    )
    runtime.add_step("auth-client", _nothing, auth.stop)
    emails = BillingEmails(recipients, auth, delivery)
    runtime.add_consumer(
        BILLING_EMAILS, bindings=BILLING_EMAILS_BINDINGS, handler=billing_emails_handler(emails)
    )
    return emails
