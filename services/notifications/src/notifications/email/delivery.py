"""Durable delivery of requested emails (``email.requested``).

The consumer queues each request in the email log inside its processed-events
transaction (:meth:`EmailDelivery.enqueue`), keyed by the producer's stable
``email_key``, so a redelivered event queues nothing twice. Worker tasks then
claim due emails with a lease, open the sealed link in memory, render and
hand the message to the relay:

* accepted -> ``sent`` (final; the sealed link is dropped);
* refused for good (5xx on RCPT) -> ``rejected`` (final, logged, never retried);
* anything else (relay down, timeout, 4xx) -> ``queued`` again with an
  exponential backoff, until ``max_attempts`` -> ``dead``, which operators list
  and replay (``python -m notifications.emails``).

An attempt whose process died keeps its record in ``sending`` only until its
lease runs out; then any worker takes it up again. The one window that can
still send twice is a kill between the relay's "250 accepted" and the "sent"
write; the retried message carries the same Message-ID, so clients that
dedupe by it show one email.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Literal, Protocol

from billing_kit.due_work import DueWorkers
from billing_kit.errors import Reason
from billing_kit.mongo import call_after_commit
from billing_kit.sealing import Sealer, SealError
from pydantic import ValidationError
from pymongo.asynchronous.client_session import AsyncClientSession

from notifications.email.models import (
    Branding,
    EmailRecord,
    EmailRequest,
    EmailRequestedData,
    QueuedRequest,
)
from notifications.email.repository import EmailLogRepository
from notifications.email.service import (
    Renderer,
    Sender,
    new_email_record,
    request_fingerprint,
)
from notifications.email.smtp import Attachment, SendFailed

log = logging.getLogger(__name__)

Outcome = Literal["unknown", "pending", "sent", "rejected", "dead"]
_FINAL = {"sent": "sent", "rejected": "rejected", "dead": "dead"}


class InvalidEmailRequest(ValueError):
    """An ``email.requested`` that can never be sent as it is (bad data, unopenable link).

    Raised from the consumer so the broker retries and then dead-letters it.
    The message names fields, never values (the link, the address).
    """


def _describe(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'data'}: {e['msg']}" for e in exc.errors()
    )


class AttachmentSource(Protocol):
    """Fetches an email's files at send time (the receipt's invoice PDF).

    Raises :class:`SendFailed` when they cannot be had now: the email is then
    retried with backoff exactly like a relay outage.
    """

    async def attachments_for(self, request: EmailRequest) -> Sequence[Attachment]: ...


class NoAttachments:
    """For deployments (and tests) whose emails carry no files."""

    async def attachments_for(self, request: EmailRequest) -> Sequence[Attachment]:
        """Nothing to attach."""
        return ()


class RetryPolicy(Protocol):
    """How long to wait before the n-th retry."""

    def delay(self, attempts: int) -> float: ...


class ExponentialBackoff:
    """``base * 2**(n-1)`` seconds, capped, with up to 20 % jitter (replicas spread out)."""

    def __init__(self, base_seconds: float, max_seconds: float) -> None:
        self.base = base_seconds
        self.max = max_seconds

    def delay(self, attempts: int) -> float:
        """Seconds before the next attempt after ``attempts`` failed ones."""
        raw = min(self.base * float(2 ** max(0, min(attempts - 1, 30))), self.max)
        return raw * (1 + random.random() * 0.2)


class EmailDelivery:
    """Queues requested emails and delivers them until the relay accepts each once."""

    def __init__(
        self,
        repository: EmailLogRepository,
        renderer: Renderer,
        sender: Sender,
        sealer: Sealer,
        *,
        clock: Callable[[], datetime],
        backoff: RetryPolicy,
        max_attempts: int,
        lease_seconds: float,
        workers: int = 4,
        poll_seconds: float = 1.0,
        attachments: AttachmentSource | None = None,
        license_sealer: Sealer | None = None,
    ) -> None:
        self._repository = repository
        # Opens subscriptions' sealed license keys (LICENSE_KEY_SEAL_KEYS); None: no such emails.
        self._license_sealer = license_sealer
        self._attachments: AttachmentSource = attachments or NoAttachments()
        self._renderer = renderer
        self._sender = sender
        self._sealer = sealer
        self._clock = clock
        self._backoff = backoff
        self._max_attempts = max_attempts
        self._lease = timedelta(seconds=lease_seconds)
        self._workers: DueWorkers[EmailRecord] = DueWorkers(
            self, name="email-delivery", clock=clock, workers=workers, poll_seconds=poll_seconds
        )

    # --- the consumer side ---

    def request_from_event(self, data: EmailRequestedData) -> EmailRequest:
        """The validated request, link opened in memory; :class:`InvalidEmailRequest` if bad."""
        try:
            link = self._sealer.open(data.sealed_link) if data.sealed_link else ""
        except SealError:
            raise InvalidEmailRequest("sealed_link: cannot be opened with our keys") from None
        try:
            return EmailRequest(
                template=data.template,
                to=data.to,
                locale=data.locale,
                business_id=data.business_id,
                mode=data.mode,
                branding=Branding(
                    business_name=data.business_name,
                    logo_url=data.logo_url,
                    primary_color=data.primary_color,
                    support_email=data.support_email or None,
                ),
                link=link,
                link_expires_minutes=data.link_expires_minutes,
                customer_name=data.customer_name,
                idempotency_key=data.email_key,
            )
        except ValidationError as exc:
            raise InvalidEmailRequest(_describe(exc)) from None

    async def enqueue(self, data: EmailRequestedData, session: AsyncClientSession) -> bool:
        """Queue one requested email in the caller's transaction; False if already known."""
        request = self.request_from_event(data)
        return await self.enqueue_request(
            request, key=data.email_key, sealed_link=data.sealed_link, session=session
        )

    def open_link(self, sealed_link: str) -> str:
        """The link in clear, in memory only; :class:`InvalidEmailRequest` if no key opens it."""
        try:
            return self._sealer.open(sealed_link) if sealed_link else ""
        except SealError:
            raise InvalidEmailRequest("sealed_link: cannot be opened with our keys") from None

    def open_license_key(self, sealed: str) -> str:
        """A license key in clear, in memory only; :class:`InvalidEmailRequest` if none opens it."""
        if not sealed:
            return ""
        if self._license_sealer is None:
            raise InvalidEmailRequest("key_sealed: no license key seal keys configured")
        try:
            return self._license_sealer.open(sealed)
        except SealError:
            raise InvalidEmailRequest("key_sealed: cannot be opened with our keys") from None

    async def enqueue_request(
        self,
        request: EmailRequest,
        *,
        key: str,
        sealed_link: str,
        session: AsyncClientSession,
        sealed_license_key: str = "",
    ) -> bool:
        """Queue ``request`` (its link and license key given sealed) in the caller's
        transaction, once per ``key``; False when the key is already known (a redelivered
        event). Only the sealed forms are stored."""
        # Render once now: a template problem must fail here, not on every retry.
        rendered = self._renderer.render(request)
        now = self._clock()
        record = new_email_record(
            request,
            rendered,
            status="queued",
            now=now,
            key=key,
            fingerprint=request_fingerprint(request),
            attempts=0,
            next_attempt_at=now,
            queued=QueuedRequest(
                branding=request.branding,
                sealed_link=sealed_link,
                link_expires_minutes=request.link_expires_minutes,
                customer_name=request.customer_name,
                billing=request.billing,
                sealed_license_key=sealed_license_key,
            ),
        )
        queued = await self._repository.enqueue(record, session=session)
        if queued:
            # Visible only once the consumer's transaction commits: wake the workers then.
            call_after_commit(session, ("email-delivery", id(self)), self._workers.wake)
            log.info("email queued", extra=_fields(record))
        return queued

    # --- the workers ---

    async def start(self) -> None:
        """Start the worker tasks (idempotent)."""
        await self._workers.start()

    async def stop(self) -> None:
        """Stop the workers; an attempt in progress finishes (bounded by the SMTP timeout)."""
        await self._workers.stop()

    def wake(self) -> None:
        """Look for due emails now."""
        self._workers.wake()

    async def deliver_due(self) -> int:
        """Attempt every email due now, one after another; returns how many were tried."""
        return await self._workers.run_due()

    # --- DueWork: what the workers ask of the email queue ---

    async def claim(self, now: datetime) -> EmailRecord | None:
        """One due email, leased to the calling worker."""
        return await self._repository.claim_due(now=now, lease_until=now + self._lease)

    async def next_due_at(self) -> datetime | None:
        """When the next queued email falls due."""
        return await self._repository.next_due_at()

    async def attempt(self, record: EmailRecord) -> None:
        """Send one claimed email and record the outcome."""
        await self._attempt(record)

    async def _attempt(self, record: EmailRecord) -> None:
        queued = record.queued
        if queued is None:  # a synchronous SendEmail record: not ours to send
            return
        try:
            request = self._request_of(record, queued)
        except InvalidEmailRequest as exc:
            # Keys rotated away under it, or data that no longer validates: an operator's case.
            log.error("queued email cannot be built", extra={**_fields(record), "error": str(exc)})
            await self._repository.mark_final_failure(
                record.email_id,
                status="dead",
                error="invalid_request",
                now=self._clock(),
                keep_request=True,
            )
            return
        try:
            # Fetched now, never stored with the email (the invoice PDF): if its owner
            # is down, the email waits and retries as if the relay were.
            attachments = await self._attachments.attachments_for(request)
        except SendFailed as exc:
            await self._failed(record, exc)
            return
        try:
            rendered = self._renderer.render(request)
            message = self._sender.build_message(
                request,
                rendered,
                email_id=record.email_id,
                now=self._clock(),
                attachments=attachments,
            )
        except Exception as exc:
            # Retrying cannot fix a message we cannot build: an operator's case.
            log.error(
                "queued email cannot be rendered",
                extra={**_fields(record), "error": type(exc).__name__},
            )
            await self._repository.mark_final_failure(
                record.email_id,
                status="dead",
                error="render_failed",
                now=self._clock(),
                keep_request=True,
            )
            return
        try:
            await asyncio.wait_for(
                self._sender.send(message), timeout=self._lease.total_seconds() / 2
            )
        except (SendFailed, TimeoutError) as exc:
            await self._failed(record, exc)
            return
        await self._repository.mark_delivered(
            record.email_id,
            sent_at=self._clock(),
            message_id=self._sender.message_id(record.email_id),
        )
        log.info("email sent", extra={**_fields(record), "attempt": record.attempts})

    def _request_of(self, record: EmailRecord, queued: QueuedRequest) -> EmailRequest:
        try:
            link = self._sealer.open(queued.sealed_link) if queued.sealed_link else ""
        except SealError:
            raise InvalidEmailRequest("sealed_link: cannot be opened with our keys") from None
        license_key = self.open_license_key(queued.sealed_license_key)
        try:
            return EmailRequest(
                template=record.template,
                to=record.to,
                locale=record.locale,
                business_id=record.business_id,
                mode=record.mode,
                branding=queued.branding,
                link=link,
                link_expires_minutes=queued.link_expires_minutes,
                customer_name=queued.customer_name,
                idempotency_key=record.idempotency_key,
                billing=queued.billing,
                license_key=license_key,
            )
        except ValidationError as exc:
            raise InvalidEmailRequest(_describe(exc)) from None

    async def _failed(self, record: EmailRecord, exc: Exception) -> None:
        now = self._clock()
        if isinstance(exc, SendFailed) and exc.error.reason is Reason.EMAIL_RECIPIENT_REJECTED:
            # 5xx on RCPT: the address will not start working by retrying.
            await self._repository.mark_final_failure(
                record.email_id, status="rejected", error=exc.code, now=now, keep_request=False
            )
            log.warning("email recipient refused for good", extra=_fields(record))
            return
        code = exc.code if isinstance(exc, SendFailed) else "smtp_timeout"
        if record.attempts >= self._max_attempts:
            await self._repository.mark_final_failure(
                record.email_id, status="dead", error=code, now=now, keep_request=True
            )
            log.error(
                "email dead-lettered after its last attempt",
                extra={**_fields(record), "attempts": record.attempts, "outcome": code},
            )
            return
        delay = self._backoff.delay(record.attempts)
        await self._repository.reschedule(
            record.email_id, error=code, now=now, next_attempt_at=now + timedelta(seconds=delay)
        )
        log.info(
            "email attempt failed; retrying",
            extra={
                **_fields(record),
                "attempt": record.attempts,
                "outcome": code,
                "retry_in_seconds": round(delay, 1),
            },
        )

    # --- outcomes ---

    async def wait_for_outcome(
        self, business_id: str, mode: str, key: str, *, wait_seconds: float
    ) -> tuple[Outcome, str]:
        """The outcome of the email under ``key`` once final, or after ``wait_seconds``.

        Returns ``(outcome, status)``; polls the indexed key lookup, so an email
        delivered by another replica is seen too.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, wait_seconds)
        while True:
            progress = await self._repository.find_progress(business_id, mode, key)
            status, attempts = progress or ("", 0)
            if status in _FINAL:
                return _FINAL[status], status  # type: ignore[return-value]
            if status == "queued" and attempts >= 1:
                # The first attempt failed for now (relay down): retries go on, and
                # waiting longer would only tell the caller the same.
                return "pending", status
            if loop.time() >= deadline:
                return ("unknown" if not status else "pending"), status
            await asyncio.sleep(min(0.1, max(0.0, deadline - loop.time())))


def _fields(record: EmailRecord) -> dict[str, object]:
    # No address and no link: the email id leads to the log record when needed.
    return {
        "email_id": record.email_id,
        "template": record.template.value,
        "business_id": record.business_id,
        "mode": record.mode,
        "locale": record.locale,
    }
