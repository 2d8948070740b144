"""Two scheduler replicas renew 200 due subscriptions; one is SIGKILLed mid-run (issue 11).

The must-show line: "Two scheduler replicas over 200 due subscriptions charge
each exactly once; with one replica SIGKILLed mid-run the other finishes them,
still once each." Everything is real and out of process: SecantusDB, RabbitMQ,
payments, and two ``python -m subscriptions`` processes over one database (the
stack's own, restarted with a short poll and lease, and a second replica started
as ``bench/subscriptions_bench.py`` starts one). The stack is this module's own:
the test kills a service and changes its settings.

The subscriptions are created through the merchant API with a ``4242`` card,
the business's test clock jumps past their renewal, and once payments shows
some but not all renewals succeeded one replica gets SIGKILL. What must hold
is read from payments (its API and its own collection) and the subscriptions API.
"""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from devstack import Stack
from devstack.portal import PortalBusiness, create_portal_business
from devstack.processes import ManagedProcess, python_module
from devstack.topology import free_ports
from dodopayments import AsyncDodoPayments
from prometheus_client.parser import text_string_to_metric_families
from pymongo import AsyncMongoClient

from .test_subscriptions_api import BILLING, MONTHLY, Cards

pytestmark = pytest.mark.e2e

COUNT = 200
DAY = 86_400
# A claim held by the killed replica is taken over once its lease runs out: the
# shortest lease the service accepts, and a poll short enough that the second
# replica (which no clock advance wakes) starts at once.
LEASE_SECONDS = 5
POLL_SECONDS = 0.5
# Kill once this many renewals succeeded: enough that both replicas were at work.
KILL_AFTER = 40
FINISH_WITHIN_SECONDS = 120.0
CREATE_CONCURRENCY = 4


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def renewal_stack(
    tmp_path_factory: pytest.TempPathFactory, amqp_url: str
) -> AsyncIterator[Stack]:
    """A stack whose subscriptions service renews on a short poll and lease."""
    stack = Stack.isolated(Path(tmp_path_factory.mktemp("renewal-sigkill")), amqp_url=amqp_url)
    await stack.start()
    try:
        await stack.stop_service("subscriptions")
        stack.services["subscriptions"].env |= renewal_settings()
        await stack.restart_service("subscriptions")
        yield stack
    finally:
        await stack.stop()


def renewal_settings() -> dict[str, str]:
    """The scheduler settings both replicas run with."""
    return {
        "SUBSCRIPTIONS_RENEWAL_POLL_SECONDS": str(POLL_SECONDS),
        "SUBSCRIPTIONS_RENEWAL_LEASE_SECONDS": str(LEASE_SECONDS),
    }


@pytest_asyncio.fixture(loop_scope="session")
async def second_replica(renewal_stack: Stack) -> AsyncIterator[tuple[ManagedProcess, str]]:
    """A second ``python -m subscriptions`` over the same database: (process, ops URL)."""
    stack = renewal_stack
    env = dict(stack.services["subscriptions"].env)
    grpc_port, ops_port = free_ports(2)
    env["SUBSCRIPTIONS_GRPC_PORT"] = str(grpc_port)
    env["SUBSCRIPTIONS_OPS_PORT"] = str(ops_port)
    env.pop("BILLING_TRACES_FILE", None)
    replica = ManagedProcess(
        "subscriptions-2",
        python_module("subscriptions"),
        env=env,
        log_path=stack.log_dir / "subscriptions-2.log",
        cwd=stack.cwd,
    )
    ops_url = f"http://127.0.0.1:{ops_port}"
    await replica.start()
    try:
        deadline = time.monotonic() + 60
        async with aiohttp.ClientSession() as http:
            while True:
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"{ops_url}/readyz") as reply:
                        if reply.status == 200:
                            break
                assert replica.running, f"second replica exited:\n{replica.tail()}"
                assert time.monotonic() < deadline, f"second replica not ready:\n{replica.tail()}"
                await asyncio.sleep(0.2)
        yield replica, ops_url
    finally:
        await replica.stop(15)


async def charges_sent(http: aiohttp.ClientSession, ops_url: str) -> float:
    """ChargePaymentMethod calls this subscriptions process has made (its /metrics)."""
    async with http.get(f"{ops_url}/metrics") as reply:
        text = await reply.text()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "rpc_client_duration_seconds_count"
        and sample.labels.get("method", "").endswith("ChargePaymentMethod")
    )


def one_month_later(day: datetime) -> datetime:
    """The same day of the next month (clamped to its last day), as a monthly period moves."""
    year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
    return day.replace(
        year=year, month=month, day=min(day.day, calendar.monthrange(year, month)[1])
    )


async def create_subscriptions(stack: Stack, shop: PortalBusiness, sdk: AsyncDodoPayments) -> str:
    """``COUNT`` monthly subscriptions of one customer paying with a 4242 card; the customer."""
    email = f"renew-{uuid.uuid4().hex[:8]}@example.com"
    customer = await sdk.customers.create(email=email, name="Renewing Customer")
    async with aiohttp.ClientSession() as http:
        card = await Cards(stack, shop.business_id, http).save(
            customer.customer_id, "4242424242424242"
        )
    product = await sdk.products.create(name="Monthly", tax_category="saas", price=MONTHLY)
    left = iter(range(COUNT))

    async def worker() -> None:
        for _ in left:
            sub = await sdk.subscriptions.create(
                billing=BILLING,
                customer={"customer_id": customer.customer_id},
                product_id=product.product_id,
                quantity=1,
                extra_body={"payment_method_id": card},
            )
            assert sub.subscription_id

    await asyncio.gather(*(worker() for _ in range(CREATE_CONCURRENCY)))
    return customer.customer_id


