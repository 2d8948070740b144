"""SendEmail over gRPC against the real runtime, SecantusDB and an aiosmtpd sink."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from typing import Any

import grpc
import pytest
import pytest_asyncio
from aiosmtpd.controller import Controller
from billing.common.v1 import common_pb2
from billing.notifications.v1 import email_pb2, email_pb2_grpc
from billing_kit.logging import JsonFormatter
from billing_kit.testing import (
    RunningService,
    TcpProxy,
    broker_namespace,
    free_port,
    running_service,
)
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from notifications.app import NotificationsRuntime, create_app
from notifications.config import NotificationsSettings
from notifications.consumers import CUSTOMER_DIRECTORY

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
        broker_namespace(amqp_url, known_consumers=[("notifications", CUSTOMER_DIRECTORY)]) as ns,
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
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason_of(caught.value) == "EMAIL_RECIPIENT_REJECTED"
    record = await runtime.db["emails"].find_one({"to": REFUSED})
    assert record is not None
    assert (record["status"], record["error"]) == ("failed", "recipient_rejected")


async def test_log_lines_are_json_without_addresses(log_output: io.StringIO) -> None:
    # Guards the fixture the other tests rely on: it must see real, formatted lines.
    logging.getLogger("notifications.email.service").info("probe ada@example.com")
    [line] = log_output.getvalue().splitlines()
    assert json.loads(line)["message"] == "probe a***@example.com"
