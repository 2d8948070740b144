"""Customer emails as durable requests to notifications.

Auth never sends an email itself: it writes an ``email.requested`` event to
its outbox in the same transaction as the state that needs the email (the
one-time token), and notifications delivers it until the relay accepts it,
once per ``email_key``. The link in the event is sealed with a key shared only
with notifications (:mod:`billing_kit.sealing`), so the outbox, the queue and
notifications' email log hold ciphertext, never a usable token.

:class:`GrpcEmailOutcomes` asks notifications how the first attempt of a
queued email went (the magic-link API answers 422 for a recipient the relay
refuses for good). Nothing here logs a link or a full address.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, Protocol

import grpc
from billing.notifications.v1 import email_pb2, email_pb2_grpc
from billing_kit.errors import DomainError
from billing_kit.events import CloudEvent, new_event
from billing_kit.scoping import mode_to_proto
from billing_kit.sealing import Sealer

from auth.merchants.models import Business
from auth.portal_access.models import EMAIL_REQUESTED, EmailRequestedData
from auth.rules import Mode


class EmailKind(StrEnum):
    """The templates auth asks for (notifications' template names)."""

    SIGN_IN_LINK = "sign_in_link"
    NO_ACCOUNT_FOUND = "no_account_found"
    PORTAL_LINK = "portal_link"
    EMAIL_CHANGE_VERIFY = "email_change_verify"
    EMAIL_CHANGE_NOTICE = "email_change_notice"
    EMAIL_IN_USE_NOTICE = "email_in_use_notice"
    UNIFIED_SIGN_IN_LINK = "unified_sign_in_link"
    UNIFIED_NO_ACCOUNT_FOUND = "unified_no_account_found"


@dataclass(frozen=True)
class OutgoingEmail:
    """One email for notifications to render and send.

    ``email_key`` identifies it for good (the token id for a link email), so
    however often the request is delivered, one email goes out.
    """

    kind: EmailKind
    to: str
    locale: str
    mode: Mode
    email_key: str
    business: Business | None = None
    link: str = ""
    link_expires_minutes: int = 0
    customer_name: str = ""

    def __repr__(self) -> str:  # never print the link or the address
        return f"OutgoingEmail(kind={self.kind.name}, mode={self.mode})"


def email_requested_event(email: OutgoingEmail, sealer: Sealer, *, source: str) -> CloudEvent:
    """The ``email.requested`` event of an email (its link sealed), for the outbox."""
    business = email.business
    data = EmailRequestedData(
        email_key=email.email_key,
        template=email.kind.value,
        to=email.to,
        locale=email.locale,
        business_id=business.business_id if business else "",
        mode=email.mode,
        business_name=business.name if business else "",
        logo_url=(business.branding.logo_url or "") if business else "",
        primary_color=(business.branding.primary_color or "") if business else "",
        support_email=(business.support_email or "") if business else "",
        sealed_link=sealer.seal(email.link) if email.link else "",
        link_expires_minutes=email.link_expires_minutes,
        customer_name=email.customer_name,
    )
    return new_event(EMAIL_REQUESTED, source, data, subject=email.email_key)


EmailOutcome = Literal["unknown", "pending", "sent", "rejected", "dead"]

_OUTCOMES: dict[int, EmailOutcome] = {
    email_pb2.EMAIL_OUTCOME_UNKNOWN: "unknown",
    email_pb2.EMAIL_OUTCOME_PENDING: "pending",
    email_pb2.EMAIL_OUTCOME_SENT: "sent",
    email_pb2.EMAIL_OUTCOME_REJECTED: "rejected",
    email_pb2.EMAIL_OUTCOME_DEAD: "dead",
}


class EmailOutcomes(Protocol):
    """How a queued email's first attempt went (notifications in production)."""

    async def wait(
        self, *, business_id: str, mode: Mode, email_key: str, wait_seconds: float
    ) -> EmailOutcome:
        """The final outcome if known within ``wait_seconds``; else pending/unknown."""
        ...


class GrpcEmailOutcomes:
    """:class:`EmailOutcomes` over notifications' EmailService.GetEmailOutcome.

    The only call here with its own deadline: how long to wait is the caller's
    choice per request, so the channel's default would be wrong both ways.
    """

    def __init__(self, channel: grpc.aio.Channel, *, timeout: float) -> None:
        self.stub = email_pb2_grpc.EmailServiceStub(channel)
        self.timeout = timeout

    async def wait(
        self, *, business_id: str, mode: Mode, email_key: str, wait_seconds: float
    ) -> EmailOutcome:
        """Ask notifications; its absence only means "pending" (delivery goes on)."""
        try:
            response = await self.stub.GetEmailOutcome(
                email_pb2.GetEmailOutcomeRequest(
                    business_id=business_id,
                    mode=mode_to_proto(mode),
                    idempotency_key=email_key,
                    wait_ms=int(wait_seconds * 1000),
                ),
                # The server answers by wait_ms; a little slack, never the full
                # timeout, so a hung notifications cannot outlast the caller.
                timeout=wait_seconds + min(self.timeout, 1.0),
            )
        except (DomainError, grpc.aio.AioRpcError):
            return "pending"
        return _OUTCOMES.get(response.outcome, "pending")