# The SDK marks subscriptions.create deprecated (Dodo prefers checkouts); it is the API under test.
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
async def test_sigkilled_replica_leaves_every_renewal_charged_exactly_once(
    renewal_stack: Stack, second_replica: tuple[ManagedProcess, str]
) -> None:
    stack = renewal_stack
    # The second replica dies; the stack's own survives (the gateway's subscriptions API
    # talks to it, and the final checks read through that API).
    victim, victim_ops = second_replica
    survivor, survivor_ops = stack.services["subscriptions"], stack.ops_url("subscriptions")
    async with stack.auth_admin() as admin:
        shop = await create_portal_business(admin, f"Renewals {uuid.uuid4().hex[:6]}")
    db: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongo_url)
    prefix = stack.external_mongo[1] if stack.external_mongo else ""
    payments = db[f"{prefix}payments"]["payments"]
    renewals = {"business_id": shop.business_id, "charge_type": "renewal"}
    async with (
        AsyncDodoPayments(
            bearer_token=shop.test_key, base_url=stack.gateway_url, max_retries=0
        ) as sdk,
        aiohttp.ClientSession() as http,
    ):
        try:
            customer_id = await create_subscriptions(stack, shop, sdk)
            before = {
                s.subscription_id: s
                async for s in sdk.subscriptions.list(customer_id=customer_id, page_size=100)
            }
            assert len(before) == COUNT and {s.status for s in before.values()} == {"active"}
            assert await payments.count_documents(renewals) == 0

            # Creating charged the first periods: count the renewal charges from here.
            sent_before = {
                "victim": await charges_sent(http, victim_ops),
                "survivor": await charges_sent(http, survivor_ops),
            }
            async with http.post(
                f"{stack.gateway_url}/test-helpers/clock/advance",
                json={"seconds": 32 * DAY},
                headers={"Authorization": f"Bearer {shop.test_key}"},
            ) as reply:
                assert reply.status == 200, await reply.text()

            # Mid-run: some renewals succeeded, not all, and both replicas charged.
            deadline = time.monotonic() + FINISH_WITHIN_SECONDS
            while (done := await payments.count_documents({**renewals, "status": "succeeded"})) < (
                KILL_AFTER
            ):
                assert time.monotonic() < deadline, f"only {done} renewals before the kill"
                await asyncio.sleep(0.05)
            sent_by = {
                "victim": await charges_sent(http, victim_ops) - sent_before["victim"],
                "survivor": await charges_sent(http, survivor_ops) - sent_before["survivor"],
            }
            assert victim.pid is not None
            os.kill(victim.pid, signal.SIGKILL)
            code = await victim.wait(10)
            done_at_kill = await payments.count_documents({**renewals, "status": "succeeded"})
            # SecantusDB never aborts a transaction a dead client left open; MongoDB's
            # reaper would after 60 s. killAllSessions stands in for it.
            await db.admin.command("killAllSessions", [])

            assert code == -signal.SIGKILL, f"the replica exited with {code}, not by SIGKILL"
            assert KILL_AFTER <= done_at_kill < COUNT, f"{done_at_kill} renewed at the kill"
            assert all(sent_by.values()), f"charges sent before the kill: {sent_by}"

            while (done := await payments.count_documents({**renewals, "status": "succeeded"})) < (
                COUNT
            ):
                assert survivor.running, f"the survivor exited:\n{survivor.tail()}"
                assert time.monotonic() < deadline, f"{done}/{COUNT} renewed\n{survivor.tail()}"
                await asyncio.sleep(0.5)
            # The survivor retakes any lease the dead replica held; give a stray second
            # charge the time to appear before counting.
            await asyncio.sleep(LEASE_SECONDS + 2 * POLL_SECONDS)

            # payments' own collection: one renewal charge per subscription, all succeeded.
            per_sub: Counter[str] = Counter()
            statuses: Counter[str] = Counter()
            async for doc in payments.find(renewals, {"subscription_id": 1, "status": 1}):
                per_sub[doc["subscription_id"]] += 1
                statuses[doc["status"]] += 1
            assert statuses == {"succeeded": COUNT}
            assert per_sub == Counter(dict.fromkeys(before, 1))

            # The merchant API: each subscription has its first payment and one renewal.
            listed = Counter(
                [
                    p.subscription_id
                    async for p in sdk.payments.list(
                        customer_id=customer_id, status="succeeded", page_size=100
                    )
                ]
            )
            assert listed == Counter(dict.fromkeys(before, 2))

            # Each subscription renewed once: active, its period moved by one month.
            after = {
                s.subscription_id: s
                async for s in sdk.subscriptions.list(customer_id=customer_id, page_size=100)
            }
            assert after.keys() == before.keys()
            moved = [
                sid
                for sid, s in after.items()
                if s.status == "active"
                and s.previous_billing_date == before[sid].next_billing_date
                and s.next_billing_date == one_month_later(before[sid].next_billing_date)
            ]
            assert len(moved) == COUNT, [
                (s.subscription_id, s.status, s.previous_billing_date, s.next_billing_date)
                for s in after.values()
                if s.subscription_id not in moved
            ][:5]
        finally:
            await db.close()
