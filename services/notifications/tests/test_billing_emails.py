"""Billing emails end to end inside notifications: events on a real RabbitMQ, the
runtime on SecantusDB, an aiosmtpd sink behind a proxy the tests can cut, and
small gRPC stand-ins for auth (branding, CreateCustomerLink) and invoicing
(GetInvoicePdf) that count their calls and can be made to fail."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import grpc
import pytest
import pytest_asyncio
from aiosmtpd.controller import Controller
from billing.auth.v1 import auth_pb2, auth_pb2_grpc, portal_access_pb2, portal_access_pb2_grpc
from billing.invoicing.v1 import invoicing_pb2, invoicing_pb2_grpc
from billing_kit.broker import EventPublisher
from billing_kit.consumer import PROCESSED_EVENTS_COLLECTION
from billing_kit.events import CloudEvent
from billing_kit.sealing import DEVELOPMENT_SEALING_KEY, Sealer, new_sealing_key
from billing_kit.testing import (
    TcpProxy,
    broker_namespace,
    eventually,
    free_port,
    running_service,
)
from google.protobuf.timestamp_pb2 import Timestamp
from notifications.app import NotificationsRuntime, create_app
from notifications.config import NotificationsSettings
from notifications.consumers import BILLING_EMAILS, CUSTOMER_DIRECTORY, EMAIL_REQUESTS
from notifications.email.repository import EMAILS

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

FROM_ADDRESS = "no-reply@portal.example.com"
PORTAL = "https://portal.example.test/test"
# A tiny but well-formed PDF: what invoicing would have stored.
PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)
NEXT_BILLING = datetime(2026, 12, 24, 9, 0, tzinfo=UTC)


@dataclass
class Sink:
    """An aiosmtpd handler that keeps what it receives."""

    messages: list[EmailMessage] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = message_from_bytes(envelope.original_content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]


class FakeAuth(
    auth_pb2_grpc.AuthServiceServicer, portal_access_pb2_grpc.PortalAccessServiceServicer
):
    """Auth's two RPCs the billing emails use; CreateCustomerLink is idempotent per key."""

    def __init__(self) -> None:
        self.sealer = Sealer(DEVELOPMENT_SEALING_KEY)
        self.links: dict[str, tuple[str, str]] = {}  # key -> (sealed, link in clear)
        self.link_calls: list[portal_access_pb2.CreateCustomerLinkRequest] = []
        self.down = False

    async def GetBusiness(
        self, request: auth_pb2.GetBusinessRequest, context: Any
    ) -> auth_pb2.Business:
        if self.down:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "down")
        return auth_pb2.Business(
            business_id=request.business_id,
            name="Acme Studio",
            branding=auth_pb2.Branding(
                logo_url="https://cdn.example.com/acme.png", primary_color="#0A7B83"
            ),
            support_email="help@acme.example.com",
            locale="en",
        )

    async def CreateCustomerLink(
        self, request: portal_access_pb2.CreateCustomerLinkRequest, context: Any
    ) -> portal_access_pb2.CreateCustomerLinkResponse:
        self.link_calls.append(request)
        key = request.idempotency_key
        if key not in self.links:
            token = "cpt_" + hashlib.sha256(key.encode()).hexdigest()[:24]
            link = f"{PORTAL}/link/{token}"
            self.links[key] = (self.sealer.seal(link), link)
        expires = Timestamp()
        expires.FromDatetime(datetime.now(UTC) + timedelta(hours=24))
        return portal_access_pb2.CreateCustomerLinkResponse(
            sealed_link=self.links[key][0], expires_at=expires, expires_minutes=24 * 60
        )


class FakeInvoicing(invoicing_pb2_grpc.InvoicingServiceServicer):
    """GetInvoicePdf; ``failures`` answers UNAVAILABLE that many times first."""

    def __init__(self) -> None:
        self.failures = 0
        self.calls = 0

    async def GetInvoicePdf(
        self, request: invoicing_pb2.GetInvoicePdfRequest, context: Any
    ) -> invoicing_pb2.InvoicePdf:
        self.calls += 1
        if self.failures > 0:
            self.failures -= 1
            await context.abort(grpc.StatusCode.UNAVAILABLE, "invoicing is restarting")
        number = request.invoice_id.replace("inv_", "INV-")
        return invoicing_pb2.InvoicePdf(
            invoice=invoicing_pb2.Invoice(invoice_id=request.invoice_id, number=number),
            content=PDF,
        )


