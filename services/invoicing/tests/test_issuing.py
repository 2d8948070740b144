"""Issuing against the real broker, SecantusDB and the real auth service.

Payment events are published as payments' relay would; two invoicing
replicas share one database, as two pods would.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
import pytest_asyncio
from auth.app import create_app as create_auth
from auth.config import AuthSettings
from billing.auth.v1 import auth_pb2, auth_pb2_grpc
from billing.common.v1 import common_pb2
from billing.invoicing.v1 import invoicing_pb2, invoicing_pb2_grpc
from billing_kit.broker import EventPublisher
from billing_kit.errors import Reason
from billing_kit.events import CloudEvent
from billing_kit.grpc_client import domain_error_from
from billing_kit.testing import (
    BrokerNamespace,
    RunningService,
    TcpProxy,
    broker_namespace,
    eventually,
    free_port,
    running_service,
    take_queue_messages,
    unique_name,
)
from invoicing.app import InvoicingRuntime, create_app
from invoicing.config import InvoicingSettings
from invoicing.issuing import ISSUE_PURPOSE, invoice_for, invoice_id_of, parse_payment
from pypdf import PdfReader

pytestmark = pytest.mark.integration

PAID = datetime(2026, 12, 7, 9, 58, tzinfo=UTC)
DELIVERY_LIMIT = 2


@dataclass
class Shop:
    """A business in auth with an Italian and an English customer."""

    business_id: str
    it_customer: str
    en_customer: str


@pytest_asyncio.fixture
async def ns(amqp_url: str) -> AsyncIterator[BrokerNamespace]:
    async with broker_namespace(amqp_url, known_consumers=[("invoicing", ISSUE_PURPOSE)]) as n:
        yield n


@pytest_asyncio.fixture
async def auth(mongo_url: str, ns: BrokerNamespace) -> AsyncIterator[RunningService[Any]]:
    async with running_service(create_auth, AuthSettings, mongo_url=mongo_url, broker=ns) as svc:
        yield svc


@pytest_asyncio.fixture
async def shop(auth: RunningService[Any]) -> Shop:
    stub = auth_pb2_grpc.AuthServiceStub(auth.channel)
    business = await stub.CreateBusiness(
        auth_pb2.CreateBusinessRequest(
            name="Pizzeria da Mario",
            support_email="aiuto@mario.example.com",
            locale="en",
            address="Via Roma 1\n20121 Milano",
            tax_id="IT01234567890",
            branding=auth_pb2.Branding(primary_color="#c0392b"),
        )
    )
    ids = []
    for email, name, locale in (
        ("ada@example.com", "Ada Lovelace", "it"),
        ("grace@example.com", "Grace Hopper", "en"),
    ):
        reply = await stub.CreateCustomer(
            auth_pb2.CreateCustomerRequest(
                business_id=business.business_id,
                mode=common_pb2.MODE_TEST,
                email=email,
                name=name,
                preferred_locale=locale,
            )
        )
        ids.append(reply.customer.customer_id)
    return Shop(business.business_id, ids[0], ids[1])


@pytest_asyncio.fixture
async def replicas(
    mongo_url: str, ns: BrokerNamespace, auth: RunningService[Any]
) -> AsyncIterator[list[RunningService[InvoicingRuntime]]]:
    """Two invoicing processes over one database, as two pods."""
    settings = {
        "mongodb_database": unique_name("inv"),
        "auth_target": auth.grpc_target,
        "consumer_delivery_limit": DELIVERY_LIMIT,
        "sweep_seconds": 0.5,
        "finish_lease_seconds": 5,
        "finish_retry_seconds": 0.5,
        "auth_retry_seconds": 1.0,
    }
    async with (
        running_service(
            create_app, InvoicingSettings, mongo_url=mongo_url, broker=ns, **settings
        ) as first,
        running_service(
            create_app, InvoicingSettings, mongo_url=mongo_url, broker=ns, **settings
        ) as second,
    ):
        yield [first, second]


@pytest_asyncio.fixture
async def publisher(amqp_url: str, ns: BrokerNamespace) -> AsyncIterator[EventPublisher]:
    """Publishes as payments' relay would."""
    events = EventPublisher(amqp_url, ns.exchange, service="payments")
    await events.connect()
    try:
        yield events
    finally:
        await events.close()


