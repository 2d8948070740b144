"""The SendEmail use case: validate, render, log, send once per idempotency key."""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any, Protocol

from billing_kit.clock import utc_now
from billing_kit.errors import FailedPrecondition, Reason, Unavailable

from notifications.email.models import (
    EmailRecord,
    EmailRequest,
    RenderedEmail,
    SentEmail,
    Status,
)
from notifications.email.smtp import Attachment, SendFailed

log = logging.getLogger(__name__)

# A send that has not finished after this long was abandoned (process killed,
# call cancelled by its deadline): a retry with the same key may take it over.
ABANDONED_AFTER = timedelta(seconds=60)


class EmailLog(Protocol):
    """What the use case needs from the email log."""

    async def find_by_idempotency_key(
        self, business_id: str, mode: str, idempotency_key: str
    ) -> EmailRecord | None: ...

    async def insert(self, record: EmailRecord) -> EmailRecord | None: ...

    async def claim_for_retry(
        self, email_id: str, *, now: datetime, stale_before: datetime
    ) -> EmailRecord | None: ...

    async def mark_sent(self, email_id: str, *, sent_at: datetime, message_id: str) -> None: ...

    async def mark_failed(self, email_id: str, *, error: str, now: datetime) -> None: ...


class Renderer(Protocol):
    """Turns a request into subject and bodies."""

    def render(self, request: EmailRequest) -> RenderedEmail: ...


class Sender(Protocol):
    """Builds and sends MIME messages."""

    def message_id(self, email_id: str) -> str: ...

    def build_message(
        self,
        request: EmailRequest,
        rendered: RenderedEmail,
        *,
        email_id: str,
        now: datetime,
        attachments: Sequence[Attachment] = (),
    ) -> EmailMessage: ...

    async def send(self, message: EmailMessage) -> None: ...


def request_fingerprint(request: EmailRequest) -> str:
    """What an idempotency key is bound to: the same key with another email is a bug.

    The link is left out on purpose: a hash of it would be a token hash in the log.
    """
    parts = (
        request.template.value,
        str(request.to).lower(),
        request.business_id,
        request.mode,
        request.locale,
    )
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def new_email_id() -> str:
    """A readable, random email id."""
    return f"eml_{uuid.uuid4().hex}"


def new_email_record(
    request: EmailRequest,
    rendered: RenderedEmail,
    *,
    status: Status,
    now: datetime,
    key: str | None,
    fingerprint: str,
    **delivery: Any,
) -> EmailRecord:
    """A fresh email-log row: for a send over gRPC and for a queued email alike."""
    return EmailRecord(
        email_id=new_email_id(),
        template=request.template,
        to=str(request.to),
        business_id=request.business_id,
        mode=request.mode,
        locale=rendered.locale,
        status=status,
        created_at=now,
        updated_at=now,
        idempotency_key=key,
        request_fingerprint=fingerprint,
        **delivery,
    )


class EmailService:
    """Sends transactional emails and keeps their log."""

    def __init__(
        self,
        log_store: EmailLog,
        renderer: Renderer,
        sender: Sender,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._log = log_store
        self._renderer = renderer
        self._sender = sender
        self._clock = clock

    async def send_email(self, request: EmailRequest) -> SentEmail:
        """Send ``request`` once; the same idempotency key again returns the first result.

        Raises ``FailedPrecondition`` when a key is reused for a different email or
        the relay refuses the address for good, ``Unavailable`` when the relay is
        down or the same key is being sent right now (retry either later).
        """
        # Render first: a template problem must fail before anything is written.
        rendered = self._renderer.render(request)
        fingerprint = request_fingerprint(request)
        key = request.idempotency_key
        if key is not None:
            existing = await self._log.find_by_idempotency_key(
                request.business_id, request.mode, key
            )
            if existing is not None:
                return await self._replay(existing, request, rendered, fingerprint)
        record = new_email_record(
            request, rendered, status="sending", now=self._clock(), key=key, fingerprint=fingerprint
        )
        winner = await self._log.insert(record)
        if winner is not None:
            # A concurrent call with the same key inserted first.
            return await self._replay(winner, request, rendered, fingerprint)
        return await self._deliver(record, request, rendered)

    async def _replay(
        self,
        existing: EmailRecord,
        request: EmailRequest,
        rendered: RenderedEmail,
        fingerprint: str,
    ) -> SentEmail:
        if existing.request_fingerprint != fingerprint:
            raise FailedPrecondition(
                "idempotency_key was already used for a different email",
                reason=Reason.IDEMPOTENCY_KEY_REUSED,
            )
        if existing.status == "sent" and existing.sent_at is not None:
            log.info("email already sent for this idempotency key", extra=_log_fields(existing))
            return SentEmail(email_id=existing.email_id, sent_at=existing.sent_at)
        now = self._clock()
        claimed = await self._log.claim_for_retry(
            existing.email_id, now=now, stale_before=now - ABANDONED_AFTER
        )
        if claimed is None:
            raise Unavailable(
                "this email is being sent right now; retry shortly",
                reason=Reason.EMAIL_SEND_IN_PROGRESS,
            )
        return await self._deliver(claimed, request, rendered)

    async def _deliver(
        self, record: EmailRecord, request: EmailRequest, rendered: RenderedEmail
    ) -> SentEmail:
        message = self._sender.build_message(
            request, rendered, email_id=record.email_id, now=self._clock()
        )
        try:
            await self._sender.send(message)
        except SendFailed as failure:
            await self._log.mark_failed(record.email_id, error=failure.code, now=self._clock())
            log.warning("email not sent", extra={**_log_fields(record), "outcome": failure.code})
            raise failure.error from None
        sent_at = self._clock()
        await self._log.mark_sent(
            record.email_id, sent_at=sent_at, message_id=self._sender.message_id(record.email_id)
        )
        log.info("email sent", extra=_log_fields(record))
        return SentEmail(email_id=record.email_id, sent_at=sent_at)


def _log_fields(record: EmailRecord) -> dict[str, object]:
    # No address and no link: the email id leads to the log record when needed.
    return {
        "email_id": record.email_id,
        "template": record.template.value,
        "business_id": record.business_id,
        "mode": record.mode,
        "locale": record.locale,
    }
