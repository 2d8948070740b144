"""License keys over a real database: issuing on purchases, activation limits under
concurrency, and the validation rules on the business's test clock."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
import pytest_asyncio
from billing.auth.v1 import auth_pb2, auth_pb2_grpc
from billing_kit.errors import DomainError, Reason
from billing_kit.events import CloudEvent
from billing_kit.mongo import ensure_indexes, run_in_transaction
from billing_kit.scoping import make_page
from billing_kit.sealing import DEVELOPMENT_SEALING_KEY, Sealer
from subscriptions.checkouts.models import CartLine, Checkout
from subscriptions.checkouts.repository import CHECKOUT_INDEXES, CheckoutsRepository
from subscriptions.licenses.consumers import LicenseIssuing
from subscriptions.licenses.models import LICENSE_KEY_CREATED
from subscriptions.licenses.rate_limits import INDEXES as RATE_INDEXES
from subscriptions.licenses.rate_limits import LicenseRateLimits, RateLimiter
from subscriptions.licenses.repository import INDEXES, LICENSE_KEYS, LicensesRepository, Scope
from subscriptions.licenses.service import KeyChanges, LicensesService, merchant
from subscriptions.products.models import LicenseKeyDuration as ProductDuration
from subscriptions.products.models import OneTimePrice, Product
from subscriptions.subscriptions.models import Subscription, SubscriptionStatus
from subscriptions.subscriptions.reminders import AuthReminderDays

from .conftest import T0, World

KEY_FORMAT = re.compile(r"^[A-Z2-7]{5}(-[A-Z2-7]{5}){5}$")


def _product(product_id: str, *, limit: int | None = 5, days: int | None = None) -> Product:
    return Product(
        product_id=product_id,
        business_id="bus_1",
        mode="test",
        name="Desktop app",
        price=OneTimePrice(price=4900, currency="EUR"),
        tax_category="saas",
        is_recurring=False,
        license_key_enabled=True,
        license_key_activations_limit=limit,
        license_key_duration=ProductDuration(count=days, interval="Day") if days else None,
        license_key_activation_message="Welcome aboard",
        created_at=T0,
        updated_at=T0,
    )


class BusinessGrace:
    """auth's per-business license_grace_days, as a stand-in (None = the default)."""

    def __init__(self) -> None:
        self.days: dict[str, int] = {}
        self.asked = 0

    async def license_grace_days(self, business_id: str) -> int | None:
        self.asked += 1
        return self.days.get(business_id)


class Licenses:
    """The license aggregate over the world's database."""

    def __init__(self, world: World) -> None:
        self.grace = BusinessGrace()
        self.world = world
        self.sealer = Sealer(DEVELOPMENT_SEALING_KEY)
        client = world.uow.client
        self.service = LicensesService(
            LicensesRepository(world.db),
            world.repository,
            world.clocks,
            world.products,
            self.sealer,
            world.db,
            lambda work: run_in_transaction(client, work),
            grace=timedelta(days=7),
            grace_days=self.grace,
        )
        self.checkouts = CheckoutsRepository(world.db)
        self.issuing = LicenseIssuing(self.service, self.checkouts, world.repository)

    async def deliver(self, handler: Any, event_type: str, data: dict[str, Any]) -> None:
        event = CloudEvent(id=str(uuid.uuid4()), source="test", type=event_type, time=T0, data=data)
        await run_in_transaction(self.world.uow.client, lambda txn: handler(event, txn))

    async def subscription(self, quantity: int = 1) -> Subscription:
        """An active monthly subscription to ``pdt_sub`` started at T0 (paid until T0+1 month)."""
        self.world.products.products["pdt_sub"] = _product("pdt_sub").model_copy(
            update={"is_recurring": True}
        )
        sub = Subscription(
            subscription_id="sub_" + uuid.uuid4().hex[:12],
            business_id="bus_1",
            mode="test",
            customer_id="cus_1",
            product_id="pdt_sub",
            status=SubscriptionStatus.ACTIVE,
            recurring_pre_tax_amount=1000,
            currency="EUR",
            next_billing_date=datetime(2026, 2, 28, 9, 0, tzinfo=UTC),
            created_at=T0,
            quantity=quantity,
            billing_anchor=T0,
        )
        await self.world.repository.insert(sub)
        return sub

    async def set_status(self, sub: Subscription, status: SubscriptionStatus) -> None:
        await self.world.db["subscriptions"].update_one(
            {"_id": sub.subscription_id}, {"$set": {"status": status.value}}
        )

    async def keys(self) -> list[dict[str, Any]]:
        return [doc async for doc in self.world.db[LICENSE_KEYS].find({})]

    async def issued_key(self, **product: Any) -> str:
        """A one-time purchase of one unit of a fresh product; the plaintext key."""
        product_id = "pdt_" + uuid.uuid4().hex[:8]
        self.world.products.products[product_id] = _product(product_id, **product)
        await self.checkout(product_id, 1, payment_id="pay_" + product_id)
        docs = await self.world.db[LICENSE_KEYS].find({"product_id": product_id}).to_list()
        return self.sealer.open(docs[0]["key_sealed"])

    async def checkout(self, product_id: str, quantity: int, *, payment_id: str) -> None:
        session_id = "cks_" + uuid.uuid4().hex[:8]
        await self.checkouts.insert(
            Checkout(
                session_id=session_id,
                business_id="bus_1",
                mode="test",
                customer_id="cus_1",
                lines=[
                    CartLine(
                        product_id=product_id,
                        quantity=quantity,
                        amount=4900 * quantity,
                        currency="EUR",
                    )
                ],
                total_amount=4900 * quantity,
                currency="EUR",
                created_at=T0,
            )
        )
        await self.deliver(
            self.issuing.on_payment_succeeded,
            "payment.succeeded",
            {
                "payment_id": payment_id,
                "business_id": "bus_1",
                "mode": "test",
                "charge_type": "new",
                "metadata": {"checkout_session_id": session_id},
            },
        )