def payment_event(
    shop: Shop, payment_id: str, *, customer_id: str = "", amount: int = 35620, **changes: Any
) -> CloudEvent:
    data: dict[str, Any] = {
        "payment_id": payment_id,
        "business_id": shop.business_id,
        "mode": "test",
        "customer_id": customer_id or shop.it_customer,
        "subscription_id": "sub_1",
        "total_amount": amount,
        "currency": "EUR",
        "status": "succeeded",
        "charge_type": "new",
        "payment_method_id": "pm_1",
        "card_brand": "visa",
        "card_last_four": "4242",
        "error_code": "",
        "error_message": "",
        "challenge_url": "",
        "idempotency_key": f"key-{payment_id}",
        "description": "Pro plan",
        "metadata": {},
        "created_at": PAID.isoformat(),
        "updated_at": PAID.isoformat(),
    }
    data.update(changes)
    return CloudEvent(
        id=f"evt_{payment_id}", source="payments", type="payment.succeeded", time=PAID, data=data
    )


def stub_of(service: RunningService[InvoicingRuntime]) -> invoicing_pb2_grpc.InvoicingServiceStub:
    return invoicing_pb2_grpc.InvoicingServiceStub(service.channel)


async def ready_invoices(service: RunningService[InvoicingRuntime]) -> list[dict[str, Any]]:
    return await service.runtime.db["invoices"].find({"pdf_ready": True}).to_list()


async def created_events(service: RunningService[InvoicingRuntime]) -> list[dict[str, Any]]:
    return await service.runtime.db["outbox"].find({"type": "invoice.created"}).to_list()


async def test_fifty_concurrent_payments_on_two_replicas_are_numbered_1_to_50(
    replicas: list[RunningService[InvoicingRuntime]], shop: Shop, publisher: EventPublisher
) -> None:
    await asyncio.gather(
        *(publisher.publish(payment_event(shop, f"pay_{n:02d}")) for n in range(50))
    )
    first = replicas[0]
    await eventually(
        lambda: _count(first, {"pdf_ready": True}, 50), within=90, message="50 invoices"
    )
    invoices = await first.runtime.db["invoices"].find({}).to_list()
    assert sorted(doc["number"] for doc in invoices) == [f"INV-{n:06d}" for n in range(1, 51)]
    assert len({doc["payment_id"] for doc in invoices}) == 50
    # Both replicas took part (the queue is shared), and each invoice was announced once.
    events = await created_events(first)
    assert sorted(e["event"]["data"]["number"] for e in events) == [
        f"INV-{n:06d}" for n in range(1, 51)
    ]
    stored = await first.runtime.db["invoice_pdfs.files"].count_documents({})
    assert stored == 50
    # Both replicas numbered some of them (one shared queue), together exactly 50.
    issued = [replica.runtime.issuing.issued_here for replica in replicas]
    assert sum(issued) == 50 and all(issued), issued


async def _count(service: RunningService[InvoicingRuntime], query: dict[str, Any], n: int) -> bool:
    return await service.runtime.db["invoices"].count_documents(query) == n


async def test_the_same_event_twice_gives_one_invoice_and_one_announcement(
    replicas: list[RunningService[InvoicingRuntime]], shop: Shop, publisher: EventPublisher
) -> None:
    event = payment_event(shop, "pay_twice")
    await publisher.publish(event)
    await publisher.publish(event)
    # A different event id for the same payment (a producer retry) changes nothing either.
    await publisher.publish(event.model_copy(update={"id": "evt_other"}))
    first = replicas[0]
    await eventually(lambda: _count(first, {"pdf_ready": True}, 1), within=30)
    processed = first.runtime.db["processed_events"]
    await eventually(lambda: _processed(processed, 2), within=30, message="both event ids handled")
    assert await first.runtime.db["invoices"].count_documents({}) == 1
    assert len(await created_events(first)) == 1


async def _processed(collection: Any, n: int) -> bool:
    return await collection.count_documents({}) == n


async def test_a_killed_render_is_finished_by_the_sweeper(
    replicas: list[RunningService[InvoicingRuntime]], shop: Shop
) -> None:
    """An invoice numbered and stored, whose process died before the PDF: the sweeper ends it."""
    runtime = replicas[0].runtime
    invoice = invoice_for(parse_payment(payment_event(shop, "pay_crash")), 1)
    await runtime.repository.insert(invoice, 1)
    assert not (await runtime.db["invoices"].find_one({"_id": invoice.invoice_id}) or {}).get(
        "pdf_ready"
    )
    runtime.issuing.wake()
    await eventually(lambda: _count(replicas[0], {"pdf_ready": True}, 1), within=30)
    pdf = await stub_of(replicas[1]).GetInvoicePdf(
        invoicing_pb2.GetInvoicePdfRequest(
            business_id=shop.business_id,
            mode=common_pb2.MODE_TEST,
            customer_id=shop.it_customer,
            invoice_id=invoice.invoice_id,
        )
    )
    assert pdf.content.startswith(b"%PDF")
    assert len(await created_events(replicas[0])) == 1


