"""Charges against the real database: idempotency, declines, 3-D Secure, events in the outbox."""

from __future__ import annotations

import asyncio
import functools
from datetime import UTC, datetime
from typing import Any

import aiohttp
import grpc
import pytest
from billing.common.v1 import common_pb2
from billing.payments.v1 import payments_pb2, payments_pb2_grpc
from billing_kit.clock import FrozenClock
from billing_kit.grpc_client import domain_error_from
from billing_kit.outbox import OUTBOX_COLLECTION
from billing_kit.testing import RunningService, running_service
from payments.app import PaymentsRuntime, create_app
from payments.config import PaymentsSettings

from .conftest import CSRF, RETURN_URL, PageClient

pytestmark = pytest.mark.integration

OK_CARD = "4242424242424242"


def _charge(payment_method_id: str, key: str, **changes: Any) -> payments_pb2.ChargeRequest:
    fields: dict[str, Any] = {
        "business_id": "bus_1",
        "mode": common_pb2.MODE_TEST,
        "customer_id": "cus_1",
        "payment_method_id": payment_method_id,
        "amount": 1999,
        "currency": "EUR",
        "idempotency_key": key,
        "charge_type": payments_pb2.CHARGE_TYPE_RENEWAL,
        "subscription_id": "sub_1",
        "customer_present": False,
        "return_url": RETURN_URL,
    }
    fields.update(changes)
    return payments_pb2.ChargeRequest(**fields)


async def _events(service: RunningService[PaymentsRuntime], payment_id: str) -> list[str]:
    cursor = service.runtime.db[OUTBOX_COLLECTION].find({"event.subject": payment_id})
    return [doc["type"] async for doc in cursor]


async def test_ten_concurrent_identical_charges_make_one_payment_and_one_event(
    service: RunningService[PaymentsRuntime],
    stub: payments_pb2_grpc.PaymentsServiceStub,
    page: PageClient,
) -> None:
    method_id = await page.save_card(OK_CARD)

    replies = await asyncio.gather(
        *(stub.ChargePaymentMethod(_charge(method_id, "renewal:sub_1:2026-12")) for _ in range(10))
    )

    assert {r.payment_id for r in replies} == {replies[0].payment_id}
    assert {r.status for r in replies} == {payments_pb2.PAYMENT_STATUS_SUCCEEDED}
    listed = await stub.ListPayments(
        payments_pb2.ListPaymentsRequest(business_id="bus_1", mode=common_pb2.MODE_TEST)
    )
    assert [p.payment_id for p in listed.payments] == [replies[0].payment_id]
    assert await _events(service, replies[0].payment_id) == ["payment.succeeded"]
    event = await service.runtime.db[OUTBOX_COLLECTION].find_one(
        {"event.subject": replies[0].payment_id}
    )
    assert event is not None
    data = event["event"]["data"]
    assert (data["subscription_id"], data["charge_type"], data["idempotency_key"]) == (
        "sub_1",
        "renewal",
        "renewal:sub_1:2026-12",
    )
    assert (data["total_amount"], data["currency"], data["card_last_four"]) == (1999, "EUR", "4242")


async def test_a_key_reused_for_another_amount_is_refused(
    stub: payments_pb2_grpc.PaymentsServiceStub, page: PageClient
) -> None:
    method_id = await page.save_card(OK_CARD)
    await stub.ChargePaymentMethod(_charge(method_id, "k1"))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ChargePaymentMethod(_charge(method_id, "k1", amount=5000))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    error = domain_error_from(err.value)
    assert error is not None and error.reason == "IDEMPOTENCY_KEY_REUSED"


async def test_a_decline_is_a_failed_payment_with_plain_words_not_an_error(
    service: RunningService[PaymentsRuntime],
    stub: payments_pb2_grpc.PaymentsServiceStub,
    page: PageClient,
) -> None:
    method_id = await page.save_card("4000000000000341")
    payment = await stub.ChargePaymentMethod(_charge(method_id, "k-declined"))
    assert payment.status == payments_pb2.PAYMENT_STATUS_FAILED
    assert (payment.error_code, payment.error_message) == (
        "card_declined",
        "Your card was declined.",
    )
    assert await _events(service, payment.payment_id) == ["payment.failed"]


async def test_an_unattended_charge_of_a_challenge_card_fails_and_asks_for_the_customer(
    stub: payments_pb2_grpc.PaymentsServiceStub, page: PageClient
) -> None:
    always = await page.save_card("4000002760003184")
    when_present = await page.save_card("4000002500003155")
    failed = await stub.ChargePaymentMethod(_charge(always, "k-3ds-always"))
    renewed = await stub.ChargePaymentMethod(_charge(when_present, "k-3ds-renewal"))
    assert (failed.status, failed.error_code) == (
        payments_pb2.PAYMENT_STATUS_FAILED,
        "requires_customer_action",
    )
    assert renewed.status == payments_pb2.PAYMENT_STATUS_SUCCEEDED


