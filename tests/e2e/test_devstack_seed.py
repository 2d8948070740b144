"""`make run` seeds demo data through the public APIs; running it again reuses it."""

from __future__ import annotations

import json

import pytest
from devstack import Stack
from devstack.demo_catalogue import PLAN_GROUP, PLANS, SUBSCRIBERS
from devstack.seed import DEMO_CUSTOMERS

pytestmark = pytest.mark.e2e


async def test_seeding_twice_reuses_business_key_and_customers(stack: Stack) -> None:
    first = await stack.seed_demo()
    second = await stack.seed_demo()

    assert second.business_id == first.business_id
    assert second.api_key_secret == first.api_key_secret
    assert second.customer_ids == first.customer_ids
    assert len(set(first.customer_ids)) == len(DEMO_CUSTOMERS)
    saved = json.loads((stack.data_dir / "demo.json").read_text())
    assert saved["business_id"] == first.business_id
    assert (stack.data_dir / "demo.json").stat().st_mode & 0o077 == 0


async def test_seeded_key_lists_the_demo_customers(stack: Stack) -> None:
    from dodopayments import AsyncDodoPayments

    demo = await stack.seed_demo()
    async with AsyncDodoPayments(
        bearer_token=demo.api_key_secret, base_url=stack.gateway_url, max_retries=0
    ) as client:
        page = await client.customers.list(page_size=100)

    assert sorted(c.email for c in page.items) == sorted(email for email, _ in DEMO_CUSTOMERS)


async def test_a_lost_demo_key_is_replaced(stack: Stack) -> None:
    first = await stack.seed_demo()
    state = stack.data_dir / "demo.json"
    saved = json.loads(state.read_text())
    saved["api_key_secret"] = "sk_test_forgotten"
    state.write_text(json.dumps(saved))

    second = await stack.seed_demo()

    assert second.business_id == first.business_id
    assert second.api_key_secret not in ("sk_test_forgotten", "")


async def test_the_demo_has_plans_an_addon_and_subscribers(stack: Stack) -> None:
    from dodopayments import AsyncDodoPayments

    await stack.seed_demo()
    demo = await stack.seed_demo()  # twice: nothing is created again
    async with AsyncDodoPayments(
        bearer_token=demo.api_key_secret, base_url=stack.gateway_url, max_retries=0
    ) as client:
        products = (await client.products.list(page_size=100)).items
        plans = {p.name: (await client.products.retrieve(p.product_id)).to_dict() for p in products}
        subscriptions = (await client.subscriptions.list(page_size=100)).items

    by_name = {p.name: p for p in products}
    assert sorted(by_name) == sorted(name for name, _, _ in PLANS)
    assert {plans[name]["plan_group"] for name in by_name} == {PLAN_GROUP}
    assert len(plans["Pro"]["addons"]) == 1 and plans["Starter"]["addons"] == []
    ada, grace = demo.customer_ids[0], demo.customer_ids[1]
    held = {s.customer.customer_id: s for s in subscriptions}
    assert len(subscriptions) == len(SUBSCRIBERS) == 2
    assert held[ada].status == "active" and held[ada].product_id == by_name["Pro"].product_id
    assert held[ada].recurring_pre_tax_amount == 2900
    assert held[grace].status == "active"
