"""The hosted payment page over HTTP: saving, paying, inline errors, CSRF, locale, single use."""

from __future__ import annotations

import functools
import logging
from datetime import UTC, datetime
from typing import Any

import aiohttp
import grpc
import pytest
from billing.common.v1 import common_pb2
from billing.payments.v1 import payments_pb2, payments_pb2_grpc
from billing_kit.clock import FrozenClock
from billing_kit.grpc_client import domain_error_from
from billing_kit.testing import RunningService, running_service
from payments.app import PaymentsRuntime, create_app
from payments.config import PaymentsSettings

from .conftest import CSRF, PageClient

pytestmark = pytest.mark.integration

OK_CARD = "4242424242424242"
SCOPE: dict[str, Any] = {"business_id": "bus_1", "mode": common_pb2.MODE_TEST}


async def _every_document(service: RunningService[PaymentsRuntime]) -> str:
    dump = []
    for name in await service.runtime.db.list_collection_names():
        dump.extend([repr(doc) async for doc in service.runtime.db[name].find({})])
    return "\n".join(dump)


async def test_saving_a_card_returns_its_id_and_stores_no_card_number(
    service: RunningService[PaymentsRuntime],
    stub: payments_pb2_grpc.PaymentsServiceStub,
    page: PageClient,
) -> None:
    created = await page.session()
    form = await page.get(created.url)
    assert form.status == 200
    for autocomplete in ("cc-name", "cc-number", "cc-exp", "cc-csc"):
        assert f'autocomplete="{autocomplete}"' in form.text

    reply = await page.submit_card(created.url, "4242 4242 4242 4242", cvc="987")

    assert reply.status == 303
    query = reply.query()
    assert reply.location.startswith("https://shop.example/back?from=portal&")
    assert (query["payment_session_id"], query["status"]) == (created.session_id, "succeeded")
    listed = await stub.ListPaymentMethods(
        payments_pb2.ListPaymentMethodsRequest(**SCOPE, customer_id="cus_1")
    )
    (method,) = listed.payment_methods
    assert method.payment_method_id == query["payment_method_id"]
    assert (method.brand, method.last4, method.expiry_month, method.expiry_year) == (
        "visa",
        "4242",
        12,
        2034,
    )
    assert method.card_holder_name == "Ada Lovelace"
    stored = await _every_document(service)
    assert "4242424242424242" not in stored and "4242 4242 4242 4242" not in stored
    session = await stub.GetPaymentSession(
        payments_pb2.GetPaymentSessionRequest(**SCOPE, session_id=created.session_id)
    )
    assert session.status == payments_pb2.PAYMENT_SESSION_STATUS_SUCCEEDED


async def test_a_session_is_single_use(page: PageClient) -> None:
    created = await page.session()
    first = await page.get(created.url)
    token = CSRF.search(first.text)
    assert token is not None
    form = {"csrf_token": token.group(1), "cc-number": OK_CARD, "cc-exp": "12/34", "cc-csc": "123"}
    assert (await page.post(created.url, form)).status == 303
    again = await page.post(created.url, form)
    assert again.status == 409
    assert "already used" in again.text


async def test_bad_fields_get_messages_next_to_them_and_the_number_is_not_echoed(
    stub: payments_pb2_grpc.PaymentsServiceStub, page: PageClient
) -> None:
    created = await page.session()
    reply = await page.submit_card(created.url, "4242 4242 4242 4241", expiry="01/20", cvc="12")
    assert reply.status == 422
    assert 'id="cc-number-error">This card number is not valid.<' in reply.text
    assert 'id="cc-exp-error">This card has expired.<' in reply.text
    assert 'id="cc-csc-error">The security code is 3 digits' in reply.text
    assert "4241" not in reply.text
    listed = await stub.ListPaymentMethods(
        payments_pb2.ListPaymentMethodsRequest(**SCOPE, customer_id="cus_1")
    )
    assert list(listed.payment_methods) == []


async def test_a_declined_card_is_refused_on_the_page_and_the_session_stays_open(
    page: PageClient,
) -> None:
    created = await page.session()
    refused = await page.submit_card(created.url, "4000000000000002")
    assert refused.status == 402
    assert "Your card was declined." in refused.text
    assert (await page.submit_card(created.url, OK_CARD)).status == 303


