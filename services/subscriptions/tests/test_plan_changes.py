"""Plan changes over a real database: the change charges what the preview said, once;
declines, 3-D Secure, scheduled changes through the renewal, validation, plan options."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from billing_kit.errors import FailedPrecondition, InvalidArgument, NotFound
from billing_kit.events import CloudEvent
from subscriptions.products.models import OneTimePrice, Product, RecurringPrice
from subscriptions.subscriptions.models import SubscriptionStatus as S
from subscriptions.subscriptions.payments_client import ChargeStatus, ChargeType
from subscriptions.subscriptions.plan_changes import (
    PREVENT_CHANGE,
    EffectiveAt,
    PlanChangeRequest,
    PlanChangesService,
)
from subscriptions.subscriptions.proration import ProrationMode
from subscriptions.subscriptions.service import NewSubscription

from .conftest import T0, World

pytestmark = pytest.mark.integration
DAY = 86_400


def _product(
    world: World,
    pid: str,
    price: int,
    *,
    currency: str = "EUR",
    group: str = "team",
    max_quantity: int = 0,
    archived: bool = False,
    interval: str = "Month",
) -> None:
    world.products.products[pid] = Product(
        product_id=pid,
        business_id="bus_1",
        mode="test",
        name=pid.removeprefix("pdt_").title(),
        price=RecurringPrice(
            price=price,
            currency=currency,  # type: ignore[arg-type]
            payment_frequency_count=1,
            payment_frequency_interval=interval,  # type: ignore[arg-type]
            subscription_period_count=10,
            subscription_period_interval="Year",
        ),
        tax_category="saas",
        is_recurring=True,
        archived=archived,
        plan_group=group,
        max_quantity=max_quantity,
        created_at=T0,
        updated_at=T0,
    )


def _plans(world: World) -> PlanChangesService:
    service = PlanChangesService(
        world.repository, world.uow, world.clocks, world.products, world.payments
    )
    world.billing.on_plan_change_payment = service.on_plan_change_payment
    return service


async def _subscribe(world: World, product: str = "pdt_basic", method: str = "pm_ok") -> str:
    _product(world, "pdt_basic", 1000)
    _product(world, "pdt_pro", 2500, max_quantity=10)
    _product(world, "pdt_mini", 500)
    sub, _ = await world.service.create_subscription(
        NewSubscription(
            business_id="bus_1",
            mode="test",
            customer_id="cus_1",
            product_id=product,
            quantity=1,
            payment_method_id=method,
        )
    )
    return sub.subscription_id


def _request(sid: str, **kw: Any) -> PlanChangeRequest:
    base: dict[str, Any] = {
        "business_id": "bus_1",
        "mode": "test",
        "subscription_id": sid,
        "product_id": "pdt_pro",
        "quantity": 1,
        "proration_mode": ProrationMode.PRORATED_IMMEDIATELY,
    }
    return PlanChangeRequest(**{**base, **kw})


async def test_an_upgrade_mid_period_charges_exactly_the_preview(world: World) -> None:
    plans = _plans(world)
    sid = await _subscribe(world)
    await world.clocks.advance("bus_1", "test", seconds=10 * DAY + 3601)
    preview = await plans.preview(_request(sid))
    # 31 Jan -> 28 Feb is 28 days; 18 days minus 3601 s are left
    period, left = 28 * DAY, 18 * DAY - 3601
    credit = (2 * 1000 * left + period) // (2 * period)
    charge = (2 * 2500 * left + period) // (2 * period)
    assert preview.immediate_amount == charge - credit
    assert await world.events("subscription.plan_changed") == []  # the preview wrote nothing

    outcome = await plans.change(_request(sid))
    assert outcome.payment is not None and outcome.payment.status is ChargeStatus.SUCCEEDED
    assert outcome.payment.amount == preview.immediate_amount
    request = world.payments.calls[-1]
    assert request.charge_type is ChargeType.PLAN_CHANGE
    assert sum(line.unit_amount * line.quantity for line in request.lines) == request.amount
    sub = outcome.subscription
    now = T0 + timedelta(seconds=10 * DAY + 3601)
    assert (sub.product_id, sub.quantity, sub.recurring_pre_tax_amount) == ("pdt_pro", 1, 2500)
    assert sub.previous_billing_date == now and sub.next_billing_date is not None
    assert sub.next_billing_date.month == 3  # the cycle restarted at the change
    assert preview.new_plan.next_billing_date == sub.next_billing_date
    [event] = await world.events("subscription.plan_changed")
    assert event["data"]["product_id"] == "pdt_pro"
    assert event["data"]["payment_id"] == outcome.payment.payment_id


async def test_ten_identical_changes_at_once_charge_once(world: World) -> None:
    plans = _plans(world)
    sid = await _subscribe(world)
    await world.clocks.advance("bus_1", "test", seconds=5 * DAY)
    results = await asyncio.gather(
        *(plans.change(_request(sid)) for _ in range(10)), return_exceptions=True
    )
    assert any(not isinstance(r, BaseException) for r in results)
    for r in results:
        if isinstance(r, BaseException):
            assert isinstance(r, InvalidArgument | FailedPrecondition)
    plan_charges = [
        r
        for k, r in world.payments.by_key.items()
        if ":plan_change:" in k and r.status is ChargeStatus.SUCCEEDED
    ]
    assert len(plan_charges) == 1
    assert len(await world.events("subscription.plan_changed")) == 1


async def test_the_callers_key_makes_a_retry_answer_the_first_change(world: World) -> None:
    plans = _plans(world)
    sid = await _subscribe(world)
    first = await plans.change(_request(sid, idempotency_key="k1"))
    again = await plans.change(_request(sid, idempotency_key="k1"))
    assert again.subscription.product_id == "pdt_pro"
    assert first.payment is not None and again.payment is not None
    assert again.payment.payment_id == first.payment.payment_id
    assert len([k for k in world.payments.by_key if ":plan_change:" in k]) == 1


async def test_seats_one_to_five_mid_period(world: World) -> None:
    plans = _plans(world)
    sid = await _subscribe(world)
    await world.clocks.advance("bus_1", "test", seconds=14 * DAY)
    preview = await plans.preview(_request(sid, product_id="pdt_basic", quantity=5))
    assert preview.immediate_amount == 4000 * 14 // 28
    outcome = await plans.change(_request(sid, product_id="pdt_basic", quantity=5))
    assert outcome.payment is not None and outcome.payment.amount == preview.immediate_amount
    assert outcome.subscription.quantity == 5
    assert outcome.subscription.recurring_pre_tax_amount == 5000


async def test_a_declined_upgrade_with_prevent_change_changes_nothing(world: World) -> None:
    plans = _plans(world)
    sid = await _subscribe(world)
    # the card starts declining after the first period was paid
    before = await world.repository.get("bus_1", "test", sid)
    assert before is not None
    await world.repository.save(
        before.model_copy(update={"payment_method_id": "pm_declined"}), None
    )  # type: ignore[arg-type]
    before = await world.repository.get("bus_1", "test", sid)
    outcome = await plans.change(_request(sid, on_payment_failure=PREVENT_CHANGE))
    assert outcome.payment is not None and outcome.payment.status is ChargeStatus.FAILED
    after = await world.repository.get("bus_1", "test", sid)
    assert after is not None and before is not None
    # Only the attempt count moved: the next try is a new charge, not the same decline.
    assert after == before.model_copy(update={"plan_change_declines": 1})
    assert await world.events("subscription.plan_changed") == []
    again = await plans.change(_request(sid, on_payment_failure=PREVENT_CHANGE))
    assert again.payment is not None
    assert again.payment.payment_id != outcome.payment.payment_id


async def test_a_declined_upgrade_with_apply_change_goes_on_hold_on_the_new_plan(
    world: World,
) -> None:
    plans = _plans(world)
    sid = await _subscribe(world)
    sub = await world.repository.get("bus_1", "test", sid)
    assert sub is not None
    await world.repository.save(sub.model_copy(update={"payment_method_id": "pm_declined"}), None)  # type: ignore[arg-type]
    outcome = await plans.change(_request(sid))
    after = outcome.subscription
    assert after.status is S.ON_HOLD
    assert (after.product_id, after.amount_due) == ("pdt_pro", 2500)
    assert [e["type"] for e in await world.events()][-2:] == [
        "subscription.plan_changed",
        "subscription.on_hold",
    ]


async def test_3ds_keeps_the_change_pending_until_the_payment_event(world: World) -> None:
    plans = _plans(world)
    sid = await _subscribe(world, method="pm_3ds")
    outcome = await plans.change(
        _request(sid, customer_present=True, on_payment_failure=PREVENT_CHANGE)
    )
    assert outcome.payment is not None
    assert outcome.payment.status is ChargeStatus.REQUIRES_CUSTOMER_ACTION
    waiting = outcome.subscription
    assert waiting.product_id == "pdt_basic" and waiting.pending_plan_change is not None
    with pytest.raises(FailedPrecondition):
        await plans.change(_request(sid, product_id="pdt_mini"))
    event = CloudEvent.model_validate(
        {
            "id": "evt_1",
            "source": "payments",
            "type": "payment.succeeded",
            "time": T0,
            "data": {"payment_id": outcome.payment.payment_id, "total_amount": 1},
        }
    )
    await world.uow.run(lambda txn: world.billing.on_payment_event(event, txn))
    done = await world.repository.get("bus_1", "test", sid)
    assert done is not None
    assert done.product_id == "pdt_pro" and done.pending_plan_change is None
    assert done.pending_payment_id is None
    assert len(await world.events("subscription.plan_changed")) == 1


async def test_a_failed_3ds_with_prevent_change_drops_the_change(world: World) -> None:
    plans = _plans(world)
    sid = await _subscribe(world, method="pm_3ds")
    outcome = await plans.change(
        _request(sid, customer_present=True, on_payment_failure=PREVENT_CHANGE)
    )
    assert outcome.payment is not None
    event = CloudEvent.model_validate(
        {
            "id": "evt_2",
            "source": "payments",
            "type": "payment.failed",
            "time": T0,
            "data": {"payment_id": outcome.payment.payment_id},
        }
    )
    await world.uow.run(lambda txn: world.billing.on_payment_event(event, txn))
    done = await world.repository.get("bus_1", "test", sid)
    assert done is not None and done.status is S.ACTIVE
    assert (done.product_id, done.recurring_pre_tax_amount) == ("pdt_basic", 1000)
    assert done.pending_plan_change is None and done.pending_payment_id is None


async def test_a_downgrade_at_the_next_billing_date_renews_at_the_new_price(world: World) -> None:
    plans = _plans(world)
    sid = await _subscribe(world, product="pdt_pro")
    request = _request(sid, product_id="pdt_mini", effective_at=EffectiveAt.NEXT_BILLING_DATE)
    preview = await plans.preview(request)
    assert preview.scheduled and preview.immediate_amount == 0
    outcome = await plans.change(request)
    assert outcome.payment is None
    change = outcome.subscription.scheduled_change
    assert change is not None and change.product_id == "pdt_mini"
    assert change.effective_at == outcome.subscription.next_billing_date
    assert outcome.subscription.product_id == "pdt_pro"
    with pytest.raises(FailedPrecondition):
        await plans.change(_request(sid, product_id="pdt_basic"))

    cancelled = await plans.cancel_scheduled("bus_1", "test", sid)
    assert cancelled.scheduled_change is None
    with pytest.raises(FailedPrecondition):
        await plans.cancel_scheduled("bus_1", "test", sid)

    await plans.change(request)
    await world.clocks.advance("bus_1", "test", seconds=29 * DAY)
    assert await world.scheduler().run_once() == 1
    renewed = await world.repository.get("bus_1", "test", sid)
    assert renewed is not None and renewed.status is S.ACTIVE
    assert (renewed.product_id, renewed.recurring_pre_tax_amount) == ("pdt_mini", 500)
    assert renewed.scheduled_change is None
    last = world.payments.calls[-1]
    assert (last.amount, last.charge_type) == (500, ChargeType.RENEWAL)
    assert len(await world.events("subscription.plan_changed")) == 1


async def test_a_scheduled_change_whose_renewal_fails_with_prevent_change_is_dropped(
    world: World,
) -> None:
    plans = _plans(world)
    sid = await _subscribe(world, product="pdt_pro")
    await plans.change(
        _request(
            sid,
            product_id="pdt_mini",
            effective_at=EffectiveAt.NEXT_BILLING_DATE,
            on_payment_failure=PREVENT_CHANGE,
        )
    )
    sub = await world.repository.get("bus_1", "test", sid)
    assert sub is not None
    await world.repository.save(sub.model_copy(update={"payment_method_id": "pm_declined"}), None)  # type: ignore[arg-type]
    await world.clocks.advance("bus_1", "test", seconds=29 * DAY)
    await world.scheduler().run_once()
    held = await world.repository.get("bus_1", "test", sid)
    assert held is not None and held.status is S.ON_HOLD
    assert (held.product_id, held.amount_due, held.scheduled_change) == ("pdt_pro", 2500, None)


@pytest.mark.parametrize(
    ("changes", "error", "field"),
    [
        ({"product_id": "pdt_nope"}, NotFound, None),
        # What the catalogue or the subscription refuses is a conflict (409), not bad input.
        ({"product_id": "pdt_usd"}, FailedPrecondition, "product_id"),
        ({"product_id": "pdt_old"}, FailedPrecondition, "product_id"),
        ({"product_id": "pdt_once"}, FailedPrecondition, "product_id"),
        ({"quantity": 0}, InvalidArgument, "quantity"),
        ({"quantity": 11}, FailedPrecondition, "quantity"),
        # Add-ons: a bad shape is 422, what the catalogue refuses is 409 (ADDON_UNAVAILABLE).
        ({"addons": (("adn_seat", 0),)}, InvalidArgument, "addons"),
        ({"addons": (("adn_seat", 1), ("adn_seat", 2))}, InvalidArgument, "addons"),
        ({"addons": (("adn_other", 1),)}, FailedPrecondition, "addons"),  # not offered
        ({"addons": (("adn_nope", 1),)}, FailedPrecondition, "addons"),  # unknown
        ({"addons": (("adn_foreign", 1),)}, FailedPrecondition, "addons"),
        ({"addons": (("adn_gone", 1),)}, FailedPrecondition, "addons"),  # archived
        ({"addons": (("adn_usd", 1),)}, FailedPrecondition, "addons"),
        ({"addons": (("adn_seat", 6),)}, FailedPrecondition, "addons"),  # over max_quantity
        ({"product_id": "pdt_basic"}, FailedPrecondition, "product_id"),
    ],
)
async def test_bad_requests_are_refused_and_write_nothing(
    world: World, changes: dict[str, Any], error: type[Exception], field: str | None
) -> None:
    plans = _plans(world)
    sid = await _subscribe(world)
    _product(world, "pdt_usd", 2000, currency="USD")
    _product(world, "pdt_old", 2000, archived=True)
    world.products.products["pdt_once"] = world.products.products["pdt_basic"].model_copy(
        update={
            "product_id": "pdt_once",
            "is_recurring": False,
            "price": OneTimePrice(price=100, currency="EUR"),
        }
    )
    world.products.add_addon("adn_seat", max_quantity=5)
    world.products.add_addon("adn_other")
    world.products.add_addon("adn_foreign", business_id="bus_2")
    world.products.add_addon("adn_gone", archived=True)
    world.products.add_addon("adn_usd", currency="USD")
    world.products.offer("pdt_pro", "adn_seat", "adn_nope", "adn_foreign", "adn_gone", "adn_usd")
    before = await world.repository.get("bus_1", "test", sid)
    calls = len(world.payments.calls)
    with pytest.raises(error) as raised:
        await plans.change(_request(sid, **changes))
    if field is not None:
        assert getattr(raised.value, "field", None) == field
    assert await world.repository.get("bus_1", "test", sid) == before
    assert len(world.payments.calls) == calls


async def test_only_an_active_subscription_changes_plan(world: World) -> None:
    plans = _plans(world)
    sid = await _subscribe(world, method="pm_declined")  # the first charge fails
    with pytest.raises(FailedPrecondition):
        await plans.preview(_request(sid))


async def test_plan_options_are_the_group_cheapest_first(world: World) -> None:
    plans = _plans(world)
    sid = await _subscribe(world)
    _product(world, "pdt_other", 100, group="solo")
    _product(world, "pdt_usd", 2000, currency="USD")
    _product(world, "pdt_old", 2000, archived=True)
    options = await plans.plan_options("bus_1", "test", sid)
    assert [o.product.product_id for o in options] == ["pdt_mini", "pdt_basic", "pdt_pro"]
    assert [o.current for o in options] == [False, True, False]
    assert [o.upgrade for o in options] == [False, False, True]
    with pytest.raises(NotFound):
        await plans.plan_options("bus_1", "test", sid, customer_id="cus_other")


async def test_a_scheduled_change_follows_a_moved_billing_date_and_a_cancel_drops_it(
    world: World,
) -> None:
    from subscriptions.subscriptions.changes import Changes

    plans = _plans(world)
    sid = await _subscribe(world, product="pdt_pro")
    await plans.change(
        _request(sid, product_id="pdt_mini", effective_at=EffectiveAt.NEXT_BILLING_DATE)
    )
    later = T0 + timedelta(days=40)
    moved = await world.service.update_subscription(
        "bus_1", "test", sid, Changes(next_billing_date=later)
    )
    assert moved.scheduled_change is not None
    assert moved.scheduled_change.effective_at == later == moved.next_billing_date
    cancelled = await world.service.update_subscription(
        "bus_1", "test", sid, Changes(cancel_now=True)
    )
    assert cancelled.scheduled_change is None


def test_the_grpc_request_reads_dodos_defaults() -> None:
    from billing.common.v1.common_pb2 import MODE_TEST
    from billing.subscriptions.v1 import subscriptions_pb2 as pb
    from subscriptions.subscriptions.convert import plan_change_request

    request = plan_change_request(
        pb.ChangePlanRequest(
            business_id="bus_1",
            mode=MODE_TEST,
            subscription_id="sub_1",
            product_id="pdt_pro",
            quantity=2,
            proration_billing_mode=pb.PRORATION_BILLING_MODE_DO_NOT_BILL,
        )
    )
    assert request.effective_at is EffectiveAt.IMMEDIATELY
    assert request.on_payment_failure == "apply_change"
    assert request.proration_mode is ProrationMode.DO_NOT_BILL
    assert request.customer_id is None
    with pytest.raises(InvalidArgument) as missing:
        plan_change_request(
            pb.ChangePlanRequest(business_id="bus_1", mode=MODE_TEST, subscription_id="sub_1")
        )
    assert missing.value.field == "proration_billing_mode"


async def test_two_different_changes_at_once_never_both_charge(world: World) -> None:
    plans = _plans(world)
    sid = await _subscribe(world)
    await world.clocks.advance("bus_1", "test", seconds=5 * DAY)
    results = await asyncio.gather(
        plans.change(_request(sid, product_id="pdt_pro")),
        plans.change(_request(sid, product_id="pdt_basic", quantity=3)),
        return_exceptions=True,
    )
    done = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(done) == 1 and len(refused) == 1
    assert isinstance(refused[0], FailedPrecondition)
    plan_charges = [k for k in world.payments.by_key if ":plan_change:" in k]
    assert len(plan_charges) == 1


async def test_a_refused_charge_gives_the_claim_back(world: World) -> None:
    plans = _plans(world)
    sid = await _subscribe(world)
    sub = await world.repository.get("bus_1", "test", sid)
    assert sub is not None
    await world.repository.save(sub.model_copy(update={"payment_method_id": "pm_gone"}), None)  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        await plans.change(_request(sid))
    after = await world.repository.get("bus_1", "test", sid)
    assert after is not None and after.plan_change_claim is None
    assert after.product_id == "pdt_basic"


async def test_a_change_during_a_trial_bills_nothing_and_keeps_the_trial_end(world: World) -> None:
    plans = _plans(world)
    _product(world, "pdt_pro", 2500)
    sub, _ = await world.service.create_subscription(
        NewSubscription(
            business_id="bus_1",
            mode="test",
            customer_id="cus_1",
            product_id="pdt_trial",
            quantity=1,
            payment_method_id="pm_ok",
        )
    )
    assert sub.status is S.ACTIVE and sub.period == -1
    world.products.products["pdt_trial"] = world.products.products["pdt_trial"].model_copy(
        update={"plan_group": "team"}
    )
    outcome = await plans.change(_request(sub.subscription_id))
    assert outcome.payment is None and outcome.applied.immediate_amount == 0
    assert outcome.subscription.next_billing_date == sub.next_billing_date
    assert outcome.subscription.recurring_pre_tax_amount == 2500
