"""The delivery worker: POSTs queued webhook deliveries until the endpoint answers 2xx.

Each delivery is claimed atomically with a lease (``status: sending``,
``lease_until``), so two replicas never send the same one at the same time and
a killed replica's delivery is taken over once its lease runs out. The
``webhook-id`` header is the delivery id, the same on every retry, so a receiver
can drop a repeat (the one window that can send twice is a kill between the
receiver's 2xx and our write of ``delivered``).

* 2xx -> ``delivered``; the endpoint's failure count is reset.
* anything else (status, timeout, refused address, connection error) -> retried
  with exponential backoff and jitter, until ``max_attempts`` -> ``failed``.
* an endpoint failing ``disable_after_failures`` attempts in a row, or for
  longer than ``disable_after_seconds``, is disabled (``disabled_reason:
  failing``) and its waiting deliveries end as ``failed``; the merchant
  re-enables it with ``PATCH /webhooks/{id} {"disabled": false}``.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import aiohttp
from billing_kit.due_work import DueWorkers
from billing_kit.sealing import SealError
from prometheus_client import Counter, Histogram

from notifications.webhooks.address_guard import AddressRefused, GuardedResolver, check_url_target
from notifications.webhooks.models import Delivery, DeliveryAttempt, Endpoint
from notifications.webhooks.repository import WebhooksRepository
from notifications.webhooks.service import WebhooksService
from notifications.webhooks.signing import webhook_headers

log = logging.getLogger(__name__)

USER_AGENT = "customer-portal-webhooks/1"
SECRET_UNAVAILABLE = "secret_unavailable"  # noqa: S105 (an outcome code, not a secret)

# Labels are fixed and few: the outcome code only (never an endpoint, URL or business).
ATTEMPTS = Counter(
    "webhook_delivery_attempts_total",
    "Webhook POST attempts by outcome: delivered, http_status, timeout, connect_failed, "
    "request_failed, address_refused, endpoint_disabled, secret_unavailable.",
    ["outcome"],
)
ATTEMPT_SECONDS = Histogram(
    "webhook_delivery_attempt_duration_seconds",
    "Time one webhook POST took, by outcome.",
    ["outcome"],
)
ENDPOINTS_DISABLED = Counter(
    "webhook_endpoints_disabled_total", "Endpoints disabled after persistent failures."
)


def _outcome(attempt: DeliveryAttempt) -> str:
    return attempt.error.split(":", 1)[0] if attempt.error else "delivered"


@dataclass(frozen=True)
class DeliveryPolicy:
    """Retry, disable and network settings of the worker."""

    retry_base_seconds: float
    retry_max_seconds: float
    max_attempts: int
    disable_after_failures: int
    disable_after_seconds: float
    timeout_seconds: float
    lease_seconds: float
    # Test mode only: let deliveries reach private addresses (a local test server).
    allow_private_targets_in_test: bool

    def retry_delay(self, attempts: int) -> float:
        """``base * 2**(n-1)`` capped, plus up to 20 % jitter so replicas spread out."""
        raw = min(
            self.retry_base_seconds * float(2 ** max(0, min(attempts - 1, 30))),
            self.retry_max_seconds,
        )
        return raw * (1 + random.random() * 0.2)


class WebhookDelivery:
    """Worker tasks that send due deliveries, and the outcome bookkeeping."""

    def __init__(
        self,
        repository: WebhooksRepository,
        service: WebhooksService,
        policy: DeliveryPolicy,
        *,
        clock: Callable[[], datetime],
        workers: int = 2,
        poll_seconds: float = 1.0,
    ) -> None:
        self._repository = repository
        self._service = service
        self._policy = policy
        self._clock = clock
        self._workers: DueWorkers[Delivery] = DueWorkers(
            self, name="webhook-delivery", clock=clock, workers=workers, poll_seconds=poll_seconds
        )
        self._guarded: aiohttp.ClientSession | None = None
        self._open: aiohttp.ClientSession | None = None

    # --- lifecycle ---

    async def start(self) -> None:
        """Open the HTTP clients and start the worker tasks (idempotent)."""
        if self._workers.running:
            return
        timeout = aiohttp.ClientTimeout(total=self._policy.timeout_seconds)
        # Every name the guarded client connects to went through the address check.
        self._guarded = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(resolver=GuardedResolver(), use_dns_cache=False),
            timeout=timeout,
        )
        self._open = aiohttp.ClientSession(timeout=timeout)
        await self._workers.start()

    async def stop(self) -> None:
        """Stop the workers (an attempt in flight finishes, bounded by the timeout)."""
        await self._workers.stop()
        for client in (self._guarded, self._open):
            if client is not None:
                await client.close()
        self._guarded = self._open = None

    def wake(self) -> None:
        """Look for due deliveries now (called after a consumer's commit)."""
        self._workers.wake()

    async def deliver_due(self) -> int:
        """Attempt every delivery due now, one after another; returns how many were tried."""
        return await self._workers.run_due()

    # --- DueWork: what the workers ask of the delivery queue ---

    async def claim(self, now: datetime) -> Delivery | None:
        """One due delivery, leased to the calling worker."""
        lease = now + timedelta(seconds=self._policy.lease_seconds)
        return await self._repository.claim_due(now=now, lease_until=lease)

    async def next_due_at(self) -> datetime | None:
        """When the next queued delivery falls due."""
        return await self._repository.next_due_at()

    async def attempt(self, delivery: Delivery) -> None:
        """Send one claimed delivery and record the outcome."""
        await self._attempt(delivery)

    # --- one attempt ---

    async def _attempt(self, delivery: Delivery) -> None:
        endpoint = await self._repository.get_endpoint_by_id(delivery.webhook_id)
        if endpoint is None or endpoint.disabled:
            # Deleted or disabled since it was queued: nothing will send it.
            ATTEMPTS.labels("endpoint_disabled").inc()
            await self._finish(
                delivery,
                DeliveryAttempt(at=self._clock(), error="endpoint_disabled"),
                status="failed",
            )
            return
        started = time.monotonic()
        status_code, error = await self._post(delivery, endpoint)
        attempt = DeliveryAttempt(
            at=self._clock(),
            status_code=status_code,
            duration_ms=int((time.monotonic() - started) * 1000),
            error=error,
        )
        ATTEMPTS.labels(_outcome(attempt)).inc()
        ATTEMPT_SECONDS.labels(_outcome(attempt)).observe(attempt.duration_ms / 1000)
        if not error:
            await self._finish(delivery, attempt, status="delivered")
            await self._repository.record_success(endpoint.webhook_id, now=attempt.at)
            log.info("webhook delivered", extra=_fields(delivery, attempt))
            return
        await self._failed(delivery, endpoint, attempt)

    async def _post(self, delivery: Delivery, endpoint: Endpoint) -> tuple[int, str]:
        allow_private = delivery.mode == "test" and self._policy.allow_private_targets_in_test
        client = self._open if allow_private else self._guarded
        assert client is not None, "start() first"
        now = self._clock()
        try:
            if not allow_private:
                check_url_target(endpoint.url)
            body = self._service.delivery_body(delivery.body, delivery.sealed_license_key)
            headers = {
                **self._service.custom_headers(endpoint),
                **webhook_headers(
                    self._service.signing_secrets(endpoint, now),
                    delivery.delivery_id,
                    int(now.timestamp()),
                    body,
                ),
                "content-type": "application/json",
                "user-agent": USER_AGENT,
            }
            async with client.post(
                endpoint.url,
                data=body.encode(),
                headers=headers,
                allow_redirects=False,
            ) as response:
                # Read a little so the connection can be reused; the body is not kept.
                await response.content.read(1024)
                if 200 <= response.status < 300:
                    return response.status, ""
                return response.status, "http_status"
        except SealError:
            # Our keys no longer open the secret or a header (a key removed too early):
            # an operator's case, not the endpoint's fault.
            log.error("webhook secret cannot be opened", extra={"webhook_id": endpoint.webhook_id})
            return 0, SECRET_UNAVAILABLE
        except AddressRefused as refused:
            return 0, f"address_refused:{refused.why}"
        except aiohttp.ClientConnectorError as exc:
            cause = exc.os_error if hasattr(exc, "os_error") else None
            if isinstance(cause, AddressRefused) or isinstance(exc.__cause__, AddressRefused):
                why = cause.why if isinstance(cause, AddressRefused) else "internal"
                return 0, f"address_refused:{why}"
            return 0, "connect_failed"
        except TimeoutError:
            return 0, "timeout"
        except aiohttp.ClientError:
            return 0, "request_failed"

    async def _failed(
        self, delivery: Delivery, endpoint: Endpoint, attempt: DeliveryAttempt
    ) -> None:
        policy = self._policy
        # Only the endpoint's own failures count towards disabling it.
        failing = (
            None
            if attempt.error == SECRET_UNAVAILABLE
            else await self._repository.record_failure(endpoint.webhook_id, now=attempt.at)
        )
        disable = failing is not None and (
            failing.consecutive_failures >= policy.disable_after_failures
            or (
                failing.failing_since is not None
                and (attempt.at - _aware(failing.failing_since, attempt.at)).total_seconds()
                >= policy.disable_after_seconds
            )
        )
        if disable:
            await self._finish(delivery, attempt, status="failed")
            if await self._repository.disable_failing(endpoint.webhook_id, now=attempt.at):
                ENDPOINTS_DISABLED.inc()
                dropped = await self._repository.fail_pending_of(
                    endpoint.webhook_id, now=attempt.at
                )
                log.warning(
                    "webhook endpoint disabled after persistent failures",
                    extra={**_fields(delivery, attempt), "dropped": dropped},
                )
            return
        if delivery.attempts >= policy.max_attempts:
            await self._finish(delivery, attempt, status="failed")
            log.warning("webhook delivery failed for good", extra=_fields(delivery, attempt))
            return
        delay = policy.retry_delay(delivery.attempts)
        await self._finish(
            delivery,
            attempt,
            status="pending",
            next_attempt_at=attempt.at + timedelta(seconds=delay),
        )
        log.info(
            "webhook attempt failed; retrying",
            extra={**_fields(delivery, attempt), "retry_in_seconds": round(delay, 2)},
        )

    async def _finish(
        self,
        delivery: Delivery,
        attempt: DeliveryAttempt,
        *,
        status: str,
        next_attempt_at: datetime | None = None,
    ) -> None:
        await self._repository.finish_attempt(
            delivery.delivery_id,
            attempt,
            status=status,
            next_attempt_at=next_attempt_at,
            claimed_attempts=delivery.attempts,
        )


def _aware(moment: datetime, like: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=like.tzinfo)


def _fields(delivery: Delivery, attempt: DeliveryAttempt) -> dict[str, object]:
    # Ids, type and outcome only: no URL, no body, no header.
    return {
        "delivery_id": delivery.delivery_id,
        "webhook_id": delivery.webhook_id,
        "business_id": delivery.business_id,
        "event_type": delivery.event_type,
        "attempt": delivery.attempts,
        "status_code": attempt.status_code,
        "outcome": attempt.error or "delivered",
    }