@pytest_asyncio.fixture
async def lic(world: World) -> Licenses:
    await ensure_indexes(world.db, {**INDEXES, **CHECKOUT_INDEXES})
    return Licenses(world)


SCOPE = Scope("bus_1", "test")


class TestIssuing:
    async def test_a_checkout_issues_one_sealed_key_per_unit_once(self, lic: Licenses) -> None:
        lic.world.products.products["pdt_app"] = _product("pdt_app")
        await lic.checkout("pdt_app", 3, payment_id="pay_1")
        docs = await lic.keys()
        assert len(docs) == 3
        plain = [lic.sealer.open(d["key_sealed"]) for d in docs]
        assert all(KEY_FORMAT.match(k) for k in plain) and len(set(plain)) == 3
        # Nothing stored can be replayed as a key: no field holds the plaintext.
        assert not any(k in str(d) for d in docs for k in plain)
        events = await lic.world.events(LICENSE_KEY_CREATED)
        assert len(events) == 3
        data = events[0]["data"]
        assert data["payment_id"] == "pay_1" and data["activation_message"] == "Welcome aboard"
        assert lic.sealer.open(data["key_sealed"]) in plain

    async def test_a_redelivered_payment_issues_nothing_more(self, lic: Licenses) -> None:
        lic.world.products.products["pdt_app"] = _product("pdt_app")
        await lic.checkout("pdt_app", 2, payment_id="pay_1")
        checkout = (await lic.world.db["checkout_sessions"].find_one({}))["_id"]  # type: ignore[index]
        await lic.deliver(
            lic.issuing.on_payment_succeeded,
            "payment.succeeded",
            {
                "payment_id": "pay_1",
                "business_id": "bus_1",
                "mode": "test",
                "metadata": {"checkout_session_id": checkout},
            },
        )
        assert len(await lic.keys()) == 2
        assert len(await lic.world.events(LICENSE_KEY_CREATED)) == 2

    async def test_a_subscription_gets_its_keys_with_its_first_payment_only(
        self, lic: Licenses
    ) -> None:
        sub = await lic.subscription(quantity=2)
        data = {"subscription_id": sub.subscription_id, "business_id": "bus_1", "mode": "test"}
        # A trial starts active without a payment: no key yet.
        await lic.deliver(lic.issuing.on_subscription_active, "subscription.active", data)
        assert await lic.keys() == []
        assert await lic.world.events(LICENSE_KEY_CREATED) == []
        # The first paid renewal after the trial issues them.
        await lic.deliver(
            lic.issuing.on_subscription_active, "subscription.renewed", data | {"payment_id": "p1"}
        )
        # Active again after a hold was paid, and the next renewal: no new keys.
        await lic.deliver(
            lic.issuing.on_subscription_active, "subscription.active", data | {"payment_id": "p2"}
        )
        await lic.deliver(
            lic.issuing.on_subscription_active, "subscription.renewed", data | {"payment_id": "p3"}
        )
        docs = await lic.keys()
        assert len(docs) == 2
        assert {d["subscription_id"] for d in docs} == {sub.subscription_id}
        assert {d["payment_id"] for d in docs} == {"p1"}
        assert len(await lic.world.events(LICENSE_KEY_CREATED)) == 2

    async def test_a_renewal_payment_issues_no_key(self, lic: Licenses) -> None:
        lic.world.products.products["pdt_app"] = _product("pdt_app")
        await lic.deliver(
            lic.issuing.on_payment_succeeded,
            "payment.succeeded",
            {
                "payment_id": "pay_9",
                "business_id": "bus_1",
                "mode": "test",
                "charge_type": "renewal",
            },
        )
        assert await lic.keys() == []