async def test_italian_from_accept_language_or_the_session(page: PageClient) -> None:
    by_header = await page.session()
    reply = await page.get(by_header.url, **{"Accept-Language": "it-IT,it;q=0.9,en;q=0.5"})
    assert "Numero della carta" in reply.text and 'lang="it"' in reply.text
    by_session = await page.session(locale="it")
    errors = await page.submit_card(by_session.url, "1234", **{"Accept-Language": "en"})
    assert "Questo numero di carta non è valido." in errors.text


async def test_a_form_without_its_csrf_token_saves_nothing(
    stub: payments_pb2_grpc.PaymentsServiceStub, page: PageClient
) -> None:
    created = await page.session()
    reply = await page.post(
        created.url,
        {"csrf_token": "0" * 64, "cc-number": OK_CARD, "cc-exp": "12/34", "cc-csc": "123"},
    )
    assert reply.status == 403
    listed = await stub.ListPaymentMethods(
        payments_pb2.ListPaymentMethodsRequest(**SCOPE, customer_id="cus_1")
    )
    assert list(listed.payment_methods) == []


async def test_pages_send_a_strict_csp_and_branding(page: PageClient) -> None:
    created = await page.session(
        branding=payments_pb2.Branding(business_name="Acme Books", accent_color="#0a7d5a")
    )
    async with page.http.get(created.url) as response:
        text = await response.text()
        csp = response.headers["Content-Security-Policy"]
        assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "unsafe-inline" not in csp and "script-src" not in csp
    assert "form-action 'self' https://shop.example" in csp
    assert "Acme Books" in text and "/brand/0A7D5A.css" in text
    assert "<script" not in text and "style=" not in text


async def test_pay_with_a_challenge_card_shows_the_challenge_then_returns_with_the_payment(
    stub: payments_pb2_grpc.PaymentsServiceStub, page: PageClient
) -> None:
    created = await page.session(
        purpose=payments_pb2.PAYMENT_SESSION_PURPOSE_PAY,
        amount=1250,
        currency="EUR",
        idempotency_key="reactivate:sub_1:1",
        charge_type=payments_pb2.CHARGE_TYPE_ON_DEMAND,
        subscription_id="sub_1",
    )
    form = await page.get(created.url)
    assert "€12.50" in form.text

    to_challenge = await page.submit_card(created.url, "4000002500003155")

    assert to_challenge.status == 303 and "/challenge/" in to_challenge.location
    # Coming back to the page (the back button) leads to the same challenge.
    again = await page.get(created.url)
    assert (again.status, again.location) == (303, to_challenge.location)
    back = await page.answer_challenge(to_challenge.location, "complete")
    query = back.query()
    assert query["status"] == "succeeded"
    assert query["payment_session_id"] == created.session_id
    payment = await stub.GetPayment(
        payments_pb2.GetPaymentRequest(**SCOPE, payment_id=query["payment_id"])
    )
    assert payment.payment_method_id == query["payment_method_id"]
    assert (payment.total_amount, payment.subscription_id) == (1250, "sub_1")
    session = await stub.GetPaymentSession(
        payments_pb2.GetPaymentSessionRequest(**SCOPE, session_id=created.session_id)
    )
    assert session.status == payments_pb2.PAYMENT_SESSION_STATUS_SUCCEEDED
    assert session.payment_id == payment.payment_id


async def test_paying_dues_with_a_card_that_declines_returns_failed(page: PageClient) -> None:
    created = await page.session(
        purpose=payments_pb2.PAYMENT_SESSION_PURPOSE_PAY,
        amount=500,
        currency="USD",
        idempotency_key="k-pay-decline",
        charge_type=payments_pb2.CHARGE_TYPE_ON_DEMAND,
    )
    reply = await page.submit_card(created.url, "4000000000000341")
    assert reply.status == 303 and reply.query()["status"] == "failed"


