"""The subscription lifecycle over a real database with a fake payments service:
what a merchant or a customer would see after each step."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from billing.common.v1 import common_pb2  # noqa: F401  (the generated package must import)
from billing_kit.errors import FailedPrecondition, InvalidArgument, NotFound, Reason
from billing_kit.events import CloudEvent
from billing_kit.mongo import run_in_transaction
from billing_kit.scoping import PageRequest
from subscriptions.subscriptions.billing import MethodResult
from subscriptions.subscriptions.changes import Changes
from subscriptions.subscriptions.models import CancellationFeedback
from subscriptions.subscriptions.models import SubscriptionStatus as S
from subscriptions.subscriptions.payments_client import ChargeStatus
from subscriptions.subscriptions.repository import SubscriptionFilter
from subscriptions.subscriptions.service import NewSubscription

from .conftest import DECLINED, T0, World

pytestmark = pytest.mark.integration
DAY = 86_400


def _new(method: str | None = "pm_ok", **changes: object) -> NewSubscription:
    fields: dict[str, object] = {
        "business_id": "bus_1",
        "mode": "test",
        "customer_id": "cus_1",
        "product_id": "pdt_monthly",
        "quantity": 2,
        "payment_method_id": method,
    }
    fields.update(changes)
    return NewSubscription(**fields)  # type: ignore[arg-type]


async def test_create_charges_the_first_period_and_activates(world: World) -> None:
    sub, payment = await world.service.create_subscription(_new())
    assert sub.status is S.ACTIVE
    assert payment is not None and payment.status is ChargeStatus.SUCCEEDED
    assert (payment.amount, sub.recurring_pre_tax_amount, sub.currency) == (2000, 2000, "EUR")
    assert sub.next_billing_date == T0 + timedelta(days=28)  # 31 Jan -> 28 Feb
    assert [e["type"] for e in await world.events()] == ["subscription.active"]


async def test_a_declined_first_charge_fails_the_subscription(world: World) -> None:
    sub, payment = await world.service.create_subscription(_new("pm_declined"))
    assert sub.status is S.FAILED and sub.next_billing_date is None
    assert payment is not None and payment.error_message == DECLINED
    assert [e["type"] for e in await world.events()] == ["subscription.failed"]


async def test_3ds_keeps_it_pending_until_the_payment_event(world: World) -> None:
    sub, payment = await world.service.create_subscription(_new("pm_3ds", customer_present=True))
    assert sub.status is S.PENDING and sub.challenge_url == "https://pay.example/3ds"
    assert payment is not None
    event = CloudEvent(
        id="evt_1",
        source="payments",
        type="payment.succeeded",
        time=T0,
        data={"payment_id": payment.payment_id, "total_amount": 2000, "currency": "EUR"},
    )
    await run_in_transaction(
        world.uow.client, lambda txn: world.billing.on_payment_event(event, txn)
    )
    got = await world.service.get_subscription("bus_1", "test", sub.subscription_id)
    assert got.status is S.ACTIVE and got.challenge_url is None


async def test_create_is_idempotent_by_key(world: World) -> None:
    first, _ = await world.service.create_subscription(_new(idempotency_key="k1"))
    again, payment = await world.service.create_subscription(_new(idempotency_key="k1"))
    assert again.subscription_id == first.subscription_id and payment is None
    assert len(world.payments.by_key) == 1


async def test_a_one_time_or_unknown_product_is_refused(world: World) -> None:
    with pytest.raises(NotFound):
        await world.service.create_subscription(_new(product_id="pdt_nope"))
    with pytest.raises(InvalidArgument) as err:
        await world.service.create_subscription(_new(quantity=0))
    assert err.value.field == "quantity"
    archived = world.products.products["pdt_monthly"].model_copy(update={"archived": True})
    world.products.products["pdt_monthly"] = archived
    with pytest.raises(FailedPrecondition) as refused:
        await world.service.create_subscription(_new())
    assert refused.value.reason is Reason.PRODUCT_NOT_SUBSCRIBABLE
    assert not world.payments.calls


async def test_cancel_at_period_end_then_undo_then_renew(world: World) -> None:
    sub, _ = await world.service.create_subscription(_new())
    sid = sub.subscription_id
    scheduled = await world.service.update_subscription(
        "bus_1",
        "test",
        sid,
        Changes(
            cancel_at_next_billing_date=True,
            cancellation_feedback=CancellationFeedback.TOO_EXPENSIVE,
            cancellation_comment="pricey",
        ),
    )
    assert scheduled.cancel_at_next_billing_date and scheduled.status is S.ACTIVE
    undone = await world.service.update_subscription(
        "bus_1", "test", sid, Changes(cancel_at_next_billing_date=False)
    )
    assert not undone.cancel_at_next_billing_date and undone.cancellation_feedback is None
    # The updates say what changed, so notifications emails only the scheduling one.
    schedule, undo = [e["data"] for e in await world.events("subscription.updated")]
    assert schedule["previous_cancel_at_next_billing_date"] is False
    assert schedule["cancel_at_next_billing_date"] is True
    assert undo["previous_cancel_at_next_billing_date"] is True
    await world.clocks.advance("bus_1", "test", seconds=29 * DAY)
    assert await world.scheduler().run_once() == 1
    renewed = await world.service.get_subscription("bus_1", "test", sid)
    assert renewed.status is S.ACTIVE and renewed.previous_billing_date == T0 + timedelta(days=28)
    assert len(world.payments.charged(sid)) == 2
    types = [e["type"] for e in await world.events()]
    assert types[-1] == "subscription.renewed"


async def test_scheduled_cancel_ends_at_the_period_end_without_a_charge(world: World) -> None:
    sub, _ = await world.service.create_subscription(_new())
    await world.service.update_subscription(
        "bus_1", "test", sub.subscription_id, Changes(cancel_at_next_billing_date=True)
    )
    await world.clocks.advance("bus_1", "test", seconds=60 * DAY)
    await world.scheduler().run_once()
    got = await world.service.get_subscription("bus_1", "test", sub.subscription_id)
    assert got.status is S.CANCELLED and got.cancelled_at == T0 + timedelta(days=28)
    assert len(world.payments.charged(sub.subscription_id)) == 1
    cancelled = await world.events("subscription.cancelled")
    assert len(cancelled) == 1


async def test_the_clock_of_another_business_does_not_renew_this_one(world: World) -> None:
    await world.service.create_subscription(_new())
    await world.clocks.advance("bus_2", "test", seconds=60 * DAY)
    assert await world.scheduler().run_once() == 0
    with pytest.raises(NotFound) as err:
        await world.clocks.advance("bus_1", "live", seconds=DAY)
    assert err.value.reason is Reason.TEST_CLOCK_LIVE_MODE
    with pytest.raises(FailedPrecondition) as back:
        await world.clocks.advance("bus_1", "test", to=T0 - timedelta(days=1))
    assert back.value.reason is Reason.TEST_CLOCK_BACKWARDS


async def test_downtime_catches_up_one_charge_per_missed_period(world: World) -> None:
    sub, _ = await world.service.create_subscription(_new())
    await world.clocks.advance("bus_1", "test", seconds=(28 + 31 + 30) * DAY)  # to 30 April
    assert await world.scheduler().run_once() == 3
    got = await world.service.get_subscription("bus_1", "test", sub.subscription_id)
    assert got.next_billing_date == T0.replace(month=5, day=31)
    assert len(world.payments.charged(sub.subscription_id)) == 4


async def test_failed_renewal_holds_and_a_new_card_pays_the_dues_once(world: World) -> None:
    sub, _ = await world.service.create_subscription(_new())
    sid = sub.subscription_id
    # The card on file stops working before the renewal.
    await world.repository.save(sub.model_copy(update={"payment_method_id": "pm_declined"}), None)  # type: ignore[arg-type]
    await world.clocks.advance("bus_1", "test", seconds=30 * DAY)
    await world.scheduler().run_once()
    held = await world.service.get_subscription("bus_1", "test", sid)
    assert held.status is S.ON_HOLD and held.amount_due == 2000
    assert len(await world.events("subscription.on_hold")) == 1

    declined = await world.billing.update_payment_method("bus_1", "test", sid, "pm_declined")
    assert declined.result is MethodResult.CHARGED and declined.payment is not None
    assert declined.payment.error_message == DECLINED
    assert declined.subscription.status is S.ON_HOLD

    paid = await world.billing.update_payment_method("bus_1", "test", sid, "pm_ok")
    assert paid.subscription.status is S.ACTIVE and paid.subscription.amount_due == 0
    [held_event] = await world.events("subscription.on_hold")
    assert held_event["data"]["previous_status"] == "active"
    assert held_event["data"]["amount_due"] == 2000
    reactivated = (await world.events("subscription.active"))[-1]["data"]
    assert reactivated["previous_status"] == "on_hold"  # a reactivation, not a first activation
    now = await world.clocks.now("bus_1", "test")
    assert paid.subscription.next_billing_date == now.replace(month=4)  # one month after paying
    again = await world.billing.update_payment_method("bus_1", "test", sid, "pm_ok")
    assert again.result is MethodResult.SWITCHED
    dues = [
        r
        for k, r in world.payments.by_key.items()
        if ":dues:" in k and r.status is ChargeStatus.SUCCEEDED
    ]
    assert len(dues) == 1
    # Every charge names its product and quantity, so the invoice prints a real line.
    renewal = next(c for c in world.payments.calls if c.idempotency_key.startswith(f"{sid}:renew"))
    [line] = renewal.lines
    assert (line.product_id, line.quantity, line.unit_amount) == ("pdt_monthly", 2, 1000)
    [dues_line] = next(c for c in world.payments.calls if ":dues:" in c.idempotency_key).lines
    assert dues_line.quantity * dues_line.unit_amount == 2000


async def test_illegal_changes_are_conflicts(world: World) -> None:
    sub, _ = await world.service.create_subscription(_new("pm_declined"))
    with pytest.raises(FailedPrecondition) as err:
        await world.service.update_subscription(
            "bus_1", "test", sub.subscription_id, Changes(cancel_now=True)
        )
    assert err.value.reason is Reason.SUBSCRIPTION_STATE_CONFLICT
    with pytest.raises(FailedPrecondition):
        await world.billing.charge_on_demand("bus_1", "test", sub.subscription_id, 500)


async def test_feedback_without_a_cancel_is_refused_and_nothing_changes(world: World) -> None:
    sub, _ = await world.service.create_subscription(_new())
    with pytest.raises(FailedPrecondition) as err:
        await world.service.update_subscription(
            "bus_1", "test", sub.subscription_id, Changes(cancellation_comment="hm")
        )
    assert err.value.field == "cancellation_feedback"
    assert len(await world.events()) == 1
    # With a cancel already scheduled, feedback may follow on its own.
    await world.service.update_subscription(
        "bus_1", "test", sub.subscription_id, Changes(cancel_at_next_billing_date=True)
    )
    later = await world.service.update_subscription(
        "bus_1",
        "test",
        sub.subscription_id,
        Changes(cancellation_feedback=CancellationFeedback.UNUSED, cancellation_comment="idle"),
    )
    assert (later.cancellation_feedback, later.cancellation_comment) == (
        CancellationFeedback.UNUSED,
        "idle",
    )


async def test_other_business_sees_nothing(world: World) -> None:
    sub, _ = await world.service.create_subscription(_new())
    with pytest.raises(NotFound):
        await world.service.get_subscription("bus_2", "test", sub.subscription_id)
    with pytest.raises(NotFound):
        await world.service.get_subscription("bus_1", "test", sub.subscription_id, "cus_2")


async def test_the_buyers_tax_id_travels_with_every_charge(world: World) -> None:
    sub, _ = await world.service.create_subscription(_new(tax_id="IT12345678901"))
    assert sub.tax_id == "IT12345678901"
    await world.billing.charge_on_demand("bus_1", "test", sub.subscription_id, 750)
    assert [c.tax_id for c in world.payments.calls] == ["IT12345678901"] * 2
    [on_demand_line] = world.payments.calls[1].lines
    assert (on_demand_line.quantity, on_demand_line.unit_amount) == (1, 750)
    with pytest.raises(InvalidArgument):
        await world.service.create_subscription(_new(tax_id="X" * 65))


async def test_on_demand_charge_uses_the_method_on_file(world: World) -> None:
    sub, _ = await world.service.create_subscription(_new())
    result = await world.billing.charge_on_demand(
        "bus_1", "test", sub.subscription_id, 750, idempotency_key="od1"
    )
    again = await world.billing.charge_on_demand(
        "bus_1", "test", sub.subscription_id, 750, idempotency_key="od1"
    )
    assert result.status is ChargeStatus.SUCCEEDED and again.payment_id == result.payment_id


async def test_an_unknown_payment_method_fails_the_new_subscription(world: World) -> None:
    with pytest.raises(NotFound):
        await world.service.create_subscription(_new("pm_gone"))
    [sub] = await world.repository.list(SubscriptionFilter("bus_1", "test"), PageRequest())
    assert sub.status is S.FAILED


async def test_concurrent_creates_with_one_key_make_one_subscription_and_one_charge(
    world: World,
) -> None:
    results = await asyncio.gather(
        *(world.service.create_subscription(_new(idempotency_key="same")) for _ in range(5))
    )
    assert len({sub.subscription_id for sub, _ in results}) == 1
    assert len(world.payments.by_key) == 1


async def test_a_year_later_it_has_paid_twelve_months_and_expired(world: World) -> None:
    sub, _ = await world.service.create_subscription(_new())
    await world.clocks.advance("bus_1", "test", seconds=400 * DAY)
    assert await world.scheduler().run_once() == 12  # 11 renewals, then the expiry
    got = await world.service.get_subscription("bus_1", "test", sub.subscription_id)
    assert got.status is S.EXPIRED and got.next_billing_date is None
    assert len(world.payments.charged(sub.subscription_id)) == 12
    assert len(await world.events("subscription.expired")) == 1