@dataclass
class Stack:
    runtime: NotificationsRuntime
    sink: Sink
    proxy: TcpProxy
    auth: FakeAuth
    invoicing: FakeInvoicing
    publisher: EventPublisher

    async def publish(self, event: CloudEvent) -> None:
        await self.publisher.publish(event)

    async def customer(self, *, locale: str = "en", name: str = "Ada") -> tuple[str, str]:
        """A customer the directory knows: (customer_id, email)."""
        customer_id = f"cus_{uuid.uuid4().hex[:10]}"
        address = f"{customer_id}@example.com"
        await self.publish(
            CloudEvent(
                id=str(uuid.uuid4()),
                source="auth",
                type="customer.created",
                time=datetime.now(UTC),
                data={
                    "customer_id": customer_id,
                    "business_id": "bus_1",
                    "mode": "test",
                    "email": address,
                    "name": name,
                    "locale": locale,
                },
            )
        )

        async def known() -> bool:
            doc = await self.runtime.db["recipients"].find_one({"customer_id": customer_id})
            return doc is not None

        assert await eventually(known, within=10, message="customer not learned")
        return customer_id, address

    async def handled(self, event: CloudEvent) -> bool:
        """Handled by the billing-emails consumer (webhooks consume the same events)."""
        count = await self.runtime.db[PROCESSED_EVENTS_COLLECTION].count_documents(
            {"event_id": event.id, "purpose": BILLING_EMAILS}
        )
        return count >= 1


def subscription_event(type: str, customer_id: str, **data: Any) -> CloudEvent:
    payload: dict[str, Any] = {
        "subscription_id": f"sub_{uuid.uuid4().hex[:10]}",
        "business_id": "bus_1",
        "mode": "test",
        "customer_id": customer_id,
        "product_id": "pdt_1",
        "status": type.rsplit(".", 1)[1],
        "recurring_pre_tax_amount": 35620,
        "currency": "EUR",
        "quantity": 1,
        "previous_billing_date": None,
        "next_billing_date": NEXT_BILLING.isoformat(),
        "cancel_at_next_billing_date": False,
        "cancelled_at": None,
        "amount_due": 0,
        "product_name": "Pro Plan",
    }
    payload.update(data)
    return CloudEvent(
        id=str(uuid.uuid4()),
        source="subscriptions",
        type=type,
        time=datetime.now(UTC),
        data=payload,
    )


def invoice_event(customer_id: str, number: str) -> CloudEvent:
    return CloudEvent(
        id=str(uuid.uuid4()),
        source="invoicing",
        type="invoice.created",
        time=datetime.now(UTC),
        data={
            "invoice_id": f"inv_{number.removeprefix('INV-')}",
            "number": number,
            "business_id": "bus_1",
            "mode": "test",
            "customer_id": customer_id,
            "payment_id": "pay_1",
            "total": 35620,
            "currency": "EUR",
            "description": "Pro Plan",
            "paid_at": datetime.now(UTC).isoformat(),
        },
    )


