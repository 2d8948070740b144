"""Pause and resume over a real database, the renewal scheduler and the test clock:
nothing is charged while paused, resume moves the next charge by the documented rule,
each change emits its event once, and illegal changes are refused with nothing written."""

from __future__ import annotations

from datetime import timedelta

import pytest
from billing_kit.errors import FailedPrecondition, InvalidArgument, NotFound, Reason
from subscriptions.subscriptions.changes import Changes
from subscriptions.subscriptions.models import SubscriptionStatus as S
from subscriptions.subscriptions.service import NewSubscription

from .conftest import T0, World

pytestmark = pytest.mark.integration
DAY = 86_400
FIRST_DUE = T0 + timedelta(days=28)  # 31 Jan -> 28 Feb


async def _subscribe(world: World) -> str:
    sub, _ = await world.service.create_subscription(
        NewSubscription(
            business_id="bus_1",
            mode="test",
            customer_id="cus_1",
            product_id="pdt_monthly",
            quantity=1,
            payment_method_id="pm_ok",
        )
    )
    return sub.subscription_id


async def _change(world: World, sid: str, changes: Changes, customer: str | None = None) -> S:
    sub = await world.service.update_subscription("bus_1", "test", sid, changes, customer)
    return sub.status


async def test_paused_past_the_renewal_date_charges_nothing_and_resume_credits_the_rest(
    world: World,
) -> None:
    sid = await _subscribe(world)
    await world.clocks.advance("bus_1", "test", seconds=10 * DAY)  # 18 days of the period left
    assert await _change(world, sid, Changes(pause=True)) is S.PAUSED

    await world.clocks.advance("bus_1", "test", seconds=50 * DAY)  # well past 28 Feb
    assert await world.scheduler().run_once() == 0
    paused = await world.service.get_subscription("bus_1", "test", sid)
    assert paused.status is S.PAUSED and paused.next_billing_date == FIRST_DUE
    assert len(world.payments.charged(sid)) == 1  # only the first period

    resumed_at = T0 + timedelta(days=60)
    resumed = await world.service.update_subscription("bus_1", "test", sid, Changes(resume=True))
    assert resumed.status is S.ACTIVE and resumed.paused_at is None
    assert resumed.next_billing_date == resumed_at + timedelta(days=18)
    assert await world.scheduler().run_once() == 0  # not due yet

    await world.clocks.advance("bus_1", "test", seconds=18 * DAY)
    assert await world.scheduler().run_once() == 1
    renewed = await world.service.get_subscription("bus_1", "test", sid)
    assert renewed.previous_billing_date == resumed_at + timedelta(days=18)
    charges = world.payments.charged(sid)
    assert len(charges) == 2 and charges[-1].amount == 1000
    assert [e["type"] for e in await world.events()] == [
        "subscription.active",
        "subscription.paused",
        "subscription.unpaused",
        "subscription.renewed",
    ]
    [paused_event] = await world.events("subscription.paused")
    assert paused_event["data"]["status"] == "paused"
    assert paused_event["data"]["previous_status"] == "active"
    assert paused_event["data"]["paused_at"] is not None
    [unpaused_event] = await world.events("subscription.unpaused")
    assert unpaused_event["data"]["paused_at"] is None


async def test_illegal_pause_and_resume_are_conflicts_and_write_nothing(world: World) -> None:
    sid = await _subscribe(world)
    with pytest.raises(FailedPrecondition) as resume_active:
        await _change(world, sid, Changes(resume=True))
    assert resume_active.value.reason is Reason.SUBSCRIPTION_STATE_CONFLICT
    await _change(world, sid, Changes(pause=True))
    with pytest.raises(FailedPrecondition):
        await _change(world, sid, Changes(pause=True))
    with pytest.raises(InvalidArgument):
        await _change(world, sid, Changes(resume=True, metadata={"a": "b"}))
    with pytest.raises(FailedPrecondition):  # the billing date of a paused one stays put
        await _change(world, sid, Changes(next_billing_date=T0 + timedelta(days=90)))
    got = await world.service.get_subscription("bus_1", "test", sid)
    assert got.status is S.PAUSED and got.metadata == {}
    assert len(await world.events("subscription.paused")) == 1
    assert await world.events("subscription.unpaused") == []


async def test_only_the_owning_customer_pauses_from_the_portal(world: World) -> None:
    sid = await _subscribe(world)
    with pytest.raises(NotFound):
        await _change(world, sid, Changes(pause=True), customer="cus_other")
    assert await _change(world, sid, Changes(pause=True), customer="cus_1") is S.PAUSED
    assert await _change(world, sid, Changes(resume=True), customer="cus_1") is S.ACTIVE


async def test_a_pause_waits_for_a_renewal_in_flight(world: World) -> None:
    sid = await _subscribe(world)
    await world.clocks.advance("bus_1", "test", seconds=28 * DAY)
    # A scheduler replica has claimed the due subscription and is charging it.
    now = await world.clocks.now("bus_1", "test")
    claimed = await world.repository.claim_due(
        due_by=now,
        real_now=world.real.now(),
        lease_until=world.real.now() + timedelta(seconds=120),
        owner="replica-a",
        business=("bus_1", "test"),
    )
    assert claimed is not None
    with pytest.raises(FailedPrecondition) as busy:
        await _change(world, sid, Changes(pause=True))
    assert busy.value.reason is Reason.SUBSCRIPTION_STATE_CONFLICT
    await world.repository.release(sid, "replica-a")
    assert await _change(world, sid, Changes(pause=True)) is S.PAUSED


async def test_a_scheduled_cancel_takes_effect_at_the_moved_date_after_resume(
    world: World,
) -> None:
    sid = await _subscribe(world)
    await _change(world, sid, Changes(cancel_at_next_billing_date=True))
    await _change(world, sid, Changes(pause=True))  # 28 days left
    await world.clocks.advance("bus_1", "test", seconds=40 * DAY)
    assert await world.scheduler().run_once() == 0
    assert (await world.service.get_subscription("bus_1", "test", sid)).status is S.PAUSED
    await _change(world, sid, Changes(resume=True))
    await world.clocks.advance("bus_1", "test", seconds=28 * DAY)
    await world.scheduler().run_once()
    got = await world.service.get_subscription("bus_1", "test", sid)
    assert got.status is S.CANCELLED
    assert got.cancelled_at == T0 + timedelta(days=40 + 28)
    assert len(world.payments.charged(sid)) == 1