async def test_a_present_customer_passes_the_challenge_page_and_returns(
    service: RunningService[PaymentsRuntime],
    stub: payments_pb2_grpc.PaymentsServiceStub,
    page: PageClient,
) -> None:
    method_id = await page.save_card("4000002500003155")
    pending = await stub.ChargePaymentMethod(
        _charge(
            method_id,
            "k-3ds",
            customer_present=True,
            charge_type=payments_pb2.CHARGE_TYPE_ON_DEMAND,
        )
    )
    assert pending.status == payments_pb2.PAYMENT_STATUS_REQUIRES_CUSTOMER_ACTION
    assert pending.challenge_url.startswith(service.runtime.public_url + "/challenge/")
    assert await _events(service, pending.payment_id) == []

    first_page = await page.get(pending.challenge_url)
    assert "Complete" in first_page.text and "Fail" in first_page.text
    reply = await page.answer_challenge(pending.challenge_url, "complete")

    assert reply.status == 303
    assert reply.location.startswith("https://shop.example/back?from=portal&")
    assert reply.query()["payment_id"] == pending.payment_id
    assert reply.query()["status"] == "succeeded"
    done = await stub.GetPayment(
        payments_pb2.GetPaymentRequest(
            business_id="bus_1", mode=common_pb2.MODE_TEST, payment_id=pending.payment_id
        )
    )
    assert done.status == payments_pb2.PAYMENT_STATUS_SUCCEEDED and done.challenge_url == ""
    # A second answer (a double submit of the same form) changes nothing.
    token = CSRF.search(first_page.text)
    assert token is not None
    again = await page.post(pending.challenge_url, {"csrf_token": token.group(1), "action": "fail"})
    assert (again.status, again.query()["status"]) == (303, "succeeded")
    assert (await page.get(pending.challenge_url)).status == 409
    assert await _events(service, pending.payment_id) == ["payment.succeeded"]
    # The same key returns the same, now succeeded, payment.
    same = await stub.ChargePaymentMethod(_charge(method_id, "k-3ds", customer_present=True))
    assert (same.payment_id, same.status) == (
        pending.payment_id,
        payments_pb2.PAYMENT_STATUS_SUCCEEDED,
    )


async def test_failing_the_challenge_fails_the_payment(
    service: RunningService[PaymentsRuntime],
    stub: payments_pb2_grpc.PaymentsServiceStub,
    page: PageClient,
) -> None:
    method_id = await page.save_card("4000002760003184")
    pending = await stub.ChargePaymentMethod(_charge(method_id, "k-fail", customer_present=True))
    reply = await page.answer_challenge(pending.challenge_url, "fail")
    assert reply.query()["status"] == "failed"
    assert await _events(service, pending.payment_id) == ["payment.failed"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"idempotency_key": ""}, "idempotency_key"),
        ({"amount": 0}, "amount"),
        ({"currency": "euro"}, "currency"),
        ({"charge_type": payments_pb2.CHARGE_TYPE_UNSPECIFIED}, "charge_type"),
        ({"return_url": "javascript:alert(1)"}, "return_url"),
    ],
)
async def test_bad_charge_requests_name_the_field(
    stub: payments_pb2_grpc.PaymentsServiceStub,
    page: PageClient,
    changes: dict[str, Any],
    field: str,
) -> None:
    method_id = await page.save_card(OK_CARD)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ChargePaymentMethod(_charge(method_id, "k-bad", **changes))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    error = domain_error_from(err.value)
    assert error is not None and error.field == field
    listed = await stub.ListPayments(
        payments_pb2.ListPaymentsRequest(business_id="bus_1", mode=common_pb2.MODE_TEST)
    )
    assert list(listed.payments) == []