@pytest.fixture(scope="module")
def sink() -> Iterator[tuple[Sink, int]]:
    handler = Sink()
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield handler, controller.port
    finally:
        controller.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stack(mongo_url: str, amqp_url: str, sink: tuple[Sink, int]) -> AsyncIterator[Stack]:
    auth, invoicing = FakeAuth(), FakeInvoicing()
    server = grpc.aio.server()
    auth_pb2_grpc.add_AuthServiceServicer_to_server(auth, server)
    portal_access_pb2_grpc.add_PortalAccessServiceServicer_to_server(auth, server)
    invoicing_pb2_grpc.add_InvoicingServiceServicer_to_server(invoicing, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with (
            TcpProxy(free_port(), "127.0.0.1", sink[1]) as proxy,
            broker_namespace(
                amqp_url,
                known_consumers=[
                    ("notifications", CUSTOMER_DIRECTORY),
                    ("notifications", EMAIL_REQUESTS),
                    ("notifications", BILLING_EMAILS),
                ],
            ) as ns,
            running_service(
                create_app,
                NotificationsSettings,
                mongo_url=mongo_url,
                broker=ns,
                smtp_host="127.0.0.1",
                smtp_port=proxy.listen_port,
                smtp_timeout_seconds=2,
                mail_from=f"Customer Portal <{FROM_ADDRESS}>",
                auth_target=f"127.0.0.1:{port}",
                invoicing_target=f"127.0.0.1:{port}",
                email_retry_base_seconds=0.2,
                email_retry_max_seconds=0.5,
            ) as service,
        ):
            publisher = EventPublisher(amqp_url, ns.exchange, service="tests")
            try:
                yield Stack(service.runtime, sink[0], proxy, auth, invoicing, publisher)
            finally:
                await publisher.close()
    finally:
        await server.stop(0)


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    return str(text.get_content()), str(html.get_content())


async def one_email(stack: Stack, address: str) -> EmailMessage:
    assert await eventually(lambda: len(stack.sink.to(address)) >= 1, within=15)
    [message] = stack.sink.to(address)
    return message


class TestOnHold:
    async def test_email_with_one_time_link_to_the_payment_method_page_sent_once(
        self, stack: Stack
    ) -> None:
        customer_id, address = await stack.customer()
        event = subscription_event(
            "subscription.on_hold", customer_id, amount_due=35620, status="on_hold"
        )
        # Delivered twice (a redelivery after a lost ack): one email, one link.
        await stack.publish(event)
        await stack.publish(event)
        message = await one_email(stack, address)
        text, html = parts(message)

        sub = event.data["subscription_id"]
        key = f"subscription_on_hold:{event.id}"
        call = next(c for c in stack.auth.link_calls if c.idempotency_key == key)
        assert call.next_path == f"/b/bus_1/subscriptions/{sub}/payment-method"
        assert call.customer_id == customer_id
        link = stack.auth.links[key][1]
        assert link in text and link in html
        assert message["Subject"] == "Action needed: your Acme Studio payment failed"
        assert "Amount due: €356.20" in text
        assert "Subscription: Pro Plan" in text
        assert "€356.20" in html and "Update payment method" in html
        assert "24 hours" in text
        assert str(message["From"]) == f"Acme Studio <{FROM_ADDRESS}>"

        await eventually(lambda: stack.handled(event), within=10)
        await asyncio.sleep(0.5)  # a second email would have been queued by now
        assert len(stack.sink.to(address)) == 1

        async def marked_sent() -> bool:
            found = await stack.runtime.db[EMAILS].find_one({"idempotency_key": key})
            return found is not None and found["status"] == "sent"

        assert await eventually(marked_sent, within=10)
        record = await stack.runtime.db[EMAILS].find_one({"idempotency_key": key})
        assert record is not None
        # The log never keeps the link: neither in clear nor sealed once sent.
        assert link not in repr(record) and stack.auth.links[key][0] not in repr(record)

    async def test_italian_customer_gets_italian_wording_and_formats(self, stack: Stack) -> None:
        customer_id, address = await stack.customer(locale="it-IT")
        await stack.publish(
            subscription_event("subscription.on_hold", customer_id, amount_due=35620)
        )
        message = await one_email(stack, address)
        text, html = parts(message)
        assert message["Subject"] == (
            "Azione richiesta: il pagamento a Acme Studio non è andato a buon fine"
        )
        assert "Importo dovuto: 356,20\xa0€" in text
        assert "Aggiorna il metodo di pagamento" in html
        assert message["Content-Language"] == "it"


class TestReceipt:
    async def test_receipt_carries_the_invoice_pdf_fetched_at_send_time(self, stack: Stack) -> None:
        customer_id, address = await stack.customer(locale="it")
        calls_before = stack.invoicing.calls
        stack.invoicing.failures = 2  # invoicing restarting: retried like a relay outage
        event = invoice_event(customer_id, "INV-000042")
        await stack.publish(event)
        message = await one_email(stack, address)
        text, html = parts(message)
        assert message["Subject"] == "La tua ricevuta INV-000042 da Acme Studio"
        assert "356,20\xa0€" in text and "INV-000042" in html
        [attachment] = list(message.iter_attachments())
        assert attachment.get_content_type() == "application/pdf"
        assert attachment.get_filename() == "invoice-INV-000042.pdf"
        assert attachment.get_content() == PDF
        key = {"idempotency_key": f"payment_receipt:{event.id}"}

        async def marked_sent() -> bool:
            # The relay's "250" comes just before the "sent" write.
            found = await stack.runtime.db[EMAILS].find_one({**key, "status": "sent"})
            return found is not None

        assert await eventually(marked_sent, within=10)
        record = await stack.runtime.db[EMAILS].find_one(key)
        # Two refusals by invoicing, then the send (a slow relay under load may add one).
        assert record is not None and record["status"] == "sent" and record["attempts"] >= 3
        assert len(stack.sink.to(address)) == 1
        assert stack.invoicing.calls - calls_before >= 3
        # Not stored: the PDF is fetched for each attempt, never kept in the email log.
        assert "%PDF" not in repr(record)


class TestSubscriptionNotices:
    async def test_reactivated_only_after_on_hold(self, stack: Stack) -> None:
        customer_id, address = await stack.customer()
        first = subscription_event("subscription.active", customer_id, previous_status="pending")
        await stack.publish(first)
        await eventually(lambda: stack.handled(first), within=10)
        again = subscription_event("subscription.active", customer_id, previous_status="on_hold")
        await stack.publish(again)
        message = await one_email(stack, address)
        text, _ = parts(message)
        assert message["Subject"] == "Your Acme Studio subscription is active again"
        assert "It renews on December 24, 2026." in text

    async def test_cancelled(self, stack: Stack) -> None:
        customer_id, address = await stack.customer()
        await stack.publish(subscription_event("subscription.cancelled", customer_id))
        message = await one_email(stack, address)
        assert message["Subject"] == "Your Acme Studio subscription has been cancelled"

    async def test_cancellation_scheduled_says_until_when_and_how_to_undo(
        self, stack: Stack
    ) -> None:
        customer_id, address = await stack.customer()
        # Another update while the cancel is already scheduled sends nothing more.
        unrelated = subscription_event(
            "subscription.updated",
            customer_id,
            cancel_at_next_billing_date=True,
            previous_cancel_at_next_billing_date=True,
        )
        await stack.publish(unrelated)
        await eventually(lambda: stack.handled(unrelated), within=10)
        event = subscription_event(
            "subscription.updated",
            customer_id,
            cancel_at_next_billing_date=True,
            previous_cancel_at_next_billing_date=False,
        )
        await stack.publish(event)
        message = await one_email(stack, address)
        text, html = parts(message)
        assert "you keep access until December 24, 2026" in text
        assert 'choose "Keep my subscription" before December 24, 2026' in text
        call = next(c for c in stack.auth.link_calls if c.idempotency_key.endswith(event.id))
        assert call.next_path == f"/b/bus_1/subscriptions/{event.data['subscription_id']}"
        assert stack.auth.links[call.idempotency_key][1] in html

    async def test_renewal_reminder(self, stack: Stack) -> None:
        customer_id, address = await stack.customer()
        await stack.publish(subscription_event("subscription.renewal_reminder", customer_id))
        message = await one_email(stack, address)
        text, _ = parts(message)
        assert message["Subject"] == "Your Acme Studio subscription renews on December 24, 2026"
        assert "will be charged €356.20" in text

    async def test_bad_event_data_queues_nothing(self, stack: Stack) -> None:
        customer_id, address = await stack.customer()
        bad = subscription_event("subscription.cancelled", customer_id, currency="euro")
        await stack.publish(bad)
        await asyncio.sleep(1.5)
        assert not await stack.handled(bad)
        assert await stack.runtime.db[EMAILS].count_documents({"to": address}) == 0


class TestSmtpOutage:
    async def test_relay_down_then_up_delivers_each_email_exactly_once(self, stack: Stack) -> None:
        customers = [await stack.customer() for _ in range(3)]
        await stack.proxy.cut()
        try:
            events = [
                subscription_event("subscription.cancelled", customer_id)
                for customer_id, _ in customers
            ]
            for event in events:
                await stack.publish(event)

            async def all_tried_and_waiting() -> bool:
                docs = stack.runtime.db[EMAILS].find(
                    {"idempotency_key": {"$in": [f"subscription_cancelled:{e.id}" for e in events]}}
                )
                found = [d async for d in docs]
                return len(found) == 3 and all(
                    d["status"] in ("queued", "sending") and d["attempts"] >= 1 for d in found
                )

            assert await eventually(all_tried_and_waiting, within=15)
            # The same events redelivered during the outage add nothing.
            for event in events:
                await stack.publish(event)
        finally:
            await stack.proxy.restore()
        for _, address in customers:
            await one_email(stack, address)
        await asyncio.sleep(1.0)
        assert all(len(stack.sink.to(address)) == 1 for _, address in customers)


LICENSE_KEY = "QWERT-YUIOP-ASDFG-HJKLZ-XCVBN-M2345"
ACTIVATION = "Open Preferences > License and paste the key."


def license_event(customer_id: str, **data: Any) -> CloudEvent:
    """subscriptions' license_key.created, its key sealed with the (shared) dev seal key."""
    payload: dict[str, Any] = {
        "license_key_id": f"lic_{uuid.uuid4().hex[:10]}",
        "business_id": "bus_1",
        "mode": "test",
        "customer_id": customer_id,
        "product_id": "pdt_app",
        "product_name": "Desktop App",
        "source": "auto",
        "payment_id": "pay_1",
        "subscription_id": "",
        "key_sealed": Sealer(DEVELOPMENT_SEALING_KEY).seal(LICENSE_KEY),
        "activation_message": ACTIVATION,
        "activations_limit": 3,
        "expires_at": datetime(2027, 12, 24, 9, 0, tzinfo=UTC).isoformat(),
        "instances_count": 0,
        "disabled": False,
        "created_at": datetime.now(UTC).isoformat(),
    }
    payload.update(data)
    return CloudEvent(
        id=str(uuid.uuid4()),
        source="subscriptions",
        type="license_key.created",
        time=datetime.now(UTC),
        data=payload,
    )


class TestLicenseKeyDelivered:
    async def test_the_key_is_emailed_once_and_never_stored_or_logged_in_clear(
        self, stack: Stack, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG)
        customer_id, address = await stack.customer()
        event = license_event(customer_id)
        key = f"license_key_delivered:{event.id}"
        await stack.proxy.cut()
        try:
            # Delivered twice (a redelivery after a lost ack): one email.
            await stack.publish(event)
            await stack.publish(event)

            async def waiting() -> bool:
                found = await stack.runtime.db[EMAILS].find_one({"idempotency_key": key})
                return found is not None and found["attempts"] >= 1

            assert await eventually(waiting, within=15)
            # While it waits for the relay the log holds the key sealed only.
            queued = await stack.runtime.db[EMAILS].find_one({"idempotency_key": key})
            assert queued is not None
            assert LICENSE_KEY not in repr(queued)
            assert queued["queued"]["sealed_license_key"] == event.data["key_sealed"]
        finally:
            await stack.proxy.restore()
        message = await one_email(stack, address)
        text, html = parts(message)
        assert message["Subject"] == "Your license key for Desktop App"
        for body in (text, html):
            assert LICENSE_KEY in body
            assert "Up to 3 devices" in body
            assert "December 24, 2027" in body
        assert ACTIVATION in text
        assert "Open Preferences &gt; License and paste the key." in html
        assert "font-family:ui-monospace" in html

        await eventually(lambda: stack.handled(event), within=10)
        await asyncio.sleep(0.5)  # a second email would have been queued by now
        assert len(stack.sink.to(address)) == 1
        assert await stack.runtime.db[EMAILS].count_documents({"idempotency_key": key}) == 1

        async def marked_sent() -> bool:
            found = await stack.runtime.db[EMAILS].find_one({"idempotency_key": key})
            return found is not None and found["status"] == "sent"

        assert await eventually(marked_sent, within=10)
        record = await stack.runtime.db[EMAILS].find_one({"idempotency_key": key})
        assert record is not None
        # Final: neither the key nor its sealed form stays in the log.
        assert LICENSE_KEY not in repr(record)
        assert event.data["key_sealed"] not in repr(record)
        assert LICENSE_KEY not in caplog.text

    async def test_italian_customer_gets_the_key_in_italian(self, stack: Stack) -> None:
        customer_id, address = await stack.customer(locale="it")
        await stack.publish(license_event(customer_id, activations_limit=None, expires_at=None))
        message = await one_email(stack, address)
        text, _html = parts(message)
        assert message["Subject"] == "La tua chiave di licenza per Desktop App"
        assert LICENSE_KEY in text
        assert "Attivazioni: Illimitate" in text
        assert "Scadenza: Mai" in text
        assert "Come attivarla" in text

    async def test_a_key_our_seal_keys_cannot_open_queues_nothing(self, stack: Stack) -> None:
        customer_id, _address = await stack.customer()
        event = license_event(customer_id, key_sealed=Sealer(new_sealing_key()).seal(LICENSE_KEY))
        await stack.publish(event)
        await asyncio.sleep(1.5)
        assert (
            await stack.runtime.db[EMAILS].count_documents(
                {"idempotency_key": f"license_key_delivered:{event.id}"}
            )
            == 0
        )