async def test_the_pdf_speaks_the_customers_language_and_never_changes(
    replicas: list[RunningService[InvoicingRuntime]], shop: Shop, publisher: EventPublisher
) -> None:
    await publisher.publish(payment_event(shop, "pay_it", customer_id=shop.it_customer))
    await publisher.publish(payment_event(shop, "pay_en", customer_id=shop.en_customer, amount=999))
    await eventually(lambda: _count(replicas[0], {"pdf_ready": True}, 2), within=30)
    stub = stub_of(replicas[0])
    request = invoicing_pb2.GetInvoicePdfRequest(
        business_id=shop.business_id,
        mode=common_pb2.MODE_TEST,
        customer_id=shop.it_customer,
        payment_id="pay_it",
    )
    first, again = (
        await stub.GetInvoicePdf(request),
        await stub_of(replicas[1]).GetInvoicePdf(request),
    )
    assert first.content == again.content
    text = PdfReader(io.BytesIO(first.content)).pages[0].extract_text()
    for expected in (
        "Pizzeria da Mario",
        "Ada Lovelace",
        first.invoice.number,
        "356,20 €",
        "Fattura",
        "IT01234567890",
    ):
        assert expected in text
    assert (first.invoice.locale, first.invoice.buyer_name, first.invoice.seller_name) == (
        "it",
        "Ada Lovelace",
        "Pizzeria da Mario",
    )
    assert first.invoice.pdf_filename == f"invoice-{first.invoice.number}.pdf"
    english = await stub.GetInvoicePdf(
        invoicing_pb2.GetInvoicePdfRequest(
            business_id=shop.business_id, mode=common_pb2.MODE_TEST, payment_id="pay_en"
        )
    )
    english_text = PdfReader(io.BytesIO(english.content)).pages[0].extract_text()
    assert "€9.99" in english_text and "Grace Hopper" in english_text

    # Another customer asking for Ada's invoice: simply not found.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetInvoicePdf(
            invoicing_pb2.GetInvoicePdfRequest(
                business_id=shop.business_id,
                mode=common_pb2.MODE_TEST,
                customer_id=shop.en_customer,
                payment_id="pay_it",
            )
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    error = domain_error_from(err.value)
    assert error is not None and error.reason is Reason.INVOICE_NOT_FOUND


async def test_lists_by_customer_across_businesses_and_by_payment(
    replicas: list[RunningService[InvoicingRuntime]], shop: Shop, publisher: EventPublisher
) -> None:
    for n in range(3):
        await publisher.publish(payment_event(shop, f"pay_l{n}", customer_id=shop.it_customer))
    await publisher.publish(payment_event(shop, "pay_other", customer_id=shop.en_customer))
    await eventually(lambda: _count(replicas[0], {"pdf_ready": True}, 4), within=30)
    stub = stub_of(replicas[0])
    unified = await stub.ListInvoices(
        invoicing_pb2.ListInvoicesRequest(
            mode=common_pb2.MODE_TEST, customer_ids=[shop.it_customer, "cus_elsewhere"]
        )
    )
    assert sorted(i.payment_id for i in unified.invoices) == ["pay_l0", "pay_l1", "pay_l2"]
    issued = [i.issued_at.ToDatetime() for i in unified.invoices]
    assert issued == sorted(issued, reverse=True)
    only = await stub.ListInvoices(
        invoicing_pb2.ListInvoicesRequest(
            business_id=shop.business_id,
            mode=common_pb2.MODE_TEST,
            customer_id=shop.it_customer,
            payment_ids=["pay_l1", "pay_other"],
        )
    )
    assert [i.payment_id for i in only.invoices] == ["pay_l1"]
    assert only.invoices[0].lines[0].description == "Pro plan"
    assert only.invoices[0].payment_method_last4 == "4242"


async def test_a_bad_payload_is_refused_and_writes_nothing(
    replicas: list[RunningService[InvoicingRuntime]],
    shop: Shop,
    publisher: EventPublisher,
    ns: BrokerNamespace,
) -> None:
    bad = payment_event(shop, "pay_bad", currency="euro")
    await publisher.publish(bad)
    dead = await eventually(
        lambda: take_queue_messages(ns.amqp_url, ns.dead_letter_queue("invoicing", ISSUE_PURPOSE)),
        within=30,
        message="the bad event dead-lettered",
    )
    assert [m.message_id for m in dead] == [bad.id]
    db = replicas[0].runtime.db
    assert await db["invoices"].count_documents({}) == 0
    assert await db["processed_events"].count_documents({}) == 0
    assert await db["invoice_counters"].count_documents({"seq": {"$gt": 0}}) == 0
    # The next good payment still gets number 1: the refusal used no number.
    await publisher.publish(payment_event(shop, "pay_good"))
    await eventually(lambda: _count(replicas[0], {"pdf_ready": True}, 1), within=30)
    doc = await db["invoices"].find_one(
        {"_id": invoice_id_of(shop.business_id, "test", "pay_good")}
    )
    assert doc is not None and doc["number"] == "INV-000001"


