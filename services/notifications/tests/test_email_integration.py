"""SendEmail over gRPC against the real runtime, SecantusDB and an aiosmtpd sink."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from typing import Any

import aio_pika
import grpc
import pytest
import pytest_asyncio
from aiosmtpd.controller import Controller
from billing.common.v1 import common_pb2
from billing.notifications.v1 import email_pb2, email_pb2_grpc
from billing_kit.broker import EventPublisher
from billing_kit.consumer import PROCESSED_EVENTS_COLLECTION
from billing_kit.events import encode_event, new_event
from billing_kit.logging import JsonFormatter
from billing_kit.mongo import ensure_indexes, run_in_transaction
from billing_kit.sealing import DEVELOPMENT_SEALING_KEY, Sealer, new_sealing_key
from billing_kit.testing import (
    RunningService,
    TcpProxy,
    broker_namespace,
    eventually,
    free_port,
    running_service,
)
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from notifications import dead_letters
from notifications.app import NotificationsRuntime, create_app
from notifications.config import NotificationsSettings
from notifications.consumers import BILLING_EMAILS, CUSTOMER_DIRECTORY, EMAIL_REQUESTS
from notifications.email.delivery import EmailDelivery, ExponentialBackoff, InvalidEmailRequest
from notifications.email.models import EMAIL_REQUESTED, EmailRequestedData
from notifications.email.rendering import EmailRenderer
from notifications.email.repository import EMAIL_INDEXES, EMAILS, EmailLogRepository
from notifications.email.smtp import SmtpConfig, SmtpSender

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

TOKEN = "cpt_0123456789abcdefSECRET"
LINK = f"https://portal.example.com/login/bus_1/confirm?token={TOKEN}"
FROM_ADDRESS = "no-reply@portal.example.com"
REFUSED = "bounce@example.com"


@dataclass
class Sink:
    """An aiosmtpd handler that keeps what it receives (it runs in the controller's thread)."""

    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if address == REFUSED:
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = message_from_bytes(envelope.original_content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]


@pytest.fixture(scope="module")
def sink() -> Iterator[tuple[Sink, int]]:
    handler = Sink()
    # The sink is the test's stand-in relay; its protocol chatter is not our service's log.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield handler, controller.port
    finally:
        controller.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def smtp_proxy(sink: tuple[Sink, int]) -> AsyncIterator[TcpProxy]:
    """Between the service and the sink, so a test can take the relay down."""
    async with TcpProxy(free_port(), "127.0.0.1", sink[1]) as proxy:
        yield proxy


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def email_service(
    mongo_url: str, amqp_url: str, smtp_proxy: TcpProxy
) -> AsyncIterator[RunningService[NotificationsRuntime]]:
    async with (
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
            smtp_port=smtp_proxy.listen_port,
            smtp_timeout_seconds=2,
            mail_from=f"Customer Portal <{FROM_ADDRESS}>",
        ) as service,
    ):
        yield service


@pytest.fixture(scope="module")
def runtime(email_service: RunningService[NotificationsRuntime]) -> NotificationsRuntime:
    return email_service.runtime


