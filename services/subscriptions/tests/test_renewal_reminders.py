"""subscription.renewal_reminder: once per period, N days (per business) before the
renewal, following the business's test clock, with two scheduler replicas."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from subscriptions.subscriptions.models import Subscription, SubscriptionStatus
from subscriptions.subscriptions.reminders import RenewalReminders
from subscriptions.subscriptions.renewals import RenewalScheduler

from .conftest import T0, World

pytestmark = pytest.mark.integration
DAY = 24 * 3600
REMINDER = "subscription.renewal_reminder"


class DaysPerBusiness:
    """Reminder days as auth would answer them (3 unless set)."""

    def __init__(self, **days: int) -> None:
        self.by_business = days

    async def days(self, business_id: str) -> int | None:
        return self.by_business.get(business_id, 3)


def subscription(
    index: int, *, business_id: str = "bus_1", mode: str = "live", **fields: Any
) -> Subscription:
    values: dict[str, Any] = {
        "subscription_id": f"sub_{business_id}_{index:04d}",
        "business_id": business_id,
        "mode": mode,
        "customer_id": f"cus_{index}",
        "product_id": "pdt_monthly",
        "product_name": "Pro Plan",
        "status": SubscriptionStatus.ACTIVE,
        "recurring_pre_tax_amount": 1000,
        "currency": "EUR",
        "created_at": T0 - timedelta(days=20),
        "billing_anchor": T0 - timedelta(days=20),
        "previous_billing_date": T0 - timedelta(days=20),
        # Renews in ten days (a 30-day period for simplicity).
        "next_billing_date": T0 + timedelta(days=10),
        "expires_at": T0 + timedelta(days=365),
        "payment_method_id": "pm_ok",
    }
    values.update(fields)
    return Subscription(**values)


async def store(world: World, *subs: Subscription) -> None:
    await world.db["subscriptions"].insert_many(
        [{**s.model_dump(mode="python"), "_id": s.subscription_id} for s in subs]
    )
    await world.repository.backfill_leases()


def scheduler(world: World, days: DaysPerBusiness | None = None) -> RenewalScheduler:
    s = RenewalScheduler(
        world.repository,
        world.uow,
        world.clocks,
        world.payments,
        clock=world.real,
        reminders=RenewalReminders(world.repository, world.uow, days or DaysPerBusiness()),
    )
    world.schedulers.append(s)
    return s


async def reminded(world: World) -> Counter[str]:
    return Counter(e["data"]["subscription_id"] for e in await world.events(REMINDER))


async def test_reminded_once_three_days_before_and_again_next_period(world: World) -> None:
    sub = subscription(1)
    await store(world, sub)
    replica = scheduler(world)

    world.real.advance(6 * DAY)  # four days before: too early
    await replica.run_once()
    assert await reminded(world) == Counter()

    world.real.advance(DAY + 60)  # just inside three days
    await replica.run_once()
    await replica.run_once()
    assert await reminded(world) == Counter({sub.subscription_id: 1})
    [event] = await world.events(REMINDER)
    assert event["data"]["next_billing_date"].startswith(
        (T0 + timedelta(days=10)).date().isoformat()
    )
    assert event["data"]["product_name"] == "Pro Plan"
    assert event["data"]["recurring_pre_tax_amount"] == 1000

    # An unrelated save in between (e.g. a new payment method) keeps the marker.
    current = await world.repository.get(sub.business_id, sub.mode, sub.subscription_id)
    assert current is not None
    await world.uow.run(
        lambda txn: world.repository.save(current.model_copy(update={"metadata": {"a": "b"}}), txn)
    )
    await replica.run_once()
    assert await reminded(world) == Counter({sub.subscription_id: 1})

    # The renewal, then the next period's reminder: once more.
    world.real.advance(3 * DAY)
    await replica.run_once()
    assert len(await world.events("subscription.renewed")) == 1
    renewed = await world.repository.get(sub.business_id, sub.mode, sub.subscription_id)
    assert renewed is not None and renewed.next_billing_date is not None
    world.real.advance((renewed.next_billing_date - world.real.now()).total_seconds() - 2 * DAY)
    await replica.run_once()
    await replica.run_once()
    assert await reminded(world) == Counter({sub.subscription_id: 2})


async def test_days_are_per_business_and_scheduled_cancels_are_not_reminded(
    world: World,
) -> None:
    weekly = subscription(1, business_id="bus_weekly")
    default = subscription(2)
    ending = subscription(3, cancel_at_next_billing_date=True)
    on_hold = subscription(4, status=SubscriptionStatus.ON_HOLD)
    await store(world, weekly, default, ending, on_hold)
    replica = scheduler(world, DaysPerBusiness(bus_weekly=7))

    world.real.advance(3 * DAY + 60)  # 7 days before the renewals
    await replica.run_once()
    assert await reminded(world) == Counter({weekly.subscription_id: 1})
    world.real.advance(4 * DAY)
    await replica.run_once()
    assert await reminded(world) == Counter({weekly.subscription_id: 1, default.subscription_id: 1})


async def test_follows_the_business_test_clock(world: World) -> None:
    clocked = subscription(1, business_id="bus_clock", mode="test")
    live = subscription(2, business_id="bus_clock", mode="live")
    await store(world, clocked, live)
    replica = scheduler(world)
    await world.clocks.advance("bus_clock", "test", seconds=8 * DAY)
    await replica.run_once()
    # Only the test-mode subscription lives on the moved clock.
    assert await reminded(world) == Counter({clocked.subscription_id: 1})


async def test_two_replicas_remind_each_subscription_exactly_once(world: World) -> None:
    subs = [subscription(i) for i in range(120)]
    await store(world, *subs)
    world.real.advance(8 * DAY)
    first, second = scheduler(world), scheduler(world)
    await asyncio.gather(first.remind(), second.remind(), first.remind())
    counts = await reminded(world)
    assert len(counts) == len(subs) and set(counts.values()) == {1}