async def test_auth_down_defers_the_pdf_without_losing_or_dead_lettering_the_payment(
    mongo_url: str,
    ns: BrokerNamespace,
    auth: RunningService[Any],
    shop: Shop,
    publisher: EventPublisher,
) -> None:
    """Auth unreachable for longer than every delivery's retries: numbered now, PDF later."""
    host, port = auth.grpc_target.rsplit(":", 1)
    async with TcpProxy(free_port(), host, int(port)) as proxy:
        await proxy.cut()
        async with running_service(
            create_app,
            InvoicingSettings,
            mongo_url=mongo_url,
            broker=ns,
            auth_target=f"127.0.0.1:{proxy.listen_port}",
            consumer_delivery_limit=DELIVERY_LIMIT,
            sweep_seconds=0.5,
            finish_retry_seconds=0.5,
            auth_retry_seconds=0.5,
        ) as invoicing:
            await publisher.publish(payment_event(shop, "pay_auth_down"))
            db = invoicing.runtime.db
            await eventually(lambda: _count(invoicing, {}, 1), within=30, message="numbered")
            # Longer than DELIVERY_LIMIT deliveries with their pauses would take.
            await asyncio.sleep(4)
            doc = await db["invoices"].find_one({})
            assert doc is not None and doc["number"] == "INV-000001" and not doc["pdf_ready"]
            dead = await take_queue_messages(
                ns.amqp_url, ns.dead_letter_queue("invoicing", ISSUE_PURPOSE), wait_seconds=0.2
            )
            assert dead == []
            assert await created_events(invoicing) == []

            await proxy.restore()
            await eventually(lambda: _count(invoicing, {"pdf_ready": True}, 1), within=30)
            pdf = await stub_of(invoicing).GetInvoicePdf(
                invoicing_pb2.GetInvoicePdfRequest(
                    business_id=shop.business_id,
                    mode=common_pb2.MODE_TEST,
                    payment_id="pay_auth_down",
                )
            )
            text = PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
            assert "Pizzeria da Mario" in text and "Ada Lovelace" in text
            assert len(await created_events(invoicing)) == 1


async def test_a_two_line_checkout_payment_gives_a_two_line_invoice_with_the_billing_address(
    replicas: list[RunningService[InvoicingRuntime]], shop: Shop, publisher: EventPublisher
) -> None:
    lines = [
        {"product_id": "pdt_a", "product_name": "Pro plan", "quantity": 1, "unit_amount": 29900},
        {"product_id": "pdt_b", "product_name": "Extra seat", "quantity": 3, "unit_amount": 1900},
    ]
    billing = {
        "country": "IT",
        "city": "Torino",
        "state": None,
        "street": "Corso Francia 12",
        "zipcode": "10138",
    }
    await publisher.publish(
        payment_event(
            shop,
            "pay_cart",
            amount=35600,
            description="Checkout cks_0123",
            lines=lines,
            billing=billing,
            tax_id="IT98765432109",
        )
    )
    await eventually(lambda: _count(replicas[0], {"pdf_ready": True}, 1), within=30)

    reply = await stub_of(replicas[0]).GetInvoicePdf(
        invoicing_pb2.GetInvoicePdfRequest(
            business_id=shop.business_id,
            mode=common_pb2.MODE_TEST,
            customer_id=shop.it_customer,
            payment_id="pay_cart",
        )
    )
    invoice = reply.invoice
    assert [(x.description, x.quantity, x.unit_amount, x.amount) for x in invoice.lines] == [
        ("Pro plan", 1, 29900, 29900),
        ("Extra seat", 3, 1900, 5700),
    ]
    assert (invoice.subtotal, invoice.tax, invoice.total) == (35600, 0, 35600)
    text = PdfReader(io.BytesIO(reply.content)).pages[0].extract_text()
    for expected in (
        "Pro plan",
        "Extra seat",
        "Corso Francia 12",
        "10138 Torino",
        "Italia",  # the country, in the customer's language
        "IT98765432109",
        "57,00 €",
    ):
        assert expected in text, expected
    assert "Checkout cks_0123" not in text
