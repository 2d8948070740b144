"""Webhook use cases: endpoint management, secrets, headers, and queueing deliveries.

Secrets and sensitive header values are sealed (``billing_kit.sealing``) before
they reach the database and are opened only to sign or send; nothing here logs them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from billing_kit.errors import InvalidArgument, NotFound, Reason
from billing_kit.events import CloudEvent
from billing_kit.mongo import call_after_commit
from billing_kit.scoping import Mode
from billing_kit.sealing import Sealer, SealError
from pydantic import ValidationError
from pymongo.asynchronous.client_session import AsyncClientSession

from notifications.models import RecipientKey
from notifications.repository import RecipientsRepository
from notifications.webhooks.models import (
    MAX_HEADERS,
    MAX_METADATA,
    MAX_TOTAL_HEADERS,
    RESERVED_HEADERS,
    Delivery,
    Endpoint,
    EndpointChanges,
    EndpointSpec,
    SigningSecret,
    check_filter_types,
    is_sensitive_header,
    time_ordered_id,
)
from notifications.webhooks.payloads import (
    EventScope,
    customer_of,
    event_data,
    sealed_license_key_of,
    webhook_body,
    with_license_key,
)
from notifications.webhooks.repository import WebhooksRepository
from notifications.webhooks.signing import new_secret

log = logging.getLogger(__name__)

DEFAULT_LIMIT = 10
MAX_LIMIT = 100
_HEADER_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")


class InvalidWebhookEvent(ValueError):
    """An event whose data cannot become a webhook (fields named, never values)."""


def _describe(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'request'}: {e['msg']}" for e in exc.errors()
    )


def invalid(message: str, field: str | None = None) -> InvalidArgument:
    """INVALID_ARGUMENT with reason INVALID_WEBHOOK."""
    return InvalidArgument(message, reason=Reason.INVALID_WEBHOOK, field=field)


def not_found() -> NotFound:
    """The one answer for a missing endpoint and another business's."""
    return NotFound("webhook not found", reason=Reason.WEBHOOK_NOT_FOUND, field="webhook_id")


def check_url(url: str) -> str:
    """An absolute http(s) URL with a host, no credentials; INVALID_ARGUMENT otherwise."""
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a bad port
    except ValueError:
        raise invalid("url: not a valid URL", "url") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise invalid("url: must be an absolute http or https URL", "url")
    if parts.username or parts.password:
        raise invalid("url: must not contain credentials", "url")
    if port == 0:
        raise invalid("url: not a valid port", "url")
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url):
        raise invalid("url: must not contain spaces or control characters", "url")
    return url


def check_headers(headers: dict[str, str]) -> dict[str, str]:
    """Header names are tokens, not ours; values single-line; at most MAX_HEADERS."""
    if len(headers) > MAX_HEADERS:
        raise invalid(f"headers: at most {MAX_HEADERS}", "headers")
    for name, value in headers.items():
        lowered = name.lower()
        if not lowered or not set(lowered) <= _HEADER_NAME_CHARS or len(name) > 100:
            raise invalid("headers: names must be letters, digits, '-' or '_'", "headers")
        if lowered in RESERVED_HEADERS:
            raise invalid(f"headers: {lowered} is set by the platform", "headers")
        if len(value) > 4096 or any(c in value for c in "\r\n\0"):
            raise invalid("headers: values must be one line, at most 4096 characters", "headers")
    return headers


def check_metadata(metadata: dict[str, str]) -> dict[str, str]:
    """At most MAX_METADATA short string pairs."""
    if len(metadata) > MAX_METADATA:
        raise invalid(f"metadata: at most {MAX_METADATA} keys", "metadata")
    if any(not k or len(k) > 100 or len(v) > 1000 for k, v in metadata.items()):
        raise invalid("metadata: keys 1-100 characters, values at most 1000", "metadata")
    if any("\x00" in k for k in metadata):
        # Keys are stored as field names, which cannot hold NUL.
        raise invalid("metadata: keys must not contain the NUL character", "metadata")
    return metadata