class TestActivation:
    async def test_twenty_concurrent_activations_with_limit_five_make_five(
        self, lic: Licenses
    ) -> None:
        key = await lic.issued_key(limit=5)
        results = await asyncio.gather(
            *(lic.service.activate(key, f"machine {i}") for i in range(20)),
            return_exceptions=True,
        )
        made = [r for r in results if not isinstance(r, BaseException)]
        refused = [r for r in results if isinstance(r, DomainError)]
        assert len(made) == 5
        assert len(refused) == 15
        assert {r.reason for r in refused} == {Reason.LICENSE_KEY_ACTIVATION_LIMIT}
        [doc] = await lic.keys()
        assert doc["instances_count"] == 5
        assert await lic.world.db["license_key_instances"].count_documents({}) == 5

    async def test_deactivating_frees_a_slot(self, lic: Licenses) -> None:
        key = await lic.issued_key(limit=1)
        first = await lic.service.activate(key, "laptop")
        with pytest.raises(DomainError) as refused:
            await lic.service.activate(key, "desktop")
        assert refused.value.reason is Reason.LICENSE_KEY_ACTIVATION_LIMIT
        await lic.service.deactivate(key, first.instance.instance_id)
        assert not await lic.service.validate(key, first.instance.instance_id)
        second = await lic.service.activate(key, "desktop")
        assert await lic.service.validate(key, second.instance.instance_id)

    async def test_unknown_malformed_and_disabled_keys_get_one_answer(self, lic: Licenses) -> None:
        key = await lic.issued_key()
        [doc] = await lic.keys()
        await lic.service.update_key(SCOPE, doc["_id"], KeyChanges(disabled=True))
        answers = []
        for presented in (key, "AAAAA-BBBBB-CCCCC-DDDDD-EEEEE-FFFFF", "", "x" * 5000):
            with pytest.raises(DomainError) as refused:
                await lic.service.activate(presented, "laptop")
            answers.append((type(refused.value), refused.value.reason, refused.value.message))
            assert not await lic.service.validate(presented)
        assert len(set(answers)) == 1
        assert (await lic.keys())[0]["instances_count"] == 0
        # Re-enabled by the merchant: it works again.
        await lic.service.update_key(SCOPE, doc["_id"], KeyChanges(disabled=False))
        assert await lic.service.validate(key)