async def test_a_pay_page_puts_its_lines_and_billing_on_the_payment(
    page: PageClient, stub: payments_pb2_grpc.PaymentsServiceStub
) -> None:
    created = await page.session(
        purpose=payments_pb2.PAYMENT_SESSION_PURPOSE_PAY,
        amount=2200,
        currency="EUR",
        idempotency_key="checkout:cks_1",
        charge_type=payments_pb2.CHARGE_TYPE_NEW,
        lines=[
            payments_pb2.PaymentLine(
                product_id="pdt_book", product_name="Book", quantity=2, unit_amount=500
            ),
            payments_pb2.PaymentLine(
                product_id="pdt_plan", product_name="Plan", quantity=1, unit_amount=1200
            ),
        ],
        billing=payments_pb2.BillingAddress(country="IT", city="Roma"),
        tax_id="IT12345678901",
    )
    reply = await page.submit_card(created.url, "4242424242424242")
    assert reply.status == 303 and reply.query()["status"] == "succeeded"
    payment = await stub.GetPayment(
        payments_pb2.GetPaymentRequest(**SCOPE, payment_id=reply.query()["payment_id"])
    )
    assert [(x.product_name, x.quantity, x.unit_amount) for x in payment.lines] == [
        ("Book", 2, 500),
        ("Plan", 1, 1200),
    ]
    assert (payment.billing.city, payment.tax_id) == ("Roma", "IT12345678901")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        (
            {
                "purpose": payments_pb2.PAYMENT_SESSION_PURPOSE_PAY,
                "amount": 1000,
                "currency": "EUR",
                "idempotency_key": "k",
                "lines": [payments_pb2.PaymentLine(product_id="p", quantity=1, unit_amount=999)],
            },
            "lines",
        ),
        ({"return_url": "ftp://x"}, "return_url"),
        ({"purpose": payments_pb2.PAYMENT_SESSION_PURPOSE_UNSPECIFIED}, "purpose"),
        ({"purpose": payments_pb2.PAYMENT_SESSION_PURPOSE_PAY, "currency": "EUR"}, "amount"),
        ({"locale": "fr"}, "locale"),
        ({"branding": payments_pb2.Branding(accent_color="red")}, "branding"),
    ],
)
async def test_bad_session_requests_name_the_field(
    stub: payments_pb2_grpc.PaymentsServiceStub, changes: dict[str, Any], field: str
) -> None:
    fields: dict[str, Any] = {
        **SCOPE,
        "customer_id": "cus_1",
        "purpose": payments_pb2.PAYMENT_SESSION_PURPOSE_SAVE_METHOD,
        "return_url": "https://shop.example/back",
    } | changes
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.CreatePaymentSession(payments_pb2.CreatePaymentSessionRequest(**fields))
    error = domain_error_from(err.value)
    assert error is not None and error.field == field


async def test_an_expired_session_takes_no_card(mongo_url: str) -> None:
    clock = FrozenClock(datetime(2026, 12, 7, 10, 0, tzinfo=UTC))
    async with (
        running_service(
            functools.partial(create_app, clock=clock),
            PaymentsSettings,
            mongo_url=mongo_url,
            http_port=0,
            session_ttl_seconds=600,
        ) as running,
        aiohttp.ClientSession() as http,
    ):
        page = PageClient(payments_pb2_grpc.PaymentsServiceStub(running.channel), http)
        created = await page.session()
        form = await page.get(created.url)
        clock.advance(601)
        token = CSRF.search(form.text)
        assert token is not None
        reply = await page.post(
            created.url,
            {"csrf_token": token.group(1), "cc-number": OK_CARD, "cc-exp": "12/34", "cc-csc": "1"},
        )
        assert reply.status == 410
        session = await page.stub.GetPaymentSession(
            payments_pb2.GetPaymentSessionRequest(**SCOPE, session_id=created.session_id)
        )
        assert session.status == payments_pb2.PAYMENT_SESSION_STATUS_EXPIRED


async def test_no_log_line_carries_the_card_number_or_the_session_id(
    page: PageClient, caplog: pytest.LogCaptureFixture
) -> None:
    created = await page.session()
    with caplog.at_level(logging.DEBUG):
        await page.submit_card(created.url, "4242 4242 4242 4241", cvc="987")
        await page.submit_card(created.url, "4242 4242 4242 4242", cvc="987")
    routes = [r.getMessage() for r in caplog.records if r.name == "payments.hosted.access"]
    assert "POST /pay/{session_id} 422" in routes and "POST /pay/{session_id} 303" in routes
    logged = caplog.text + "".join(repr(r.__dict__) for r in caplog.records)
    for secret in (
        "4242424242424242",
        "4242 4242 4242 4242",
        "4242 4242 4242 4241",
        created.session_id,
    ):
        assert secret not in logged
