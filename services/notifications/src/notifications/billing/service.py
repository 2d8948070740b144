"""Which billing email an event asks for, and queuing it exactly once.

Called inside the consumer's processed-events transaction: the queued email
is committed together with the record that the event was handled, keyed by
``<template>:<event id>``, so a redelivered event (or a restart between the
two) yields one email. Delivery (retries, dead letters) is the email
workers' job (:mod:`notifications.email.delivery`).

Recipient: this service's own directory (learned from auth's customer
events). Branding and the business's language: auth ``GetBusiness`` (cached
briefly), frozen into the queued email. One-time links: auth
``CreateCustomerLink`` with the same key, so a retried handler gets the same
link back instead of minting a second token.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol, TypeVar

from billing_kit.errors import NotFound, Reason
from billing_kit.events import CloudEvent
from billing_kit.scoping import Mode
from pydantic import BaseModel, ValidationError
from pymongo.asynchronous.client_session import AsyncClientSession

from notifications.billing.clients import BusinessProfile, MintedLink
from notifications.billing.events import (
    INVOICE_CREATED,
    LICENSE_KEY_CREATED,
    SUBSCRIPTION_ACTIVE,
    SUBSCRIPTION_CANCELLED,
    SUBSCRIPTION_ON_HOLD,
    SUBSCRIPTION_RENEWAL_REMINDER,
    SUBSCRIPTION_UPDATED,
)
from notifications.billing.models import (
    InvoiceCreatedData,
    LicenseKeyCreatedData,
    SubscriptionNoticeData,
)
from notifications.email.delivery import EmailDelivery, InvalidEmailRequest
from notifications.email.models import BillingDetails, EmailRequest, EmailTemplate
from notifications.models import Recipient, RecipientKey

log = logging.getLogger(__name__)
_M = TypeVar("_M", bound=BaseModel)

BILLING_EMAIL_BINDINGS = [
    INVOICE_CREATED,
    SUBSCRIPTION_ON_HOLD,
    SUBSCRIPTION_ACTIVE,
    SUBSCRIPTION_CANCELLED,
    SUBSCRIPTION_UPDATED,
    SUBSCRIPTION_RENEWAL_REMINDER,
    LICENSE_KEY_CREATED,
]


class RecipientUnknown(NotFound):
    """No customer event for this customer has arrived yet: retried by the broker."""


class Recipients(Protocol):
    """Reads the recipient directory."""

    async def get_recipient(
        self, key: RecipientKey, *, session: AsyncClientSession | None = None
    ) -> Recipient | None: ...


class Auth(Protocol):
    """What the billing emails ask of auth."""

    async def business(self, business_id: str) -> BusinessProfile: ...

    async def customer_link(
        self, *, business_id: str, mode: Mode, customer_id: str, next_path: str, key: str
    ) -> MintedLink: ...


@dataclass(frozen=True)
class Notice:
    """The email one event asks for: template, to whom, what to say, where to link."""

    template: EmailTemplate
    business_id: str
    mode: Mode
    customer_id: str
    billing: BillingDetails
    # A portal path to sign the customer in to (once), or None for no button.
    next_path: str | None = None
    # A license key email's key, sealed as subscriptions sent it (opened at send time).
    sealed_license_key: str = ""


def _validated(model: type[_M], event: CloudEvent) -> _M:
    try:
        return model.model_validate(event.data)
    except ValidationError as exc:
        # Fields and messages only: values could be addresses or names.
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'data'}: {e['msg']}" for e in exc.errors()
        )
        raise InvalidEmailRequest(f"invalid {event.type} data: {problems}") from None


def notice_for(event: CloudEvent) -> Notice | None:
    """The email ``event`` asks for, or None (an update that is not a new scheduled
    cancel, an activation that is not a reactivation, a credit note)."""
    if event.type == INVOICE_CREATED:
        invoice = _validated(InvoiceCreatedData, event)
        if invoice.kind != "invoice":
            return None
        return Notice(
            template=EmailTemplate.PAYMENT_RECEIPT,
            business_id=invoice.business_id,
            mode=invoice.mode,
            customer_id=invoice.customer_id,
            billing=BillingDetails(
                customer_id=invoice.customer_id,
                subscription_id=invoice.subscription_id,
                product_name=invoice.description,
                amount=invoice.total,
                currency=invoice.currency,
                date=invoice.paid_at or invoice.issued_at,
                invoice_id=invoice.invoice_id,
                invoice_number=invoice.number,
            ),
        )
    if event.type == LICENSE_KEY_CREATED:
        key = _validated(LicenseKeyCreatedData, event)
        return Notice(
            template=EmailTemplate.LICENSE_KEY_DELIVERED,
            business_id=key.business_id,
            mode=key.mode,
            customer_id=key.customer_id,
            billing=BillingDetails(
                customer_id=key.customer_id,
                subscription_id=key.subscription_id,
                # An event older than the name's addition names the product by its id.
                product_name=key.product_name or key.product_id,
                date=key.expires_at,
                activations_limit=key.activations_limit,
                activation_message=key.activation_message,
            ),
            sealed_license_key=key.key_sealed,
        )
    data = _validated(SubscriptionNoticeData, event)
    template, amount, next_path = _subscription_template(event.type, data)
    if template is None:
        return None
    return Notice(
        template=template,
        business_id=data.business_id,
        mode=data.mode,
        customer_id=data.customer_id,
        billing=BillingDetails(
            customer_id=data.customer_id,
            subscription_id=data.subscription_id,
            product_name=data.product_name,
            amount=amount,
            currency=data.currency,
            date=data.next_billing_date,
        ),
        next_path=next_path,
    )


def _subscription_template(
    event_type: str, data: SubscriptionNoticeData
) -> tuple[EmailTemplate | None, int, str | None]:
    """(template, the amount to show, the portal path of its button) for a subscription event."""
    page = f"/b/{data.business_id}/subscriptions/{data.subscription_id}"
    recurring = data.recurring_pre_tax_amount
    if event_type == SUBSCRIPTION_ON_HOLD:
        due = data.amount_due or recurring
        return EmailTemplate.SUBSCRIPTION_ON_HOLD, due, f"{page}/payment-method"
    if event_type == SUBSCRIPTION_ACTIVE:
        if data.previous_status != "on_hold":
            return None, 0, None  # a first activation: the receipt says enough
        return EmailTemplate.SUBSCRIPTION_REACTIVATED, recurring, None
    if event_type == SUBSCRIPTION_CANCELLED:
        return EmailTemplate.SUBSCRIPTION_CANCELLED, recurring, None
    if event_type == SUBSCRIPTION_UPDATED:
        # Only the update that schedules the cancel (not every later update while it is
        # scheduled); an event without the previous flag is not assumed to be one.
        if data.cancel_at_next_billing_date and data.previous_cancel_at_next_billing_date is False:
            return EmailTemplate.CANCELLATION_SCHEDULED, recurring, page
        return None, 0, None
    if event_type == SUBSCRIPTION_RENEWAL_REMINDER:
        return EmailTemplate.RENEWAL_REMINDER, recurring, None
    return None, 0, None


class BillingEmails:
    """Turns billing events into queued customer emails, one per event."""

    def __init__(self, recipients: Recipients, auth: Auth, delivery: EmailDelivery) -> None:
        self._recipients = recipients
        self._auth = auth
        self._delivery = delivery

    async def handle(self, event: CloudEvent, session: AsyncClientSession) -> bool:
        """Queue the email ``event`` asks for (if any); False when none or already queued.

        Raises (so the broker retries, then dead-letters) on bad data, an unknown
        recipient, or auth unreachable; nothing is written then.
        """
        notice = notice_for(event)
        if notice is None:
            return False
        key = f"{notice.template.value}:{event.id}"
        recipient = await self._recipients.get_recipient(
            RecipientKey(
                business_id=notice.business_id, mode=notice.mode, customer_id=notice.customer_id
            ),
            session=session,
        )
        if recipient is None:
            raise RecipientUnknown(
                "no customer event for this customer yet", reason=Reason.RECIPIENT_NOT_FOUND
            )
        profile = await self._auth.business(notice.business_id)
        sealed_link, link, expires_minutes = "", "", 0
        if notice.next_path is not None:
            minted = await self._auth.customer_link(
                business_id=notice.business_id,
                mode=notice.mode,
                customer_id=notice.customer_id,
                next_path=notice.next_path,
                key=key,
            )
            sealed_link = minted.sealed_link
            link = self._delivery.open_link(sealed_link)
            expires_minutes = max(1, minted.expires_minutes)
        # Opened in memory to check our keys open it and to render once; stored sealed.
        license_key = self._delivery.open_license_key(notice.sealed_license_key)
        try:
            request = EmailRequest(
                template=notice.template,
                to=recipient.email,
                locale=recipient.locale or profile.locale or "en",
                business_id=notice.business_id,
                mode=notice.mode,
                branding=profile.branding,
                link=link,
                link_expires_minutes=expires_minutes,
                customer_name=recipient.name,
                idempotency_key=key,
                billing=notice.billing,
                license_key=license_key,
            )
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'request'}: {e['msg']}"
                for e in exc.errors()
            )
            raise InvalidEmailRequest(f"cannot build {notice.template.value}: {problems}") from None
        queued = await self._delivery.enqueue_request(
            request,
            key=key,
            sealed_link=sealed_link,
            sealed_license_key=notice.sealed_license_key,
            session=session,
        )
        log.info(
            "billing email queued" if queued else "billing email already queued",
            extra={
                "template": notice.template.value,
                "business_id": notice.business_id,
                "mode": notice.mode,
                "event_id": event.id,
            },
        )
        return queued
