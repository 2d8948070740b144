"""Use cases of the notifications service: the recipient directory's rules."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Protocol

from billing_kit.errors import InvalidArgument, NotFound, Reason
from billing_kit.events import CloudEvent
from pydantic import ValidationError
from pymongo.asynchronous.client_session import AsyncClientSession

from notifications.models import (
    CUSTOMER_EVENT_TYPES,
    CustomerEventData,
    Recipient,
    RecipientKey,
    event_time_micros,
)

log = logging.getLogger(__name__)


class RecipientStore(Protocol):
    """What the use cases need from storage."""

    async def get_recipient(
        self, key: RecipientKey, *, session: AsyncClientSession | None = None
    ) -> Recipient | None: ...

    async def save_recipient(
        self, recipient: Recipient, *, session: AsyncClientSession
    ) -> None: ...


def is_newer(event_time: datetime, event_id: str, current: Recipient | None) -> bool:
    """Whether an event may overwrite ``current``: only if it happened later.

    Events can arrive out of order (redelivery, several producers), so the last
    *delivered* event is not necessarily the latest fact. Ties on time are broken
    by event id so every replica reaches the same answer.
    """
    if current is None:
        return True
    incoming = (event_time_micros(event_time), event_id)
    stored = (event_time_micros(current.updated_at), current.last_event_id)
    return incoming > stored


class InvalidCustomerEvent(ValueError):
    """A customer event whose data does not validate.

    Its message names the bad fields and why, never their values: pydantic's own
    message quotes the input, which holds the customer's email, and the kit logs
    handler errors.
    """


def recipient_from_event(event: CloudEvent) -> Recipient:
    """Validate a customer event's data into the recipient it describes.

    Raises :class:`InvalidCustomerEvent` for a bad payload, so the consumer retries
    and finally dead-letters it instead of storing half a recipient.
    """
    try:
        data = CustomerEventData.model_validate(event.data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'data'}: {e['msg']}" for e in exc.errors()
        )
        raise InvalidCustomerEvent(f"invalid {event.type} data: {problems}") from None
    return Recipient(
        business_id=data.business_id,
        mode=data.mode,
        customer_id=data.customer_id,
        email=str(data.email),
        name=data.name,
        locale=data.locale,
        last_event_id=event.id,
        updated_at=event.time,
    )


class NotificationsService:
    """Keeps the recipient directory and answers lookups in it."""

    def __init__(self, repository: RecipientStore) -> None:
        self._repository = repository

    async def apply_customer_event(self, event: CloudEvent, session: AsyncClientSession) -> bool:
        """Record a customer.created/updated; True if it changed the directory.

        Every read and write uses ``session``: the kit runs this in one transaction
        with the event's ``processed_events`` record, which is what makes a
        redelivered event a no-op.
        """
        if event.type not in CUSTOMER_EVENT_TYPES:
            log.warning("ignoring unexpected event type", extra={"event_type": event.type})
            return False
        recipient = recipient_from_event(event)
        current = await self._repository.get_recipient(recipient.key, session=session)
        if not is_newer(event.time, event.id, current):
            log.info(
                "skipping customer event older than the stored recipient",
                extra={"event_id": event.id, "customer_id": recipient.customer_id},
            )
            return False
        await self._repository.save_recipient(recipient, session=session)
        log.info(
            "recipient recorded",
            extra={
                "event_id": event.id,
                "event_type": event.type,
                "customer_id": recipient.customer_id,
            },
        )
        return True

    async def get_recipient(self, business_id: str, mode: str, customer_id: str) -> Recipient:
        """The recipient for a customer, NotFound when no customer event was seen for it."""
        try:
            key = RecipientKey(business_id=business_id, mode=mode, customer_id=customer_id)  # type: ignore[arg-type]
        except ValidationError as exc:
            message = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
            )
            raise InvalidArgument(message, reason=Reason.INVALID_RECIPIENT_KEY) from None
        found = await self._repository.get_recipient(key)
        if found is None:
            raise NotFound("recipient not found", reason=Reason.RECIPIENT_NOT_FOUND)
        return found