class TestValidation:
    async def test_a_key_expires_on_the_business_test_clock(self, lic: Licenses) -> None:
        key = await lic.issued_key(days=30)
        assert await lic.service.validate(key)
        await lic.world.clocks.advance("bus_1", "test", seconds=31 * 86_400)
        assert not await lic.service.validate(key)
        [doc] = await lic.keys()
        assert (await lic.service.get_key(SCOPE, doc["_id"])).status_at(
            await lic.world.clocks.now("bus_1", "test")
        ).value == "expired"

    async def test_a_cancelled_subscription_key_works_until_its_paid_period_ends(
        self, lic: Licenses
    ) -> None:
        sub = await lic.subscription()
        await lic.deliver(
            lic.issuing.on_subscription_active,
            "subscription.active",
            {
                "subscription_id": sub.subscription_id,
                "business_id": "bus_1",
                "mode": "test",
                "payment_id": "pay_first",
            },
        )
        key = lic.sealer.open((await lic.keys())[0]["key_sealed"])
        await lic.set_status(sub, SubscriptionStatus.CANCELLED)
        assert await lic.service.validate(key)
        await lic.world.clocks.advance("bus_1", "test", to=datetime(2026, 2, 28, 9, 0, tzinfo=UTC))
        assert not await lic.service.validate(key)

    async def test_an_on_hold_subscription_key_works_for_the_grace_period(
        self, lic: Licenses
    ) -> None:
        sub = await lic.subscription()
        await lic.deliver(
            lic.issuing.on_subscription_active,
            "subscription.active",
            {
                "subscription_id": sub.subscription_id,
                "business_id": "bus_1",
                "mode": "test",
                "payment_id": "pay_first",
            },
        )
        key = lic.sealer.open((await lic.keys())[0]["key_sealed"])
        await lic.set_status(sub, SubscriptionStatus.ON_HOLD)
        end = datetime(2026, 2, 28, 9, 0, tzinfo=UTC)
        await lic.world.clocks.advance("bus_1", "test", to=end + timedelta(days=6))
        assert await lic.service.validate(key)
        await lic.world.clocks.advance("bus_1", "test", seconds=86_400)
        assert not await lic.service.validate(key)


class TestMerchant:
    async def test_import_list_and_scoping(self, lic: Licenses) -> None:
        lic.world.products.products["pdt_app"] = _product("pdt_app")
        key = await lic.service.import_key(
            "bus_1", "test", "cus_2", "pdt_app", "MY-OWN-KEY", activations_limit=2
        )
        assert lic.service.open_key(key) == "MY-OWN-KEY"
        assert await lic.service.validate("MY-OWN-KEY")
        with pytest.raises(DomainError) as taken:
            await lic.service.import_key("bus_1", "test", "cus_2", "pdt_app", "MY-OWN-KEY")
        assert taken.value.reason is Reason.LICENSE_KEY_EXISTS
        page = make_page(10, 0)
        assert [k.license_key_id for k in await lic.service.list_keys(SCOPE, page)] == [
            key.license_key_id
        ]
        assert await lic.service.list_keys(Scope("bus_1", "test", ("cus_1",)), page) == []
        assert await lic.service.list_keys(SCOPE, page, status="disabled") == []
        for other in (
            Scope("bus_2", "test"),
            Scope("bus_1", "live"),
            Scope("bus_1", "test", ("cus_1",)),
        ):
            with pytest.raises(DomainError) as missing:
                await lic.service.get_key(other, key.license_key_id)
            assert missing.value.reason is Reason.LICENSE_KEY_NOT_FOUND
        done = await lic.service.activate("MY-OWN-KEY", "laptop")
        with pytest.raises(DomainError):
            await lic.service.remove_instance(
                Scope("bus_1", "test", ("cus_1",)), done.instance.instance_id
            )
        await lic.service.remove_instance(
            Scope("bus_1", "test", ("cus_2",)), done.instance.instance_id
        )
        assert (await lic.service.get_key(SCOPE, key.license_key_id)).instances_count == 0


class TestRateLimits:
    async def test_a_burst_is_refused_while_other_clients_and_keys_still_work(
        self, lic: Licenses
    ) -> None:
        await ensure_indexes(lic.world.db, RATE_INDEXES)
        key, other_key = await lic.issued_key(), await lic.issued_key()
        lic.service.limiter = RateLimiter(
            lic.world.db,
            lic.world.real,
            LicenseRateLimits(window_seconds=60, per_client=5, per_key=3),
        )
        answers = [await _outcome(lic.service.validate(key, client_key="a")) for _ in range(5)]
        assert answers == [True, True, True, "429", "429"]
        # The same key is over its own limit for everyone; another key from client b works.
        assert await _outcome(lic.service.validate(key, client_key="b")) == "429"
        assert await _outcome(lic.service.validate(other_key, client_key="b")) is True
        # Client a is now over its own limit whatever key it sends.
        assert await _outcome(lic.service.validate(other_key, client_key="a")) == "429"
        # The window slides: a minute later both work again.
        lic.world.real.advance(61)
        assert await _outcome(lic.service.validate(key, client_key="a")) is True


