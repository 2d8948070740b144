"""gRPC adapter of ``EmailService.SendEmail`` and its wiring into the runtime.

The request carries a one-time link: it is handed to the use case in memory
and never logged. Validation errors name fields, never values.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import grpc
from billing.notifications.v1 import email_pb2, email_pb2_grpc
from billing_kit.errors import InvalidArgument, Reason
from billing_kit.runtime import ServiceRuntime
from billing_kit.scoping import mode_from_proto
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import ValidationError

from notifications.config import NotificationsSettings
from notifications.email.models import Branding, EmailRequest, EmailTemplate
from notifications.email.rendering import EmailRenderer
from notifications.email.repository import EmailLogRepository
from notifications.email.service import EmailService
from notifications.email.smtp import SmtpConfig, SmtpSender

Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]

_TEMPLATE_PREFIX = "EMAIL_TEMPLATE_"


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

    def __init__(self, service: EmailService) -> None:
        self._service = service

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


def add_email_service(runtime: ServiceRuntime, settings: NotificationsSettings) -> EmailService:
    """Build the email use case (templates compiled now) and serve it on the runtime's gRPC."""
    sender = SmtpSender(smtp_config(settings))
    renderer = EmailRenderer(default_sender_name=sender.default_sender_name)
    service = EmailService(EmailLogRepository(runtime.db), renderer, sender)
    servicer = EmailServicer(service)
    runtime.add_grpc_service(
        lambda server: email_pb2_grpc.add_EmailServiceServicer_to_server(servicer, server),
        email_pb2.DESCRIPTOR.services_by_name["EmailService"].full_name,
    )
    return service
