"""gRPC clients the billing emails need: auth (branding, one-time links) and
invoicing (the receipt's PDF). One channel per peer per process, deadlines always.

Branding is asked of auth when an email is queued (cached briefly, so a burst of
receipts for one business costs one call) and frozen into the queued record, so
a retried send says what the first attempt would have said.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import grpc
from billing.auth.v1 import auth_pb2, auth_pb2_grpc, portal_access_pb2, portal_access_pb2_grpc
from billing.invoicing.v1 import invoicing_pb2, invoicing_pb2_grpc
from billing_kit.errors import DomainError, Reason, Unavailable
from billing_kit.grpc_client import create_channel
from billing_kit.scoping import Mode, mode_to_proto

from notifications.email.models import Branding, EmailRequest, EmailTemplate
from notifications.email.smtp import Attachment, SendFailed


@dataclass(frozen=True)
class BusinessProfile:
    """What an email needs to know about the business: its branding and language."""

    branding: Branding
    locale: str


@dataclass(frozen=True)
class MintedLink:
    """A one-time portal link, sealed for this service, and its lifetime."""

    sealed_link: str
    expires_minutes: int
    expires_at: datetime


class _Peer:
    """A lazily opened channel to one peer (nothing is dialled until the first call)."""

    def __init__(self, target: str, *, name: str, timeout: float) -> None:
        self._target = target
        self._name = name
        self._timeout = timeout
        self._channel: grpc.aio.Channel | None = None

    def channel(self) -> grpc.aio.Channel:
        if self._channel is None:
            self._channel = create_channel(self._target, name=self._name, timeout=self._timeout)
        return self._channel

    async def stop(self) -> None:
        """Close the channel (if it was opened)."""
        if self._channel is not None:
            await self._channel.close()
            self._channel = None


class AuthClient(_Peer):
    """Business profiles (cached ``cache_seconds``) and one-time customer links."""

    def __init__(self, target: str, *, timeout: float, cache_seconds: float) -> None:
        super().__init__(target, name="auth", timeout=timeout)
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, BusinessProfile]] = {}

    async def business(self, business_id: str) -> BusinessProfile:
        """The business's branding and default language (auth ``GetBusiness``)."""
        now = time.monotonic()
        hit = self._cache.get(business_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        stub = auth_pb2_grpc.AuthServiceStub(self.channel())
        found = await stub.GetBusiness(auth_pb2.GetBusinessRequest(business_id=business_id))
        profile = BusinessProfile(
            branding=Branding(
                business_name=found.name,
                logo_url=found.branding.logo_url,
                primary_color=found.branding.primary_color,
                support_email=found.support_email or None,
            ),
            locale=found.locale,
        )
        if len(self._cache) > 1000:  # bounded: businesses are few, but never unbounded
            self._cache.clear()
        self._cache[business_id] = (now + self._cache_seconds, profile)
        return profile

    async def customer_link(
        self, *, business_id: str, mode: Mode, customer_id: str, next_path: str, key: str
    ) -> MintedLink:
        """A one-time link into the portal landing on ``next_path``; the same ``key``
        returns the same link (auth ``CreateCustomerLink``)."""
        stub = portal_access_pb2_grpc.PortalAccessServiceStub(self.channel())
        answer = await stub.CreateCustomerLink(
            portal_access_pb2.CreateCustomerLinkRequest(
                business_id=business_id,
                mode=mode_to_proto(mode),
                customer_id=customer_id,
                next_path=next_path,
                idempotency_key=key,
            )
        )
        return MintedLink(
            sealed_link=answer.sealed_link,
            expires_minutes=answer.expires_minutes,
            expires_at=answer.expires_at.ToDatetime(tzinfo=UTC),
        )


class InvoicePdfs(_Peer):
    """The receipt's attachment: the stored invoice PDF (invoicing ``GetInvoicePdf``).

    Any failure (invoicing down, the PDF not stored yet) is a retryable
    :class:`SendFailed`, so the email waits with backoff as for a relay outage.
    """

    def __init__(self, target: str, *, timeout: float) -> None:
        super().__init__(target, name="invoicing", timeout=timeout)

    async def attachments_for(self, request: EmailRequest) -> Sequence[Attachment]:
        """The invoice PDF of a receipt; nothing for other emails."""
        billing = request.billing
        if request.template is not EmailTemplate.PAYMENT_RECEIPT or billing is None:
            return ()
        stub = invoicing_pb2_grpc.InvoicingServiceStub(self.channel())
        try:
            pdf = await stub.GetInvoicePdf(
                invoicing_pb2.GetInvoicePdfRequest(
                    business_id=request.business_id,
                    mode=mode_to_proto(request.mode),
                    customer_id=billing.customer_id,
                    invoice_id=billing.invoice_id,
                )
            )
        except (DomainError, grpc.aio.AioRpcError):
            raise SendFailed(
                Unavailable("the invoice PDF is not available yet", reason=Reason.UNAVAILABLE),
                "invoice_pdf_unavailable",
            ) from None
        number = pdf.invoice.number or billing.invoice_number
        filename = f"invoice-{number}.pdf"
        return (Attachment(filename=filename, content=pdf.content),)
