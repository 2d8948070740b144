"""gRPC adapter of ``EmailService.SendEmail`` and its wiring into the runtime.

The request carries a one-time link: it is handed to the use case in memory
and never logged. Validation errors name fields, never values.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import grpc
from billing.notifications.v1 import email_pb2, email_pb2_grpc
from billing_kit.clock import utc_now
from billing_kit.errors import InvalidArgument, Reason
from billing_kit.runtime import ServiceRuntime
from billing_kit.scoping import mode_from_proto
from billing_kit.sealing import Sealer
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import ValidationError

from notifications.config import NotificationsSettings
from notifications.consumers import EMAIL_REQUESTS, EMAIL_REQUESTS_BINDINGS, email_requests_handler
from notifications.email.delivery import AttachmentSource, EmailDelivery, ExponentialBackoff
from notifications.email.models import Branding, EmailRequest, EmailTemplate
from notifications.email.rendering import EmailRenderer
from notifications.email.repository import EmailLogRepository
from notifications.email.service import EmailService
from notifications.email.smtp import SmtpConfig, SmtpSender

Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]

_TEMPLATE_PREFIX = "EMAIL_TEMPLATE_"
MAX_OUTCOME_WAIT_MS = 10_000
_OUTCOMES = {
    "unknown": email_pb2.EMAIL_OUTCOME_UNKNOWN,
    "pending": email_pb2.EMAIL_OUTCOME_PENDING,
    "sent": email_pb2.EMAIL_OUTCOME_SENT,
    "rejected": email_pb2.EMAIL_OUTCOME_REJECTED,
    "dead": email_pb2.EMAIL_OUTCOME_DEAD,
}


def template_from_proto(value: int) -> EmailTemplate:
    """The domain template of a proto enum value; INVALID_ARGUMENT when unset or unknown."""
    try:
        name = email_pb2.EmailTemplate.Name(value)  # type: ignore[arg-type]
        return EmailTemplate(name.removeprefix(_TEMPLATE_PREFIX).lower())
    except ValueError:
        raise InvalidArgument(
            "template is required", reason=Reason.EMAIL_TEMPLATE_REQUIRED
        ) from None


def _describe(exc: ValidationError) -> str:
    # loc + msg only: pydantic's own str() would echo the input (the link, the address).
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'request'}: {e['msg']}" for e in exc.errors()
    )


def request_from_proto(request: email_pb2.SendEmailRequest) -> EmailRequest:
    """The domain request, validated; INVALID_ARGUMENT names the bad fields, not values."""
    template = template_from_proto(request.template)
    mode = mode_from_proto(request.mode)
    b = request.branding
    try:
        return EmailRequest(
            template=template,
            to=request.to,
            locale=request.locale,
            business_id=request.business_id,
            mode=mode,
            branding=Branding(
                business_name=b.business_name,
                logo_url=b.logo_url,
                primary_color=b.primary_color,
                support_email=b.support_email or None,
            ),
            link=request.link,
            link_expires_minutes=request.link_expires_minutes,
            customer_name=request.customer_name,
            idempotency_key=request.idempotency_key or None,
        )
    except ValidationError as exc:
        raise InvalidArgument(_describe(exc), reason=Reason.INVALID_EMAIL_REQUEST) from None


class EmailServicer(email_pb2_grpc.EmailServiceServicer):
    """Implements billing.notifications.v1.EmailService."""

    def __init__(self, service: EmailService, delivery: EmailDelivery) -> None:
        self._service = service
        self._delivery = delivery

    async def GetEmailOutcome(
        self, request: email_pb2.GetEmailOutcomeRequest, context: Context
    ) -> email_pb2.GetEmailOutcomeResponse:
        """Wait (bounded) for a queued email's final outcome; PENDING/UNKNOWN when none yet."""
        if not request.idempotency_key:
            raise InvalidArgument(
                "idempotency_key is required", reason=Reason.INVALID_EMAIL_REQUEST
            )
        mode = mode_from_proto(request.mode)
        wait_ms = min(max(request.wait_ms, 0), MAX_OUTCOME_WAIT_MS)
        remaining = context.time_remaining()
        if remaining is not None:  # answer before the caller's deadline
            wait_ms = min(wait_ms, max(0, int(remaining * 1000) - 200))
        outcome, _ = await self._delivery.wait_for_outcome(
            request.business_id, mode, request.idempotency_key, wait_seconds=wait_ms / 1000
        )
        return email_pb2.GetEmailOutcomeResponse(outcome=_OUTCOMES[outcome])

    async def SendEmail(
        self, request: email_pb2.SendEmailRequest, context: Context
    ) -> email_pb2.SendEmailResponse:
        """Send one transactional email; the same idempotency key returns the same answer."""
        sent = await self._service.send_email(request_from_proto(request))
        sent_at = Timestamp()
        sent_at.FromDatetime(sent.sent_at)
        return email_pb2.SendEmailResponse(email_id=sent.email_id, sent_at=sent_at)


def smtp_config(settings: NotificationsSettings) -> SmtpConfig:
    """The relay settings from the service settings."""
    return SmtpConfig(
        host=settings.smtp_host,
        port=settings.smtp_port,
        mail_from=settings.mail_from,
        username=settings.smtp_username,
        password=settings.smtp_password.get_secret_value(),
        use_tls=settings.smtp_use_tls,
        timeout_seconds=settings.smtp_timeout_seconds,
    )


def add_email_service(
    runtime: ServiceRuntime,
    settings: NotificationsSettings,
    *,
    attachments: AttachmentSource | None = None,
) -> EmailDelivery:
    """Build the email use cases (templates compiled now), serve them on the runtime's
    gRPC, consume email.requested and run the delivery workers (``attachments``
    fetches files, such as the receipt's PDF, at send time)."""
    sender = SmtpSender(smtp_config(settings))
    renderer = EmailRenderer(default_sender_name=sender.default_sender_name)
    repository = EmailLogRepository(runtime.db)
    service = EmailService(repository, renderer, sender)
    delivery = EmailDelivery(
        repository,
        renderer,
        sender,
        Sealer(settings.email_link_keys.get_secret_value()),
        clock=utc_now,
        backoff=ExponentialBackoff(
            settings.email_retry_base_seconds, settings.email_retry_max_seconds
        ),
        max_attempts=settings.email_max_attempts,
        lease_seconds=settings.email_send_lease_seconds,
        workers=settings.email_workers,
        attachments=attachments,
        license_sealer=Sealer(settings.license_key_seal_keys.get_secret_value()),
    )
    runtime.add_consumer(
        EMAIL_REQUESTS, bindings=EMAIL_REQUESTS_BINDINGS, handler=email_requests_handler(delivery)
    )
    servicer = EmailServicer(service, delivery)
    runtime.add_grpc_service(
        lambda server: email_pb2_grpc.add_EmailServiceServicer_to_server(servicer, server),
        email_pb2.DESCRIPTOR.services_by_name["EmailService"].full_name,
    )
    return delivery