@pytest.fixture
def stub(email_service: RunningService[NotificationsRuntime]) -> email_pb2_grpc.EmailServiceStub:
    return email_pb2_grpc.EmailServiceStub(email_service.channel)


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    """Every log line the process writes during the test, formatted as in production."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonFormatter("notifications"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield buffer
    finally:
        root.removeHandler(handler)


def sign_in_request(to: str, **overrides: Any) -> email_pb2.SendEmailRequest:
    fields: dict[str, Any] = {
        "template": email_pb2.EMAIL_TEMPLATE_SIGN_IN_LINK,
        "to": to,
        "locale": "it",
        "business_id": "bus_1",
        "mode": common_pb2.MODE_LIVE,
        "branding": email_pb2.EmailBranding(
            business_name="Acme Studio",
            logo_url="https://cdn.example.com/acme.png",
            primary_color="#0a7b83",
            support_email="help@acme.example.com",
        ),
        "link": LINK,
        "link_expires_minutes": 15,
        "customer_name": "Ada",
    }
    fields.update(overrides)
    return email_pb2.SendEmailRequest(**fields)


def reason_of(exc: grpc.aio.AioRpcError) -> str | None:
    status = rpc_status.from_call(exc)  # type: ignore[arg-type]
    for detail in status.details if status else []:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return info.reason
    return None


async def all_documents(runtime: NotificationsRuntime) -> str:
    """Everything the service stored, as one string to search."""
    dumped = []
    for name in await runtime.db.list_collection_names():
        dumped += [repr(doc) async for doc in runtime.db[name].find({})]
    return "\n".join(dumped)


async def test_sends_a_branded_multipart_email(
    runtime: NotificationsRuntime,
    stub: email_pb2_grpc.EmailServiceStub,
    sink: tuple[Sink, int],
    log_output: io.StringIO,
) -> None:
    to = "ada.lovelace@example.com"
    reply = await stub.SendEmail(sign_in_request(to), timeout=10)

    [message] = sink[0].to(to)
    assert message["Subject"] == "Il tuo link di accesso a Acme Studio"
    assert message["From"] == f"Acme Studio <{FROM_ADDRESS}>"
    assert message["Reply-To"] == "help@acme.example.com"
    assert message["Message-ID"] == f"<{reply.email_id}@portal.example.com>"
    assert message["Content-Language"] == "it"
    sent_date = parsedate_to_datetime(message["Date"])
    assert (
        abs((sent_date - reply.sent_at.ToDatetime().astimezone(sent_date.tzinfo)).total_seconds())
        < 5
    )
    assert sink[0].envelopes[-1] == (FROM_ADDRESS, [to])

    assert message.get_content_type() == "multipart/alternative"
    text_part = message.get_body(preferencelist=("plain",))
    html_part = message.get_body(preferencelist=("html",))
    assert text_part is not None and html_part is not None
    text, html = text_part.get_content(), html_part.get_content()
    for body in (text, html):
        assert LINK in body
        assert "Il link scade tra 15 minuti" in body
        assert "Accedi al portale" in body
    assert "border-top:4px solid #0A7B83" in html

    # The log record: who, what, when; never the link or the body.
    record = await runtime.db["emails"].find_one({"_id": reply.email_id})
    assert record is not None
    assert (record["status"], record["to"], record["template"], record["locale"]) == (
        "sent",
        to,
        "sign_in_link",
        "it",
    )
    assert record["business_id"] == "bus_1" and record["mode"] == "live"
    stored = await all_documents(runtime)
    assert TOKEN not in stored and "portal.example.com/login" not in stored
    assert "Accedi al portale" not in stored

    logs = log_output.getvalue()
    assert reply.email_id in logs  # the test looks at the real log output
    assert TOKEN not in logs and to not in logs


async def test_same_idempotency_key_sends_once(
    runtime: NotificationsRuntime, stub: email_pb2_grpc.EmailServiceStub, sink: tuple[Sink, int]
) -> None:
    to = "grace@example.com"
    request = sign_in_request(to, idempotency_key="login-attempt-42")
    first = await stub.SendEmail(request, timeout=10)
    again = await stub.SendEmail(request, timeout=10)
    concurrent = await asyncio.gather(*(stub.SendEmail(request, timeout=10) for _ in range(3)))

    assert again == first
    assert all(reply == first for reply in concurrent)
    assert len(sink[0].to(to)) == 1
    assert await runtime.db["emails"].count_documents({"to": to}) == 1

    # The same key for another email is a caller bug, not a silent success.
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.SendEmail(
            sign_in_request("someone.else@example.com", idempotency_key="login-attempt-42"),
            timeout=10,
        )
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason_of(caught.value) == "IDEMPOTENCY_KEY_REUSED"

    # Keys are scoped to the business: another business may use the same one.
    other = await stub.SendEmail(
        sign_in_request(to, business_id="bus_2", idempotency_key="login-attempt-42"), timeout=10
    )
    assert other.email_id != first.email_id
    assert len(sink[0].to(to)) == 2


async def test_concurrent_first_sends_with_one_key_send_one_email(
    stub: email_pb2_grpc.EmailServiceStub, sink: tuple[Sink, int]
) -> None:
    to = "double.click@example.com"
    request = sign_in_request(to, idempotency_key="double-click")
    outcomes = await asyncio.gather(
        *(stub.SendEmail(request, timeout=10) for _ in range(4)), return_exceptions=True
    )
    replies = [o for o in outcomes if isinstance(o, email_pb2.SendEmailResponse)]
    errors = [o for o in outcomes if not isinstance(o, email_pb2.SendEmailResponse)]
    assert replies and len({r.email_id for r in replies}) == 1
    # A call that lost the race while the winner was still talking to the relay is told
    # to retry; the retry then gets the winner's answer.
    for error in errors:
        assert isinstance(error, grpc.aio.AioRpcError)
        assert error.code() == grpc.StatusCode.UNAVAILABLE
        assert reason_of(error) == "EMAIL_SEND_IN_PROGRESS"
    assert await stub.SendEmail(request, timeout=10) == replies[0]
    assert len(sink[0].to(to)) == 1


async def test_no_account_email_has_no_link(
    stub: email_pb2_grpc.EmailServiceStub, sink: tuple[Sink, int]
) -> None:
    to = "stranger@example.com"
    await stub.SendEmail(
        sign_in_request(
            to,
            template=email_pb2.EMAIL_TEMPLATE_NO_ACCOUNT_FOUND,
            link="",
            link_expires_minutes=0,
            locale="en",
        ),
        timeout=10,
    )
    [message] = sink[0].to(to)
    assert message["Subject"] == "Sign-in request for Acme Studio"
    text = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert "we found no purchases at Acme Studio" in text
    assert "the email address you used at purchase" in text
    assert "https://" not in text


async def test_bad_input_is_refused_and_writes_nothing(
    runtime: NotificationsRuntime,
    stub: email_pb2_grpc.EmailServiceStub,
    sink: tuple[Sink, int],
    log_output: io.StringIO,
) -> None:
    to = "mallory@example.com"
    bad_requests = [
        sign_in_request(to, template=email_pb2.EMAIL_TEMPLATE_UNSPECIFIED),
        sign_in_request("not-an-address"),
        sign_in_request(to, link=f"javascript:alert('{TOKEN}')"),
        sign_in_request(to, link=""),
        sign_in_request(to, mode=common_pb2.MODE_UNSPECIFIED),
        sign_in_request(
            to, branding=email_pb2.EmailBranding(business_name="Acme", primary_color="red")
        ),
        sign_in_request(to, template=email_pb2.EMAIL_TEMPLATE_NO_ACCOUNT_FOUND),
    ]
    for request in bad_requests:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.SendEmail(request, timeout=10)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert TOKEN not in (caught.value.details() or "")
    assert sink[0].to(to) == []
    assert await runtime.db["emails"].count_documents({"to": to}) == 0
    assert TOKEN not in log_output.getvalue()


async def test_relay_down_is_unavailable_and_a_retry_sends(
    runtime: NotificationsRuntime,
    stub: email_pb2_grpc.EmailServiceStub,
    sink: tuple[Sink, int],
    smtp_proxy: TcpProxy,
) -> None:
    to = "retry@example.com"
    request = sign_in_request(to, idempotency_key="retry-1")
    await smtp_proxy.cut()
    try:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.SendEmail(request, timeout=10)
    finally:
        await smtp_proxy.restore()
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert reason_of(caught.value) == "SMTP_UNAVAILABLE"
    failed = await runtime.db["emails"].find_one({"to": to})
    assert failed is not None and failed["status"] == "failed"

    reply = await stub.SendEmail(request, timeout=10)
    assert reply.email_id == failed["_id"]
    assert len(sink[0].to(to)) == 1
    record = await runtime.db["emails"].find_one({"_id": reply.email_id})
    assert record is not None and (record["status"], record["attempts"]) == ("sent", 2)


async def test_refused_recipient_is_a_failed_precondition(
    runtime: NotificationsRuntime, stub: email_pb2_grpc.EmailServiceStub
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.SendEmail(sign_in_request(REFUSED), timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert reason_of(caught.value) == "EMAIL_RECIPIENT_REJECTED"
    record = await runtime.db["emails"].find_one({"to": REFUSED})
    assert record is not None
    assert (record["status"], record["error"]) == ("failed", "recipient_rejected")


async def test_log_lines_are_json_without_addresses(log_output: io.StringIO) -> None:
    # Guards the fixture the other tests rely on: it must see real, formatted lines.
    logging.getLogger("notifications.email.service").info("probe ada@example.com")
    [line] = log_output.getvalue().splitlines()
    assert json.loads(line)["message"] == "probe a***@example.com"


# --- queued emails (email.requested): durable, once per key, lease, dead letters -----------


def requested_data(to: str, key: str, sealer: Sealer, **overrides: Any) -> dict[str, Any]:
    """The data auth writes into email.requested (the link sealed)."""
    data: dict[str, Any] = {
        "email_key": key,
        "template": "sign_in_link",
        "to": to,
        "locale": "en",
        "business_id": "bus_1",
        "mode": "live",
        "business_name": "Acme Studio",
        "logo_url": "",
        "primary_color": "",
        "support_email": "",
        "sealed_link": sealer.seal(LINK),
        "link_expires_minutes": 15,
        "customer_name": "Ada",
    }
    data.update(overrides)
    return data


async def test_a_requested_email_published_twice_is_sent_once_and_its_outcome_told(
    runtime: NotificationsRuntime,
    stub: email_pb2_grpc.EmailServiceStub,
    sink: tuple[Sink, int],
    amqp_url: str,
) -> None:
    to = "queued-once@example.com"
    sealer = Sealer(DEVELOPMENT_SEALING_KEY)
    data = EmailRequestedData.model_validate(requested_data(to, "ptk_once", sealer))
    # Two deliveries of the same request (a relay's retry publishes a new event id).
    events = [new_event(EMAIL_REQUESTED, "auth", data, subject="ptk_once") for _ in range(2)]
    publisher = EventPublisher(amqp_url, runtime.settings.events_exchange, service="auth")
    try:
        for event in events:
            await publisher.publish(event)
    finally:
        await publisher.close()
    outcome = await stub.GetEmailOutcome(
        email_pb2.GetEmailOutcomeRequest(
            business_id="bus_1",
            mode=common_pb2.MODE_LIVE,
            idempotency_key="ptk_once",
            wait_ms=8000,
        ),
        timeout=10,
    )
    assert outcome.outcome == email_pb2.EMAIL_OUTCOME_SENT
    assert await eventually(lambda: len(sink[0].to(to)) >= 1, within=10)
    [message] = sink[0].to(to)
    assert LINK in message.get_body(("plain",)).get_content()  # type: ignore[union-attr]

    async def both_requests_handled() -> bool:
        handled = runtime.db[PROCESSED_EVENTS_COLLECTION].count_documents(
            {"event_id": {"$in": [event.id for event in events]}}
        )
        return await handled == len(events)

    # Instead of sleeping: once both deliveries are committed, the second one
    # queued nothing more, so the one sent email is all there will ever be.
    await eventually(both_requests_handled, within=10, message="second request not handled")
    emails = runtime.db[EMAILS].find({"business_id": "bus_1", "idempotency_key": "ptk_once"})
    assert [email["status"] async for email in emails] == ["sent"]
    assert len(sink[0].to(to)) == 1
    # Neither the link nor its ciphertext stays in the service's database.
    stored = await all_documents(runtime)
    assert TOKEN not in stored and data.sealed_link not in stored


@dataclass
class Clock:
    """An injected clock the test moves."""

    now: datetime = field(default_factory=lambda: datetime(2026, 3, 1, 12, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Harness:
    delivery: EmailDelivery
    repository: EmailLogRepository
    clock: Clock
    runtime: NotificationsRuntime
    sealer: Sealer

    async def enqueue(self, to: str, key: str) -> None:
        data = EmailRequestedData.model_validate(requested_data(to, key, self.sealer))
        await run_in_transaction(self.runtime.client, lambda s: self.delivery.enqueue(data, s))

    async def status(self, key: str) -> str | None:
        return await self.repository.find_status("bus_1", "live", key)


@pytest_asyncio.fixture(loop_scope="session")
async def harness(runtime: NotificationsRuntime, smtp_proxy: TcpProxy) -> Harness:
    """The delivery use case on a database of its own (the runtime's workers never see it),
    driven step by step with an injected clock: no sleeping, no timing."""
    db = runtime.client[f"delivery_{free_port()}"]
    await ensure_indexes(db, EMAIL_INDEXES)
    repository = EmailLogRepository(db)
    sender = SmtpSender(
        SmtpConfig(
            host="127.0.0.1",
            port=smtp_proxy.listen_port,
            mail_from=f"Customer Portal <{FROM_ADDRESS}>",
            timeout_seconds=2,
        )
    )
    sealer = Sealer(new_sealing_key())
    clock = Clock()
    delivery = EmailDelivery(
        repository,
        EmailRenderer(default_sender_name="Customer Portal"),
        sender,
        sealer,
        clock=clock,
        backoff=ExponentialBackoff(1, 8),
        max_attempts=3,
        lease_seconds=30,
    )
    return Harness(delivery, repository, clock, runtime, sealer)


async def test_an_attempt_left_in_sending_by_a_killed_process_is_taken_up_after_its_lease(
    harness: Harness, sink: tuple[Sink, int]
) -> None:
    to = "lease@example.com"
    await harness.enqueue(to, "ptk_lease")
    # A process claims it and dies before the relay answered.
    now = harness.clock()
    claimed = await harness.repository.claim_due(now=now, lease_until=now + timedelta(seconds=30))
    assert claimed is not None and await harness.status("ptk_lease") == "sending"

    assert await harness.delivery.deliver_due() == 0  # still leased: nobody else sends it
    harness.clock.advance(31)
    assert await harness.delivery.deliver_due() == 1
    assert await harness.status("ptk_lease") == "sent"
    assert len(sink[0].to(to)) == 1
    assert await harness.delivery.deliver_due() == 0


async def test_relay_down_retries_with_backoff_then_dead_letters_and_a_replay_sends_once(
    harness: Harness, sink: tuple[Sink, int], smtp_proxy: TcpProxy
) -> None:
    to = "dead-letter@example.com"
    await harness.enqueue(to, "ptk_dead")
    await smtp_proxy.cut()
    try:
        assert await harness.delivery.deliver_due() == 1  # attempt 1 fails
        assert await harness.status("ptk_dead") == "queued"
        # The first attempt's outcome is known: retrying, so "pending" (no need to wait on).
        assert await harness.delivery.wait_for_outcome(
            "bus_1", "live", "ptk_dead", wait_seconds=30
        ) == ("pending", "queued")
        assert await harness.delivery.deliver_due() == 0  # not due before its backoff
        for _ in range(2):  # attempts 2 and 3
            harness.clock.advance(60)
            assert await harness.delivery.deliver_due() == 1
    finally:
        await smtp_proxy.restore()
    assert await harness.status("ptk_dead") == "dead"
    [dead] = [r for r in await harness.repository.list_dead() if r.idempotency_key == "ptk_dead"]
    assert (dead.attempts, dead.error) == (3, "smtp_unavailable")
    harness.clock.advance(60)
    assert await harness.delivery.deliver_due() == 0  # dead letters wait for an operator

    assert await harness.repository.replay_dead([dead.email_id], now=harness.clock()) == 1
    assert await harness.delivery.deliver_due() == 1
    assert await harness.status("ptk_dead") == "sent"
    assert len(sink[0].to(to)) == 1


async def test_a_recipient_refused_for_good_is_rejected_once_and_never_retried(
    harness: Harness, sink: tuple[Sink, int]
) -> None:
    await harness.enqueue(REFUSED, "ptk_refused")
    assert await harness.delivery.deliver_due() == 1
    outcome = await harness.delivery.wait_for_outcome(
        "bus_1", "live", "ptk_refused", wait_seconds=0
    )
    assert outcome == ("rejected", "rejected")
    harness.clock.advance(3600)
    assert await harness.delivery.deliver_due() == 0
    record = await harness.repository.find_by_idempotency_key("bus_1", "live", "ptk_refused")
    assert record is not None and record.queued is None  # the sealed link is gone too


async def test_a_request_our_keys_cannot_open_is_refused_by_the_consumer(
    harness: Harness,
) -> None:
    foreign = Sealer(new_sealing_key())
    data = EmailRequestedData.model_validate(requested_data("x@example.com", "ptk_x", foreign))
    with pytest.raises(InvalidEmailRequest, match="sealed_link"):
        await run_in_transaction(
            harness.runtime.client, lambda s: harness.delivery.enqueue(data, s)
        )
    assert await harness.status("ptk_x") is None


async def test_operators_list_and_replay_dead_emails(
    harness: Harness, smtp_proxy: TcpProxy, runtime: NotificationsRuntime
) -> None:
    await harness.enqueue("operator@example.com", "ptk_operator")
    await smtp_proxy.cut()
    try:
        for _ in range(3):
            await harness.delivery.deliver_due()
            harness.clock.advance(60)
    finally:
        await smtp_proxy.restore()
    settings = runtime.settings.model_copy(
        update={"mongodb_database": harness.repository._emails.database.name}
    )
    listed = io.StringIO()
    assert await dead_letters.run(["list"], settings, listed) == 0
    [line] = [row for row in listed.getvalue().splitlines() if "sign_in_link" in row]
    email_id = line.split("\t")[0]
    assert "operator@example.com" not in listed.getvalue()  # never the address

    assert await dead_letters.run(["replay", email_id], settings, io.StringIO()) == 0
    assert await harness.status("ptk_operator") == "queued"
    assert await dead_letters.run(["replay", email_id], settings, io.StringIO()) == 1


async def test_operators_replay_the_broker_dead_letter_queue(
    runtime: NotificationsRuntime, sink: tuple[Sink, int], amqp_url: str
) -> None:
    """A request the consumer dead-lettered goes back to the exchange and is sent once."""
    to = "from-the-dlq@example.com"
    data = EmailRequestedData.model_validate(
        requested_data(to, "ptk_dlq", Sealer(DEVELOPMENT_SEALING_KEY))
    )
    event = new_event(EMAIL_REQUESTED, "auth", data, subject="ptk_dlq")
    settings = runtime.settings
    queue = f"{settings.queue_prefix}notifications.{EMAIL_REQUESTS}"
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        dlx = await channel.get_exchange(f"{settings.events_exchange}.dlx")
        await dlx.publish(
            aio_pika.Message(body=encode_event(event), message_id=event.id, type=event.type),
            routing_key=queue,
        )
    out = io.StringIO()
    # The publish was confirmed, so the message sits in the DLQ now.
    assert await dead_letters.run(["replay-queue"], settings, out) == 0
    assert "republished 1 " in out.getvalue()
    assert await eventually(lambda: len(sink[0].to(to)) == 1, within=10)