async def test_another_customers_method_is_not_found(
    stub: payments_pb2_grpc.PaymentsServiceStub, page: PageClient
) -> None:
    theirs = await page.save_card(OK_CARD, customer_id="cus_other")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ChargePaymentMethod(_charge(theirs, "k-x"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    error = domain_error_from(err.value)
    assert error is not None and error.reason == "PAYMENT_METHOD_NOT_FOUND"


async def test_list_filters_by_customer_status_and_subscription(
    stub: payments_pb2_grpc.PaymentsServiceStub, page: PageClient
) -> None:
    ok = await page.save_card(OK_CARD)
    declining = await page.save_card("4000000000000341")
    paid = await stub.ChargePaymentMethod(_charge(ok, "a"))
    failed = await stub.ChargePaymentMethod(_charge(declining, "b", subscription_id="sub_2"))

    async def ids(**filters: Any) -> list[str]:
        reply = await stub.ListPayments(
            payments_pb2.ListPaymentsRequest(
                business_id="bus_1", mode=common_pb2.MODE_TEST, **filters
            )
        )
        return [p.payment_id for p in reply.payments]

    assert await ids() == [failed.payment_id, paid.payment_id]
    assert await ids(status=payments_pb2.PAYMENT_STATUS_FAILED) == [failed.payment_id]
    assert await ids(subscription_id="sub_1") == [paid.payment_id]
    assert await ids(customer_ids=["cus_1", "cus_9"]) == [failed.payment_id, paid.payment_id]
    assert await ids(customer_ids=["cus_9"]) == []
    assert await ids(page_size=1, page_number=1) == [paid.payment_id]


async def test_deleting_a_method_forgets_it_and_another_customers_is_not_found(
    stub: payments_pb2_grpc.PaymentsServiceStub, page: PageClient
) -> None:
    mine = await page.save_card(OK_CARD)
    scope = {"business_id": "bus_1", "mode": common_pb2.MODE_TEST}
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.DeletePaymentMethod(
            payments_pb2.DeletePaymentMethodRequest(
                **scope, customer_id="cus_2", payment_method_id=mine
            )
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    await stub.DeletePaymentMethod(
        payments_pb2.DeletePaymentMethodRequest(
            **scope, customer_id="cus_1", payment_method_id=mine
        )
    )
    listed = await stub.ListPaymentMethods(
        payments_pb2.ListPaymentMethodsRequest(**scope, customer_id="cus_1")
    )
    assert list(listed.payment_methods) == []
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ChargePaymentMethod(_charge(mine, "after-delete"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_the_first_card_is_the_default_until_another_is_chosen(
    stub: payments_pb2_grpc.PaymentsServiceStub, page: PageClient
) -> None:
    first = await page.save_card(OK_CARD)
    second = await page.save_card("4000002500003155")
    scope = {"business_id": "bus_1", "mode": common_pb2.MODE_TEST, "customer_id": "cus_1"}

    async def defaults() -> list[str]:
        reply = await stub.ListPaymentMethods(payments_pb2.ListPaymentMethodsRequest(**scope))
        return [m.payment_method_id for m in reply.payment_methods if m.is_default]

    assert await defaults() == [first]
    chosen = await stub.SetDefaultPaymentMethod(
        payments_pb2.SetDefaultPaymentMethodRequest(**scope, payment_method_id=second)
    )
    assert chosen.is_default
    assert await defaults() == [second]


async def test_a_card_that_declines_later_pays_for_the_purchase_then_declines_renewals(
    stub: payments_pb2_grpc.PaymentsServiceStub, page: PageClient
) -> None:
    card = await page.save_card("4000000000000341")
    purchase = await stub.ChargePaymentMethod(
        _charge(card, "first", charge_type=payments_pb2.CHARGE_TYPE_NEW, customer_present=True)
    )
    renewal = await stub.ChargePaymentMethod(_charge(card, "renewal"))
    assert purchase.status == payments_pb2.PAYMENT_STATUS_SUCCEEDED
    assert renewal.status == payments_pb2.PAYMENT_STATUS_FAILED
    assert renewal.error_code == "card_declined"


async def test_the_unified_portal_lists_customers_of_every_business_in_one_question(
    stub: payments_pb2_grpc.PaymentsServiceStub, page: PageClient
) -> None:
    mine = await page.save_card(OK_CARD)
    elsewhere = await page.save_card(OK_CARD, business_id="bus_2", customer_id="cus_2")
    await page.save_card(OK_CARD, business_id="bus_2", customer_id="cus_stranger")
    paid_here = await stub.ChargePaymentMethod(_charge(mine, "here"))
    paid_there = await stub.ChargePaymentMethod(
        _charge(elsewhere, "there", business_id="bus_2", customer_id="cus_2")
    )
    owners = ["cus_1", "cus_2"]
    methods = await stub.ListPaymentMethods(
        payments_pb2.ListPaymentMethodsRequest(mode=common_pb2.MODE_TEST, customer_ids=owners)
    )
    payments = await stub.ListPayments(
        payments_pb2.ListPaymentsRequest(mode=common_pb2.MODE_TEST, customer_ids=owners)
    )
    assert {m.payment_method_id for m in methods.payment_methods} == {mine, elsewhere}
    assert [p.payment_id for p in payments.payments] == [
        paid_there.payment_id,
        paid_here.payment_id,
    ]
    # Without a business, customer ids are required: no list of everyone's payments.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ListPayments(payments_pb2.ListPaymentsRequest(mode=common_pb2.MODE_TEST))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_challenge_left_unanswered_past_its_expiry_cancels_the_payment_once(
    mongo_url: str,
) -> None:
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
        stub = payments_pb2_grpc.PaymentsServiceStub(running.channel)
        page = PageClient(stub, http)
        method_id = await page.save_card("4000002500003155")
        pending = await stub.ChargePaymentMethod(
            _charge(method_id, "k-expire", customer_present=True)
        )
        challenge = await page.get(pending.challenge_url)
        token = CSRF.search(challenge.text)
        assert token is not None
        clock.advance(601)

        late = await page.post(
            pending.challenge_url, {"csrf_token": token.group(1), "action": "complete"}
        )
        retried = await stub.ChargePaymentMethod(
            _charge(method_id, "k-expire", customer_present=True)
        )

        assert late.status == 410
        assert (retried.payment_id, retried.status) == (
            pending.payment_id,
            payments_pb2.PAYMENT_STATUS_CANCELLED,
        )
        assert retried.error_code == "challenge_expired" and retried.challenge_url == ""
        assert await _events(running, pending.payment_id) == ["payment.cancelled"]


def _two_lines() -> list[payments_pb2.PaymentLine]:
    return [
        payments_pb2.PaymentLine(
            product_id="pdt_a", product_name="Pro plan", quantity=1, unit_amount=1499
        ),
        payments_pb2.PaymentLine(
            product_id="pdt_b", product_name="Extra seat", quantity=2, unit_amount=250
        ),
    ]


async def test_lines_billing_and_tax_id_are_stored_returned_and_in_the_event(
    service: RunningService[PaymentsRuntime],
    stub: payments_pb2_grpc.PaymentsServiceStub,
    page: PageClient,
) -> None:
    method_id = await page.save_card(OK_CARD)
    billing = payments_pb2.BillingAddress(
        country="IT", city="Milano", street="Via Roma 1", zipcode="20121"
    )

    paid = await stub.ChargePaymentMethod(
        _charge(method_id, "k-lines", lines=_two_lines(), billing=billing, tax_id="IT12345678901")
    )
    again = await stub.GetPayment(
        payments_pb2.GetPaymentRequest(
            business_id="bus_1", mode=common_pb2.MODE_TEST, payment_id=paid.payment_id
        )
    )

    for payment in (paid, again):
        assert [(x.product_name, x.quantity, x.unit_amount) for x in payment.lines] == [
            ("Pro plan", 1, 1499),
            ("Extra seat", 2, 250),
        ]
        assert (payment.billing.country, payment.billing.city, payment.billing.state) == (
            "IT",
            "Milano",
            "",
        )
        assert payment.tax_id == "IT12345678901"
    event = await service.runtime.db[OUTBOX_COLLECTION].find_one({"event.subject": paid.payment_id})
    assert event is not None
    data = event["event"]["data"]
    assert [line["product_id"] for line in data["lines"]] == ["pdt_a", "pdt_b"]
    assert data["billing"] == {
        "country": "IT",
        "city": "Milano",
        "state": None,
        "street": "Via Roma 1",
        "zipcode": "20121",
    }
    assert data["tax_id"] == "IT12345678901"


async def test_a_payment_without_lines_has_none_and_no_billing(
    stub: payments_pb2_grpc.PaymentsServiceStub, page: PageClient
) -> None:
    method_id = await page.save_card(OK_CARD)
    paid = await stub.ChargePaymentMethod(_charge(method_id, "k-no-lines"))
    assert list(paid.lines) == []
    assert not paid.HasField("billing")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"lines": _two_lines()[:1]}, "lines"),  # 1499 != 1999: the lines must add up
        (
            {"lines": [payments_pb2.PaymentLine(product_id="", quantity=1, unit_amount=1999)]},
            "lines[0]",
        ),
        ({"billing": payments_pb2.BillingAddress(country="Italy")}, "billing"),
    ],
)
async def test_bad_lines_or_billing_name_the_field_and_charge_nothing(
    stub: payments_pb2_grpc.PaymentsServiceStub,
    page: PageClient,
    changes: dict[str, Any],
    field: str,
) -> None:
    method_id = await page.save_card(OK_CARD)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ChargePaymentMethod(_charge(method_id, "k-bad-lines", **changes))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    error = domain_error_from(err.value)
    assert error is not None and error.field == field
    listed = await stub.ListPayments(
        payments_pb2.ListPaymentsRequest(business_id="bus_1", mode=common_pb2.MODE_TEST)
    )
    assert list(listed.payments) == []
