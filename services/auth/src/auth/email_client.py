"""Sending customer emails through notifications' ``EmailService`` over gRPC.

Emails that carry a one-time link go this way, never through events, so a raw
token is never written to an outbox or a queue. The link lives only in the
request; nothing here logs it or the full address.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Protocol

import grpc
from billing.notifications.v1 import email_pb2, email_pb2_grpc
from billing_kit.errors import DomainError, Reason, Unavailable
from billing_kit.scoping import mode_to_proto

from auth.models import Business, Mode


class EmailKind(IntEnum):
    """The templates auth sends (values are the proto enum's)."""

    SIGN_IN_LINK = email_pb2.EMAIL_TEMPLATE_SIGN_IN_LINK
    NO_ACCOUNT_FOUND = email_pb2.EMAIL_TEMPLATE_NO_ACCOUNT_FOUND
    PORTAL_LINK = email_pb2.EMAIL_TEMPLATE_PORTAL_LINK
    EMAIL_CHANGE_VERIFY = email_pb2.EMAIL_TEMPLATE_EMAIL_CHANGE_VERIFY
    EMAIL_CHANGE_NOTICE = email_pb2.EMAIL_TEMPLATE_EMAIL_CHANGE_NOTICE
    UNIFIED_SIGN_IN_LINK = email_pb2.EMAIL_TEMPLATE_UNIFIED_SIGN_IN_LINK
    UNIFIED_NO_ACCOUNT_FOUND = email_pb2.EMAIL_TEMPLATE_UNIFIED_NO_ACCOUNT_FOUND


@dataclass(frozen=True)
class OutgoingEmail:
    """One email for notifications to render and send."""

    kind: EmailKind
    to: str
    locale: str
    mode: Mode
    idempotency_key: str
    business: Business | None = None
    link: str = ""
    link_expires_minutes: int = 0
    customer_name: str = ""

    def __repr__(self) -> str:  # never print the link or the address
        return f"OutgoingEmail(kind={self.kind.name}, mode={self.mode})"


class EmailSender(Protocol):
    """Where auth hands emails over (notifications in production, a fake in unit tests)."""

    async def send(self, email: OutgoingEmail) -> None:
        """Send one email; raises :class:`Unavailable` when it could not be handed over."""
        ...


def email_request(email: OutgoingEmail) -> email_pb2.SendEmailRequest:
    """The SendEmail request of an outgoing email (branding from the business)."""
    branding = email_pb2.EmailBranding()
    business_id = ""
    if email.business is not None:
        business = email.business
        business_id = business.business_id
        branding = email_pb2.EmailBranding(
            business_name=business.name,
            logo_url=business.branding.logo_url or "",
            primary_color=business.branding.primary_color or "",
            support_email=business.support_email or "",
        )
    return email_pb2.SendEmailRequest(
        template=int(email.kind),  # type: ignore[arg-type]
        to=email.to,
        locale=email.locale,
        business_id=business_id,
        mode=mode_to_proto(email.mode),
        branding=branding,
        link=email.link,
        link_expires_minutes=email.link_expires_minutes,
        customer_name=email.customer_name,
        idempotency_key=email.idempotency_key,
    )


class GrpcEmailSender:
    """:class:`EmailSender` over notifications' EmailService (one channel per process).

    The channel (``billing_kit.grpc_client.create_channel``) sets the deadline
    and raises notifications' refusals as :class:`DomainError`.
    """

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.stub = email_pb2_grpc.EmailServiceStub(channel)

    async def send(self, email: OutgoingEmail) -> None:
        """Send one email; any failure to hand it over is :class:`Unavailable`."""
        try:
            await self.stub.SendEmail(email_request(email))
        except DomainError as refused:
            # The status text may echo the address; only the reason is kept.
            raise Unavailable(
                f"the email could not be sent ({refused.reason})", reason=Reason.EMAIL_NOT_SENT
            ) from None
        except grpc.aio.AioRpcError as exc:
            raise Unavailable(
                f"the email could not be sent ({exc.code().name})",
                reason=Reason.EMAIL_SERVICE_UNAVAILABLE,
            ) from None