async def _outcome(call: Any) -> object:
    try:
        return await call
    except DomainError as refused:
        assert refused.reason is Reason.LICENSE_RATE_LIMITED
        return "429"


class TestAudit:
    async def test_merchant_and_customer_changes_leave_an_audit_entry_without_the_key(
        self, lic: Licenses
    ) -> None:
        lic.world.products.products["pdt_app"] = _product("pdt_app")
        key = await lic.service.import_key(
            "bus_1", "test", "cus_2", "pdt_app", "SECRET-KEY-1", actor=merchant("key_1")
        )
        await lic.service.update_key(
            SCOPE, key.license_key_id, KeyChanges(disabled=True), merchant("key_1")
        )
        await lic.service.update_key(SCOPE, key.license_key_id, KeyChanges(disabled=False))
        done = await lic.service.activate("SECRET-KEY-1", "laptop")
        await lic.service.rename_instance(SCOPE, done.instance.instance_id, "work laptop")
        await lic.service.remove_instance(
            Scope("bus_1", "test", ("cus_2",)), done.instance.instance_id
        )
        # The test's clock is frozen, so entries share one time: compared as a set.
        entries = [e async for e in lic.world.db["audit_log"].find({})]
        assert sorted((e["action"], e["actor"]["kind"]) for e in entries) == [
            ("license_key.imported", "merchant"),
            ("license_key.updated", "merchant"),
            ("license_key.updated", "system"),
            ("license_key_instance.deactivated", "customer"),
            ("license_key_instance.renamed", "system"),
        ]
        updates = [e["details"] for e in entries if e["action"] == "license_key.updated"]
        assert updates == [{"fields": "disabled"}] * 2
        assert "SECRET-KEY-1" not in str(entries)

    async def test_a_business_sets_its_own_grace_period(self, lic: Licenses) -> None:
        lic.grace.days["bus_1"] = 2
        sub = await lic.subscription()
        await lic.deliver(
            lic.issuing.on_subscription_active,
            "subscription.active",
            {
                "subscription_id": sub.subscription_id,
                "business_id": "bus_1",
                "mode": "test",
                "payment_id": "pay_first",
            },
        )
        key = lic.sealer.open((await lic.keys())[0]["key_sealed"])
        assert await lic.service.validate(key)
        assert lic.grace.asked == 0  # an active subscription needs no grace period
        await lic.set_status(sub, SubscriptionStatus.ON_HOLD)
        end = datetime(2026, 2, 28, 9, 0, tzinfo=UTC)
        await lic.world.clocks.advance("bus_1", "test", to=end + timedelta(days=1))
        assert await lic.service.validate(key)
        # Day 3 after the paid period: past this business's 2 days (the default is 7).
        await lic.world.clocks.advance("bus_1", "test", seconds=2 * 86_400)
        assert not await lic.service.validate(key)
        # The business lengthens it: the same key works again.
        lic.grace.days["bus_1"] = 10
        assert await lic.service.validate(key)


class TestBusinessSettingsFromAuth:
    async def test_license_grace_days_come_from_get_business_cached(self) -> None:
        class Auth(auth_pb2_grpc.AuthServiceServicer):
            calls = 0

            async def GetBusiness(self, request: Any, context: Any) -> auth_pb2.Business:
                Auth.calls += 1
                days = {"bus_14": 14, "bus_default": 0}[request.business_id]
                return auth_pb2.Business(business_id=request.business_id, license_grace_days=days)

        server = grpc.aio.server()
        auth_pb2_grpc.add_AuthServiceServicer_to_server(Auth(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        settings = AuthReminderDays(f"127.0.0.1:{port}", timeout=5, cache_seconds=60)
        try:
            assert await settings.license_grace_days("bus_14") == 14
            assert await settings.license_grace_days("bus_14") == 14
            assert await settings.days("bus_14") == 3  # the same cached answer
            assert Auth.calls == 1
            assert await settings.license_grace_days("bus_default") is None  # 0: the default
        finally:
            await settings.stop()
            await server.stop(0)
        # auth unreachable: the service default (None), not an error.
        down = AuthReminderDays(f"127.0.0.1:{port}", timeout=1, cache_seconds=60)
        try:
            assert await down.license_grace_days("bus_14") is None
        finally:
            await down.stop()
