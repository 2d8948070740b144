"""Build the MIME message of an email and hand it to the SMTP relay (aiosmtplib)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

import aiosmtplib
from billing_kit.errors import DomainError, InvalidArgument, Reason, Unavailable

from notifications.email.models import EmailRequest, RenderedEmail

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SmtpConfig:
    """Where and how to reach the relay; ``mail_from`` is "Name <address>" or an address."""

    host: str
    port: int
    mail_from: str
    username: str = ""
    password: str = field(default="", repr=False)
    use_tls: bool = False
    timeout_seconds: float = 4.0


@dataclass(frozen=True)
class Attachment:
    """A file sent with the email (the receipt's invoice PDF), fetched at send time."""

    filename: str
    content: bytes = field(repr=False)
    maintype: str = "application"
    subtype: str = "pdf"


class SendFailed(Exception):
    """The relay did not accept the message; ``error`` is what the caller gets."""

    def __init__(self, error: DomainError, code: str) -> None:
        super().__init__(code)
        self.error = error
        # Short and fixed, for the email log: never the relay's text (it may echo the address).
        self.code = code


def _classify(exc: Exception) -> SendFailed:
    """A permanent (5xx) refusal of the recipient will not pass on retry; the rest may."""
    refused: list[aiosmtplib.SMTPRecipientRefused] = []
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        refused = list(exc.recipients)
    elif isinstance(exc, aiosmtplib.SMTPRecipientRefused):
        refused = [exc]
    if refused and all(500 <= r.code < 600 for r in refused):
        return SendFailed(
            # The address itself is the problem (as auth's magic-link answer says).
            InvalidArgument(
                "the mail server refused the recipient address",
                reason=Reason.EMAIL_RECIPIENT_REJECTED,
            ),
            "recipient_rejected",
        )
    return SendFailed(
        Unavailable(
            "the mail server is not reachable; retry later", reason=Reason.SMTP_UNAVAILABLE
        ),
        "smtp_unavailable",
    )


def _address(addr_spec: str) -> Address:
    """A bare address as a structured header value (no display name)."""
    return Address(addr_spec=addr_spec)


class SmtpSender:
    """Sends multipart/alternative (text + HTML) messages through one relay."""

    def __init__(self, config: SmtpConfig) -> None:
        self._config = config
        default_name, address = parseaddr(config.mail_from)
        if "@" not in address:
            raise ValueError("mail_from must contain an email address")
        self.from_address = address
        self.default_sender_name = default_name or address
        self._from_local, self._domain = address.rsplit("@", 1)

    def message_id(self, email_id: str) -> str:
        """Derived from the email id, so a retried send carries the same Message-ID.

        (``email.utils.make_msgid`` would resolve the host name: a blocking DNS call.)
        """
        return f"<{email_id}@{self._domain}>"

    def build_message(
        self,
        request: EmailRequest,
        rendered: RenderedEmail,
        *,
        email_id: str,
        now: datetime,
        attachments: Sequence[Attachment] = (),
    ) -> EmailMessage:
        """The MIME message: From shows the business's name, replies go to its support.

        With attachments it is multipart/mixed: the text/HTML alternative first,
        then each file."""
        message = EmailMessage()
        sender_name = request.branding.business_name or self.default_sender_name
        # Structured addresses: the display name is quoted (and RFC 2047-encoded
        # when not ASCII) as one unit, so a name such as "Acme <x@bank.example>"
        # stays a name and the address is always the platform's own.
        message["From"] = Address(
            display_name=sender_name, username=self._from_local, domain=self._domain
        )
        message["To"] = _address(str(request.to))
        if request.branding.support_email:
            message["Reply-To"] = _address(str(request.branding.support_email))
        message["Subject"] = rendered.subject
        message["Date"] = format_datetime(now)
        message["Message-ID"] = self.message_id(email_id)
        # RFC 3834: tells autoresponders (out-of-office ...) not to answer.
        message["Auto-Submitted"] = "auto-generated"
        message.set_content(rendered.text)
        message.add_alternative(rendered.html, subtype="html")
        for attachment in attachments:
            message.add_attachment(
                attachment.content,
                maintype=attachment.maintype,
                subtype=attachment.subtype,
                filename=attachment.filename,
            )
        # After the body: set_content/add_alternative move Content-* headers into the parts.
        message["Content-Language"] = rendered.locale
        return message

    async def send(self, message: EmailMessage) -> None:
        """Hand ``message`` to the relay; raises :class:`SendFailed` when it is not accepted."""
        c = self._config
        try:
            await aiosmtplib.send(
                message,
                hostname=c.host,
                port=c.port,
                username=c.username or None,
                password=c.password or None,
                use_tls=c.use_tls,
                timeout=c.timeout_seconds,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            failure = _classify(exc)
            # The exception text can contain the address: log its type only.
            log.warning(
                "smtp send failed",
                extra={"error_type": type(exc).__name__, "outcome": failure.code},
            )
            raise failure from None
