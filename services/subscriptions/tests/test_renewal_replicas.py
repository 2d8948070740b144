"""Two scheduler replicas over the same due subscriptions charge each exactly once."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import pytest
from subscriptions.subscriptions.models import Subscription, SubscriptionStatus

from .conftest import T0, World

pytestmark = pytest.mark.integration
COUNT = 200


def _due(index: int) -> Subscription:
    return Subscription(
        subscription_id=f"sub_{index:04d}",
        business_id="bus_1",
        mode="live",
        customer_id=f"cus_{index}",
        product_id="pdt_monthly",
        status=SubscriptionStatus.ACTIVE,
        recurring_pre_tax_amount=1000,
        currency="EUR",
        created_at=T0 - timedelta(days=31),
        billing_anchor=T0 - timedelta(days=31),
        previous_billing_date=T0 - timedelta(days=31),
        next_billing_date=T0 - timedelta(days=31) + timedelta(days=31),
        expires_at=T0 + timedelta(days=365),
        payment_method_id="pm_ok",
    )


async def test_two_replicas_charge_each_due_subscription_exactly_once(world: World) -> None:
    subs = [_due(i) for i in range(COUNT)]
    await world.db["subscriptions"].insert_many(
        [
            {**s.model_dump(mode="python"), "_id": s.subscription_id, "status": "active"}
            for s in subs
        ]
    )
    first, second = world.scheduler(), world.scheduler()
    handled = await asyncio.gather(first.run_once(), second.run_once())

    assert sum(handled) == COUNT
    assert all(handled), "both replicas took part"
    charges = Counter(call.subscription_id for call in world.payments.calls)
    assert len(charges) == COUNT and set(charges.values()) == {1}
    renewed = await world.events("subscription.renewed")
    assert Counter(e["data"]["subscription_id"] for e in renewed) == Counter(
        {s.subscription_id: 1 for s in subs}
    )
    # Nothing is due any more: a third pass charges nothing.
    assert await world.scheduler().run_once() == 0


async def test_a_replica_that_dies_after_charging_leaves_one_payment_applied_once(
    world: World,
) -> None:
    sub = _due(0)
    await world.db["subscriptions"].insert_one(
        {**sub.model_dump(mode="python"), "_id": sub.subscription_id, "status": "active"}
    )
    await world.repository.backfill_leases()  # as a scheduler does when it starts
    dying = world.scheduler()
    claimed = await world.repository.claim_due(
        due_by=T0,
        real_now=T0,
        lease_until=T0 + dying.lease,
        owner=dying.owner,
    )
    assert claimed is not None
    # It charged, then the process died before writing the outcome.
    await world.payments.charge(dying._renewal_charge(claimed))
    survivor = world.scheduler()
    assert await survivor.run_once() == 0, "the lease still holds"

    world.real.advance(dying.lease.total_seconds() + 1)
    assert await survivor.run_once() == 1
    assert len(world.payments.charged(sub.subscription_id)) == 1
    assert len(await world.events("subscription.renewed")) == 1
