"""The subscriptions service charging through the real payments service over gRPC
(both started with the kit's running_service; cards saved through payments' hosted page)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import grpc
import pytest
import pytest_asyncio
from billing.common.v1 import common_pb2
from billing.payments.v1 import payments_pb2, payments_pb2_grpc
from billing.subscriptions.v1 import subscriptions_pb2 as pb
from billing.subscriptions.v1 import subscriptions_pb2_grpc
from billing_kit.errors import Reason
from billing_kit.grpc_client import domain_error_from
from billing_kit.testing import BrokerNamespace, RunningService, eventually, running_service
from payments.app import PaymentsRuntime
from payments.app import create_app as create_payments
from payments.config import PaymentsSettings
from subscriptions.app import SubscriptionsRuntime, create_app
from subscriptions.config import SubscriptionsSettings
from yarl import URL

pytestmark = pytest.mark.integration
CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')
TEST = common_pb2.MODE_TEST
DAY = 86_400


@dataclass
class Stack:
    payments: RunningService[PaymentsRuntime]
    subs: RunningService[SubscriptionsRuntime]
    stub: subscriptions_pb2_grpc.SubscriptionsServiceStub
    pay: payments_pb2_grpc.PaymentsServiceStub
    http: aiohttp.ClientSession
    product_id: str

    async def save_card(self, number: str, customer_id: str = "cus_1") -> str:
        session = await self.pay.CreatePaymentSession(
            payments_pb2.CreatePaymentSessionRequest(
                business_id="bus_1",
                mode=TEST,
                customer_id=customer_id,
                purpose=payments_pb2.PAYMENT_SESSION_PURPOSE_SAVE_METHOD,
                return_url="https://shop.example/back",
            )
        )
        async with self.http.get(session.url) as page:
            token = CSRF.search(await page.text())
        assert token
        form = {
            "csrf_token": token.group(1),
            "cc-name": "Ada Lovelace",
            "cc-number": number,
            "cc-exp": "12/34",
            "cc-csc": "987",
        }
        async with self.http.post(session.url, data=form, allow_redirects=False) as reply:
            assert reply.status == 303, await reply.text()
            return dict(URL(reply.headers["Location"]).query)["payment_method_id"]

    async def get(self, sid: str) -> pb.Subscription:
        return await self.stub.GetSubscription(
            pb.GetSubscriptionRequest(business_id="bus_1", mode=TEST, subscription_id=sid)
        )

    async def advance_until(self, seconds: int, sid: str, status: int) -> pb.Subscription:
        """Move the clock; the scheduler (woken by the move) renews or holds ``sid``."""
        before = await self.get(sid)
        await self.stub.AdvanceTestClock(
            pb.AdvanceTestClockRequest(business_id="bus_1", mode=TEST, seconds=seconds)
        )

        async def moved() -> pb.Subscription | None:
            now = await self.get(sid)
            changed = now.previous_billing_date != before.previous_billing_date
            return now if now.status == status and (changed or status != before.status) else None

        return await eventually(moved, message="the scheduler did not process the due date")


@pytest_asyncio.fixture
async def stack(mongo_url: str, broker_namespace: BrokerNamespace) -> AsyncIterator[Stack]:
    # Both on one broker namespace: payments' events reach the subscriptions consumer.
    async with (
        running_service(
            create_payments,
            PaymentsSettings,
            mongo_url=mongo_url,
            broker=broker_namespace,
            http_port=0,
        ) as payments,
        running_service(
            create_app,
            SubscriptionsSettings,
            mongo_url=mongo_url,
            broker=broker_namespace,
            payments_target=payments.grpc_target,
            renewal_poll_seconds=3600,
        ) as subs,
        aiohttp.ClientSession() as http,
    ):
        product = await subs.runtime.products.create_product(
            "bus_1",
            "test",
            {
                "name": "Pro",
                "tax_category": "saas",
                "price": {
                    "type": "recurring_price",
                    "price": 1500,
                    "currency": "EUR",
                    "payment_frequency_count": 1,
                    "payment_frequency_interval": "Month",
                    "subscription_period_count": 1,
                    "subscription_period_interval": "Year",
                },
            },
        )
        yield Stack(
            payments=payments,
            subs=subs,
            stub=subscriptions_pb2_grpc.SubscriptionsServiceStub(subs.channel),
            pay=payments_pb2_grpc.PaymentsServiceStub(payments.channel),
            http=http,
            product_id=product.product_id,
        )


async def _create(stack: Stack, method: str) -> pb.CreateSubscriptionResponse:
    return await stack.stub.CreateSubscription(
        pb.CreateSubscriptionRequest(
            business_id="bus_1",
            mode=TEST,
            customer_id="cus_1",
            product_id=stack.product_id,
            quantity=1,
            billing=pb.BillingAddress(country="IT"),
            payment_method_id=method,
        )
    )


async def _payments(stack: Stack, sid: str) -> list[payments_pb2.Payment]:
    reply = await stack.pay.ListPayments(
        payments_pb2.ListPaymentsRequest(
            business_id="bus_1", mode=TEST, subscription_id=sid, page_size=100
        )
    )
    return list(reply.payments)


async def test_create_cancel_undo_and_renew_through_payments(stack: Stack) -> None:
    created = await _create(stack, await stack.save_card("4242424242424242"))
    sid = created.subscription.subscription_id
    assert created.subscription.status == pb.SUBSCRIPTION_STATUS_ACTIVE
    assert created.first_payment.status == pb.ChargeOutcome.STATUS_SUCCEEDED

    base = pb.UpdateSubscriptionRequest(business_id="bus_1", mode=TEST, subscription_id=sid)
    scheduled = pb.UpdateSubscriptionRequest()
    scheduled.CopyFrom(base)
    scheduled.cancel_at_next_billing_date = True
    assert (await stack.stub.UpdateSubscription(scheduled)).cancel_at_next_billing_date
    undo = pb.UpdateSubscriptionRequest()
    undo.CopyFrom(base)
    undo.cancel_at_next_billing_date = False
    assert not (await stack.stub.UpdateSubscription(undo)).cancel_at_next_billing_date

    renewed = await stack.advance_until(32 * DAY, sid, pb.SUBSCRIPTION_STATUS_ACTIVE)
    assert renewed.status == pb.SUBSCRIPTION_STATUS_ACTIVE
    succeeded = [
        p for p in await _payments(stack, sid) if p.status == payments_pb2.PAYMENT_STATUS_SUCCEEDED
    ]
    assert len(succeeded) == 2


async def test_on_hold_then_a_good_card_pays_exactly_one_dues(stack: Stack) -> None:
    created = await _create(stack, await stack.save_card("4242424242424242"))
    sid = created.subscription.subscription_id
    # A card that saves but declines every charge becomes the renewal method.
    doomed = await stack.save_card("4000000000000341")
    switched = await stack.stub.UpdatePaymentMethod(
        pb.UpdatePaymentMethodRequest(
            business_id="bus_1", mode=TEST, subscription_id=sid, payment_method_id=doomed
        )
    )
    assert switched.result == pb.UpdatePaymentMethodResponse.RESULT_SWITCHED
    held = await stack.advance_until(32 * DAY, sid, pb.SUBSCRIPTION_STATUS_ON_HOLD)
    assert held.status == pb.SUBSCRIPTION_STATUS_ON_HOLD and held.amount_due == 1500

    good = await stack.save_card("4242424242424242")
    request = pb.UpdatePaymentMethodRequest(
        business_id="bus_1", mode=TEST, subscription_id=sid, payment_method_id=good
    )
    first = await stack.stub.UpdatePaymentMethod(request)
    again = await stack.stub.UpdatePaymentMethod(request)
    assert first.result == pb.UpdatePaymentMethodResponse.RESULT_CHARGED
    assert first.subscription.status == pb.SUBSCRIPTION_STATUS_ACTIVE
    assert again.result == pb.UpdatePaymentMethodResponse.RESULT_SWITCHED
    dues = [
        p
        for p in await _payments(stack, sid)
        if p.status == payments_pb2.PAYMENT_STATUS_SUCCEEDED and p.payment_method_id == good
    ]
    assert len(dues) == 1

    cancel = pb.UpdateSubscriptionRequest(
        business_id="bus_1", mode=TEST, subscription_id=sid, cancel_now=True
    )
    await stack.stub.UpdateSubscription(cancel)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.stub.UpdateSubscription(cancel)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    error = domain_error_from(err.value)
    assert error is not None and error.reason is Reason.SUBSCRIPTION_STATE_CONFLICT


async def test_a_3ds_first_payment_activates_when_the_challenge_is_passed_later(
    stack: Stack,
) -> None:
    card = await stack.save_card("4000002500003155")
    created = await stack.stub.CreateSubscription(
        pb.CreateSubscriptionRequest(
            business_id="bus_1",
            mode=TEST,
            customer_id="cus_1",
            product_id=stack.product_id,
            quantity=1,
            billing=pb.BillingAddress(country="IT"),
            payment_method_id=card,
            customer_present=True,
            return_url="https://shop.example/done",
        )
    )
    sid = created.subscription.subscription_id
    assert created.subscription.status == pb.SUBSCRIPTION_STATUS_PENDING
    url = created.subscription.challenge_url
    assert url and url == created.first_payment.challenge_url
    async with stack.http.get(url) as page:
        token = CSRF.search(await page.text())
    assert token
    form = {"csrf_token": token.group(1), "action": "complete"}
    async with stack.http.post(url, data=form, allow_redirects=False) as reply:
        assert reply.status == 303

    async def active() -> bool:
        return (await stack.get(sid)).status == pb.SUBSCRIPTION_STATUS_ACTIVE

    # payment.succeeded travels payments' outbox -> broker -> this service's consumer.
    await eventually(active, within=20, message="the payment event did not activate it")
    assert not (await stack.get(sid)).challenge_url
