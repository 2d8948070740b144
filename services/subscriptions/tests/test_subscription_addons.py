"""Add-ons on subscriptions: created with the plan, charged with every period (a line
each), changed with the plan under the one proration rule, refused without a write."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from billing_kit.errors import FailedPrecondition, InvalidArgument, NotFound
from subscriptions.products.models import Product, RecurringPrice
from subscriptions.subscriptions.convert import plan_option_to_proto, subscription_to_proto
from subscriptions.subscriptions.models import SubscriptionStatus as S
from subscriptions.subscriptions.payments_client import ChargeStatus, ChargeType
from subscriptions.subscriptions.plan_changes import (
    EffectiveAt,
    PlanChangeRequest,
    PlanChangesService,
)
from subscriptions.subscriptions.proration import (
    AddonSide,
    PlanSide,
    ProrationMode,
    compute,
    prorate,
)
from subscriptions.subscriptions.service import NewSubscription

from .conftest import T0, World

DAY = 86_400


# --- proration (pure) ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("plan", "seat", "storage"),
    [(1000, 300, 199), (1500, 480, 333)],  # EUR cents, JPY whole yen
    ids=["EUR", "JPY"],
)
@pytest.mark.parametrize("left", [1, 13 * DAY + 7, 30 * DAY - 1, 30 * DAY])
def test_each_addon_is_a_line_prorated_by_the_one_rule(
    plan: int, seat: int, storage: int, left: int
) -> None:
    period = 30 * DAY
    start = datetime(2026, 4, 1, tzinfo=UTC)
    end = start + timedelta(seconds=period)
    old = PlanSide("pdt_a", "A", 1, plan, period, (AddonSide("adn_seat", "Seat", 2, seat),))
    new = PlanSide(
        "pdt_a",
        "A",
        1,
        plan,
        period,
        (AddonSide("adn_seat", "Seat", 5, seat), AddonSide("adn_disk", "Disk", 1, storage)),
    )
    result = compute(
        ProrationMode.PRORATED_IMMEDIATELY,
        old,
        new,
        period_start=start,
        period_end=end,
        at=end - timedelta(seconds=left),
    )
    kinds = [(line.kind, line.product_id, line.amount) for line in result.lines]
    half_up = [
        (2 * plan * left + period) // (2 * period),
        (2 * seat * 2 * left + period) // (2 * period),
        (2 * seat * 5 * left + period) // (2 * period),
        (2 * storage * left + period) // (2 * period),
    ]
    assert kinds == [
        ("subscription", "pdt_a", -half_up[0]),
        ("addon", "adn_seat", -half_up[1]),
        ("subscription", "pdt_a", half_up[0]),
        ("addon", "adn_seat", half_up[2]),
        ("addon", "adn_disk", half_up[3]),
    ]
    # Each line is rounded on its own; the charge is the signed sum, never below zero.
    assert result.immediate_amount == max(0, sum(line.amount for line in result.lines))
    assert result.immediate_amount == half_up[2] + half_up[3] - half_up[1]


def test_full_and_difference_modes_count_the_addons() -> None:
    start = datetime(2026, 4, 1, tzinfo=UTC)
    end = start + timedelta(days=30)
    old = PlanSide("pdt_a", "A", 1, 1000, 30 * DAY, (AddonSide("adn_x", "X", 1, 300),))
    new = PlanSide("pdt_a", "A", 1, 1000, 30 * DAY, (AddonSide("adn_x", "X", 3, 300),))
    kw: dict[str, Any] = {"period_start": start, "period_end": end, "at": start}
    assert compute(ProrationMode.FULL_IMMEDIATELY, old, new, **kw).immediate_amount == 1900
    assert compute(ProrationMode.DIFFERENCE_IMMEDIATELY, old, new, **kw).immediate_amount == 600
    assert compute(ProrationMode.DO_NOT_BILL, old, new, **kw).immediate_amount == 0
    assert prorate(300, 1, 2) == 150  # half up, the rule shared with the plan line


# --- over a real database -------------------------------------------------------------------


def _catalogue(world: World) -> None:
    """``pdt_team`` (EUR 10.00 a month) offers ``adn_seat`` (3.00, at most 10) and
    ``adn_disk`` (1.99); ``adn_other`` exists but is not offered."""
    world.products.add("pdt_team", trial=0, price=1000)
    world.products.add_addon("adn_seat", price=300, max_quantity=10)
    world.products.add_addon("adn_disk", price=199)
    world.products.add_addon("adn_other", price=100)
    world.products.add_addon("adn_gone", price=100, archived=True)
    world.products.add_addon("adn_foreign", price=100, business_id="bus_2")
    world.products.add_addon("adn_usd", price=100, currency="USD")
    world.products.offer(
        "pdt_team", "adn_seat", "adn_disk", "adn_gone", "adn_foreign", "adn_usd", "adn_nope"
    )


def _new(**kw: Any) -> NewSubscription:
    base: dict[str, Any] = {
        "business_id": "bus_1",
        "mode": "test",
        "customer_id": "cus_1",
        "product_id": "pdt_team",
        "quantity": 1,
        "payment_method_id": "pm_ok",
        "addons": (("adn_seat", 2),),
    }
    return NewSubscription(**{**base, **kw})


def _plans(world: World) -> PlanChangesService:
    service = PlanChangesService(
        world.repository, world.uow, world.clocks, world.products, world.payments
    )
    world.billing.on_plan_change_payment = service.on_plan_change_payment
    return service


def _change(sid: str, **kw: Any) -> PlanChangeRequest:
    base: dict[str, Any] = {
        "business_id": "bus_1",
        "mode": "test",
        "subscription_id": sid,
        "product_id": "pdt_team",
        "quantity": 1,
        "proration_mode": ProrationMode.PRORATED_IMMEDIATELY,
    }
    return PlanChangeRequest(**{**base, **kw})


async def test_create_with_addons_charges_plan_plus_addons_with_a_line_each(world: World) -> None:
    _catalogue(world)
    sub, result = await world.service.create_subscription(
        _new(addons=(("adn_seat", 2), ("adn_disk", 1)))
    )
    assert sub.status is S.ACTIVE
    assert sub.recurring_pre_tax_amount == 1000 + 2 * 300 + 199
    assert [(a.addon_id, a.quantity, a.unit_price) for a in sub.addons] == [
        ("adn_seat", 2, 300),
        ("adn_disk", 1, 199),
    ]
    charge = world.payments.calls[-1]
    assert charge.amount == 1799 and result is not None and result.amount == 1799
    assert [(line.product_id, line.quantity, line.unit_amount) for line in charge.lines] == [
        ("pdt_team", 1, 1000),
        ("adn_seat", 2, 300),
        ("adn_disk", 1, 199),
    ]
    stored = await world.repository.get("bus_1", "test", sub.subscription_id)
    assert stored == sub
    wire = subscription_to_proto(sub)
    assert [(a.addon_id, a.name, a.quantity, a.unit_price) for a in wire.addons] == [
        ("adn_seat", "Extra adn_seat", 2, 300),
        ("adn_disk", "Extra adn_disk", 1, 199),
    ]
    (active,) = await world.events("subscription.active")
    assert active["data"]["addons"] == [
        {"addon_id": "adn_seat", "quantity": 2},
        {"addon_id": "adn_disk", "quantity": 1},
    ]


async def test_a_subscription_stored_before_addons_reads_as_none(world: World) -> None:
    _catalogue(world)
    sub, _ = await world.service.create_subscription(_new(addons=()))
    await world.db["subscriptions"].update_one(
        {"_id": sub.subscription_id}, {"$unset": {"addons": ""}}
    )
    stored = await world.repository.get("bus_1", "test", sub.subscription_id)
    assert stored is not None and stored.addons == () and stored.plan_amount == 1000


@pytest.mark.parametrize(
    ("addons", "error"),
    [
        ((("adn_seat", 0),), InvalidArgument),
        ((("adn_seat", 1), ("adn_seat", 1)), InvalidArgument),
        ((("adn_other", 1),), FailedPrecondition),  # exists, not offered by the product
        ((("adn_nope", 1),), FailedPrecondition),  # unknown
        ((("adn_foreign", 1),), FailedPrecondition),  # another business's
        ((("adn_gone", 1),), FailedPrecondition),  # archived
        ((("adn_usd", 1),), FailedPrecondition),  # another currency
        ((("adn_seat", 11),), FailedPrecondition),  # over max_quantity
    ],
)
async def test_a_refused_create_writes_and_charges_nothing(
    world: World, addons: tuple[tuple[str, int], ...], error: type[Exception]
) -> None:
    _catalogue(world)
    with pytest.raises(error) as raised:
        await world.service.create_subscription(_new(addons=addons))
    assert getattr(raised.value, "field", None) == "addons"
    assert await world.db["subscriptions"].count_documents({}) == 0
    assert world.payments.calls == [] and await world.events() == []


async def test_every_renewal_charges_plan_and_addons(world: World) -> None:
    _catalogue(world)
    sub, _ = await world.service.create_subscription(_new(addons=(("adn_seat", 3),)))
    await world.clocks.advance("bus_1", "test", seconds=29 * DAY)
    assert await world.scheduler().run_once() == 1
    renewal = world.payments.calls[-1]
    assert (renewal.charge_type, renewal.amount) == (ChargeType.RENEWAL, 1900)
    assert [(line.product_id, line.quantity, line.unit_amount) for line in renewal.lines] == [
        ("pdt_team", 1, 1000),
        ("adn_seat", 3, 300),
    ]
    renewed = await world.repository.get("bus_1", "test", sub.subscription_id)
    assert renewed is not None and renewed.period == 1 and renewed.addons == sub.addons


async def test_changing_addon_quantity_mid_period_charges_exactly_the_preview(
    world: World,
) -> None:
    _catalogue(world)
    plans = _plans(world)
    sub, _ = await world.service.create_subscription(_new(addons=(("adn_seat", 1),)))
    await world.clocks.advance("bus_1", "test", seconds=9 * DAY + 17)
    request = _change(sub.subscription_id, addons=(("adn_seat", 4), ("adn_disk", 1)))
    preview = await plans.preview(request)
    period, left = 28 * DAY, 19 * DAY - 17  # 31 Jan -> 28 Feb
    lines = [(line.kind, line.product_id, line.amount) for line in preview.lines]
    assert lines == [
        ("subscription", "pdt_team", -prorate(1000, left, period)),
        ("addon", "adn_seat", -prorate(300, left, period)),
        ("subscription", "pdt_team", prorate(1000, left, period)),
        ("addon", "adn_seat", prorate(1200, left, period)),
        ("addon", "adn_disk", prorate(199, left, period)),
    ]
    assert preview.new_plan.recurring_pre_tax_amount == 1000 + 1200 + 199

    outcome = await plans.change(request)
    assert outcome.payment is not None and outcome.payment.status is ChargeStatus.SUCCEEDED
    assert outcome.payment.amount == preview.immediate_amount
    charge = world.payments.calls[-1]
    assert sum(line.quantity * line.unit_amount for line in charge.lines) == charge.amount
    changed = outcome.subscription
    assert [(a.addon_id, a.quantity) for a in changed.addons] == [("adn_seat", 4), ("adn_disk", 1)]
    assert changed.recurring_pre_tax_amount == 2399

    # Nothing would change: the same product, quantity and add-ons (in any order) is a 409.
    with pytest.raises(FailedPrecondition) as same:
        await plans.preview(_change(sub.subscription_id, addons=(("adn_disk", 1), ("adn_seat", 4))))
    assert same.value.field == "product_id"
    # Dodo: a change without add-ons removes them (only credits: nothing to charge).
    removed = await plans.change(_change(sub.subscription_id))
    assert removed.payment is None and removed.applied.immediate_amount == 0
    assert (
        removed.subscription.addons == () and removed.subscription.recurring_pre_tax_amount == 1000
    )


async def test_a_refused_change_writes_and_charges_nothing(world: World) -> None:
    _catalogue(world)
    plans = _plans(world)
    sub, _ = await world.service.create_subscription(_new())
    before = await world.repository.get("bus_1", "test", sub.subscription_id)
    calls = len(world.payments.calls)
    for addons, error in [
        ((("adn_other", 1),), FailedPrecondition),
        ((("adn_seat", 11),), FailedPrecondition),
        ((("adn_seat", 0),), InvalidArgument),
    ]:
        with pytest.raises(error):
            await plans.change(_change(sub.subscription_id, addons=addons))
    assert await world.repository.get("bus_1", "test", sub.subscription_id) == before
    assert len(world.payments.calls) == calls


async def test_a_scheduled_change_carries_addons_and_the_renewal_applies_them(
    world: World,
) -> None:
    _catalogue(world)
    plans = _plans(world)
    sub, _ = await world.service.create_subscription(_new(addons=(("adn_seat", 2),)))
    request = _change(
        sub.subscription_id,
        addons=(("adn_disk", 2),),
        effective_at=EffectiveAt.NEXT_BILLING_DATE,
    )
    outcome = await plans.change(request)
    change = outcome.subscription.scheduled_change
    assert change is not None and outcome.payment is None
    assert [(a.addon_id, a.quantity) for a in change.addons] == [("adn_disk", 2)]
    assert change.recurring_pre_tax_amount == 1000 + 398
    wire = subscription_to_proto(outcome.subscription).scheduled_change
    assert [(a.addon_id, a.quantity) for a in wire.addons] == [("adn_disk", 2)]
    assert outcome.subscription.recurring_pre_tax_amount == 1600  # unchanged until then

    await world.clocks.advance("bus_1", "test", seconds=29 * DAY)
    assert await world.scheduler().run_once() == 1
    renewal = world.payments.calls[-1]
    assert (renewal.charge_type, renewal.amount) == (ChargeType.RENEWAL, 1398)
    assert [(line.product_id, line.quantity, line.unit_amount) for line in renewal.lines] == [
        ("pdt_team", 1, 1000),
        ("adn_disk", 2, 199),
    ]
    renewed = await world.repository.get("bus_1", "test", sub.subscription_id)
    assert renewed is not None and renewed.status is S.ACTIVE
    assert [(a.addon_id, a.quantity) for a in renewed.addons] == [("adn_disk", 2)]
    assert renewed.recurring_pre_tax_amount == 1398 and renewed.scheduled_change is None


def _grouped(world: World, pid: str, price: int, addons: list[str]) -> None:
    world.products.products[pid] = Product(
        product_id=pid,
        business_id="bus_1",
        mode="test",
        name=pid,
        price=RecurringPrice(
            price=price,
            currency="EUR",
            payment_frequency_count=1,
            payment_frequency_interval="Month",
            subscription_period_count=1,
            subscription_period_interval="Year",
        ),
        tax_category="saas",
        is_recurring=True,
        plan_group="team",
        addons=addons,
        created_at=T0,
        updated_at=T0,
    )


async def test_plan_options_list_each_products_live_addons_in_one_read(world: World) -> None:
    _catalogue(world)
    plans = _plans(world)
    _grouped(world, "pdt_small", 500, ["adn_disk", "adn_gone", "adn_seat"])
    _grouped(world, "pdt_big", 2000, ["adn_usd", "adn_seat", "adn_foreign"])
    sub, _ = await world.service.create_subscription(_new(product_id="pdt_small", addons=()))
    reads = world.products.addon_reads
    options = await plans.plan_options("bus_1", "test", sub.subscription_id)
    assert world.products.addon_reads == reads + 1
    offered = {o.product.product_id: [a.addon_id for a in o.addons] for o in options}
    # Archived, other-currency and other-business add-ons are left out; the order is the product's.
    assert offered == {"pdt_small": ["adn_disk", "adn_seat"], "pdt_big": ["adn_seat"]}
    wire = plan_option_to_proto(options[-1])
    assert [(a.addon_id, a.unit_price, a.max_quantity) for a in wire.addons] == [
        ("adn_seat", 300, 10)
    ]
    with pytest.raises(NotFound):
        await plans.plan_options("bus_1", "test", sub.subscription_id, customer_id="cus_other")