class WebhooksService:
    """Endpoints of one business and mode, and the deliveries events become."""

    def __init__(
        self,
        repository: WebhooksRepository,
        recipients: RecipientsRepository,
        sealer: Sealer,
        *,
        clock: Callable[[], datetime],
        rotation_grace_seconds: float,
        on_delivery_queued: Callable[[], None] = lambda: None,
        license_sealer: Sealer | None = None,
    ) -> None:
        self._repository = repository
        # Opens the license keys subscriptions seals (LICENSE_KEY_SEAL_KEYS).
        self._license_sealer = license_sealer
        self._recipients = recipients
        self._sealer = sealer
        self._clock = clock
        self._grace = timedelta(seconds=rotation_grace_seconds)
        self._on_queued = on_delivery_queued

    # --- endpoints ---

    async def create(self, business_id: str, mode: Mode, spec: EndpointSpec) -> Endpoint:
        """A new endpoint with a fresh secret (idempotent on ``spec.idempotency_key``)."""
        check_url(spec.url)
        check_headers(spec.headers)
        check_metadata(spec.metadata)
        now = self._clock()
        plain, sealed = self._split_headers(spec.headers)
        endpoint = Endpoint(
            webhook_id=time_ordered_id("wh"),
            business_id=business_id,
            mode=mode,
            url=spec.url,
            description=spec.description,
            filter_types=spec.filter_types,
            metadata=spec.metadata,
            disabled=spec.disabled,
            rate_limit=spec.rate_limit,
            headers=plain,
            sealed_headers=sealed,
            secrets=[SigningSecret(sealed=self._sealer.seal(new_secret()), created_at=now)],
            idempotency_key=spec.idempotency_key,
            created_at=now,
            updated_at=now,
        )
        stored: Endpoint = await self._repository.insert_endpoint(endpoint)
        log.info("webhook created", extra=_fields(stored))
        return stored

    async def get(self, business_id: str, mode: Mode, webhook_id: str) -> Endpoint:
        """The endpoint; NOT_FOUND for a missing one and for another business's."""
        endpoint: Endpoint | None = await self._repository.get_endpoint(
            business_id, mode, webhook_id
        )
        if endpoint is None:
            raise not_found()
        return endpoint

    async def list_page(
        self, business_id: str, mode: Mode, *, limit: int, iterator: str
    ) -> tuple[list[Endpoint], str]:
        """One page, newest first, and the iterator of the next ("" when done)."""
        limit = limit or DEFAULT_LIMIT
        if not 1 <= limit <= MAX_LIMIT:
            raise InvalidArgument(f"limit: 1 to {MAX_LIMIT}", reason=Reason.INVALID_PAGE)
        # One more than asked says whether another page exists without a count.
        found: list[Endpoint] = await self._repository.list_endpoints(
            business_id, mode, limit=limit + 1, before_id=iterator or None
        )
        page = found[:limit]
        more = len(found) > limit
        return page, (page[-1].webhook_id if more and page else "")

    async def update(
        self, business_id: str, mode: Mode, webhook_id: str, changes: EndpointChanges
    ) -> Endpoint:
        """Change the given fields; re-enabling clears the failure count."""
        fields: dict[str, Any] = {}
        if changes.url is not None:
            fields["url"] = check_url(changes.url)
        if changes.description is not None:
            if len(changes.description) > 1000:
                raise invalid("description: at most 1000 characters", "description")
            fields["description"] = changes.description
        if changes.filter_types is not None:
            try:
                fields["filter_types"] = check_filter_types(changes.filter_types)
            except ValueError as exc:
                raise invalid(f"filter_types: {exc}", "filter_types") from None
        if changes.metadata is not None:
            fields["metadata"] = check_metadata(changes.metadata)
        if changes.rate_limit is not None:
            if not 1 <= changes.rate_limit <= 100_000:
                raise invalid("rate_limit: 1 to 100000", "rate_limit")
            fields["rate_limit"] = changes.rate_limit
        if changes.disabled is not None:
            fields["disabled"] = changes.disabled
            fields["disabled_reason"] = ""
            if not changes.disabled:
                fields["consecutive_failures"] = 0
        if not fields:
            return await self.get(business_id, mode, webhook_id)
        fields["updated_at"] = self._clock()
        endpoint: Endpoint | None = await self._repository.update_endpoint(
            business_id, mode, webhook_id, fields
        )
        if endpoint is None:
            raise not_found()
        log.info("webhook updated", extra={**_fields(endpoint), "changed": sorted(fields)})
        return endpoint

    async def delete(self, business_id: str, mode: Mode, webhook_id: str) -> None:
        """Remove the endpoint and its deliveries not yet made."""
        if not await self._repository.delete_endpoint(business_id, mode, webhook_id):
            raise not_found()
        log.info("webhook deleted", extra={"webhook_id": webhook_id, "business_id": business_id})

    # --- secrets ---

    def signing_secrets(self, endpoint: Endpoint, now: datetime) -> list[str]:
        """The secrets to sign with now: the current one and any still in its grace period."""
        return [
            self._sealer.open(s.sealed)
            for s in endpoint.secrets
            if s.expires_at is None or s.expires_at > now
        ]

    async def secret(self, business_id: str, mode: Mode, webhook_id: str) -> str:
        """The current ``whsec_`` secret (the first, never expiring one)."""
        endpoint = await self.get(business_id, mode, webhook_id)
        return self._sealer.open(endpoint.secrets[0].sealed)

    async def rotate_secret(
        self, business_id: str, mode: Mode, webhook_id: str
    ) -> tuple[str, datetime]:
        """A new secret now; the previous one keeps signing alongside until the grace ends."""
        endpoint = await self.get(business_id, mode, webhook_id)
        now = self._clock()
        fresh = new_secret()
        expires = now + self._grace
        previous = endpoint.secrets[0].model_copy(update={"expires_at": expires})
        # Older secrets whose grace already ended are dropped for good.
        keep = [s for s in endpoint.secrets[1:] if s.expires_at is not None and s.expires_at > now]
        secrets = [SigningSecret(sealed=self._sealer.seal(fresh), created_at=now), previous, *keep]
        if not await self._repository.set_secrets(
            business_id, mode, webhook_id, secrets, expected=endpoint.secrets, now=now
        ):
            raise not_found()  # deleted, or rotated concurrently: the caller retries
        log.info("webhook secret rotated", extra=_fields(endpoint))
        return fresh, expires

    # --- headers ---

    def _split_headers(self, headers: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
        plain = {k: v for k, v in headers.items() if not is_sensitive_header(k)}
        sealed = {k: self._sealer.seal(v) for k, v in headers.items() if is_sensitive_header(k)}
        return plain, sealed

    def custom_headers(self, endpoint: Endpoint) -> dict[str, str]:
        """Every custom header with its value (for sending only)."""
        opened = {k: self._sealer.open(v) for k, v in endpoint.sealed_headers.items()}
        return {**endpoint.headers, **opened}

    async def headers(
        self, business_id: str, mode: Mode, webhook_id: str
    ) -> tuple[dict[str, str], list[str]]:
        """Shown headers and the names of the sensitive ones (values withheld)."""
        endpoint = await self.get(business_id, mode, webhook_id)
        return dict(endpoint.headers), sorted(endpoint.sealed_headers)

    async def update_headers(
        self, business_id: str, mode: Mode, webhook_id: str, headers: dict[str, str]
    ) -> None:
        """Add or replace headers; an empty value removes one."""
        check_headers({k: v for k, v in headers.items()})
        endpoint = await self.get(business_id, mode, webhook_id)
        plain = dict(endpoint.headers)
        sealed = dict(endpoint.sealed_headers)
        for name, value in headers.items():
            plain.pop(name, None)
            sealed.pop(name, None)
            if value == "":
                continue
            if is_sensitive_header(name):
                sealed[name] = self._sealer.seal(value)
            else:
                plain[name] = value
        if len(plain) + len(sealed) > MAX_TOTAL_HEADERS:
            raise invalid(f"headers: at most {MAX_TOTAL_HEADERS} in all", "headers")
        updated = await self._repository.update_endpoint(
            business_id,
            mode,
            webhook_id,
            {"headers": plain, "sealed_headers": sealed, "updated_at": self._clock()},
        )
        if updated is None:
            raise not_found()

    # --- deliveries ---

    async def deliveries(
        self, business_id: str, mode: Mode, webhook_id: str, *, limit: int, iterator: str
    ) -> tuple[list[Delivery], str]:
        """The endpoint's delivery log, newest first, and the next page's iterator."""
        await self.get(business_id, mode, webhook_id)
        limit = limit or DEFAULT_LIMIT
        if not 1 <= limit <= MAX_LIMIT:
            raise InvalidArgument(f"limit: 1 to {MAX_LIMIT}", reason=Reason.INVALID_PAGE)
        found: list[Delivery] = await self._repository.list_deliveries(
            webhook_id, limit=limit + 1, before_id=iterator or None
        )
        page = found[:limit]
        return page, (page[-1].delivery_id if len(found) > limit and page else "")

    def delivery_body(self, body: str, sealed_license_key: str) -> str:
        """The bytes an attempt sends: ``body``, with the license key opened in memory
        when the delivery carries one. Raises :class:`SealError` when no key opens it."""
        if not sealed_license_key:
            return body
        if self._license_sealer is None:
            raise SealError("no license key seal keys configured")
        return with_license_key(body, self._license_sealer.open(sealed_license_key))

    async def queue_event(self, event: CloudEvent, session: AsyncClientSession) -> int:
        """One delivery per enabled endpoint that admits the type, in the consumer's
        transaction; a redelivered event queues nothing twice. Returns how many."""
        try:
            scope = EventScope.model_validate(event.data)
        except ValidationError as exc:
            raise InvalidWebhookEvent(f"invalid {event.type} data: {_describe(exc)}") from None
        endpoints: list[Endpoint] = await self._repository.enabled_endpoints(
            scope.business_id, scope.mode, session=session
        )
        targets = [e for e in endpoints if e.admits(event.type)]
        if not targets:
            return 0
        recipient = None
        customer_id = customer_of(event.type, event.data)
        if customer_id:
            recipient = await self._recipients.get_recipient(
                RecipientKey(
                    business_id=scope.business_id, mode=scope.mode, customer_id=customer_id
                ),
                session=session,
            )
        try:
            data = event_data(event, recipient)
        except ValidationError as exc:
            raise InvalidWebhookEvent(f"invalid {event.type} data: {_describe(exc)}") from None
        body = webhook_body(event, data, scope.business_id)
        sealed_key = sealed_license_key_of(event)
        if sealed_key:
            try:
                self.delivery_body(body, sealed_key)  # our keys must open it
            except SealError:
                raise InvalidWebhookEvent(
                    f"invalid {event.type} data: key_sealed: cannot be opened with our keys"
                ) from None
        now = self._clock()
        queued = 0
        for endpoint in targets:
            delivery = Delivery(
                delivery_id=time_ordered_id("msg"),
                webhook_id=endpoint.webhook_id,
                business_id=scope.business_id,
                mode=scope.mode,
                event_id=event.id,
                event_type=event.type,
                body=body,
                sealed_license_key=sealed_key,
                next_attempt_at=now,
                created_at=now,
                updated_at=now,
            )
            if await self._repository.add_delivery(delivery, session=session):
                queued += 1
        if queued:
            call_after_commit(session, ("webhook-delivery", id(self)), self._on_queued)
            log.info(
                "webhook deliveries queued",
                extra={"event_type": event.type, "business_id": scope.business_id, "n": queued},
            )
        return queued


def _fields(endpoint: Endpoint) -> dict[str, object]:
    # No URL (it may carry a token in its path or query), no secret, no header values.
    return {
        "webhook_id": endpoint.webhook_id,
        "business_id": endpoint.business_id,
        "mode": endpoint.mode,
    }
