"""Merchant webhooks against the real database and broker, delivering to a local server."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
import pytest_asyncio
from aiohttp import web
from billing.common.v1 import common_pb2
from billing.notifications.v1 import webhooks_pb2, webhooks_pb2_grpc
from billing_kit.broker import EventPublisher
from billing_kit.clock import utc_now
from billing_kit.errors import Reason
from billing_kit.events import CloudEvent
from billing_kit.grpc_client import domain_error_from
from billing_kit.sealing import DEVELOPMENT_SEALING_KEY, Sealer
from billing_kit.testing import (
    BrokerNamespace,
    RunningService,
    broker_namespace,
    eventually,
    service_fixture,
)
from notifications.app import NotificationsRuntime, create_app
from notifications.config import NotificationsSettings
from notifications.consumers import CUSTOMER_DIRECTORY
from notifications.webhooks.delivery import WebhookDelivery
from notifications.webhooks.wiring import WEBHOOK_EVENTS, delivery_policy
from prometheus_client import REGISTRY
from standardwebhooks import Webhook

pytestmark = pytest.mark.integration

TEST = common_pb2.MODE_TEST
LIVE = common_pb2.MODE_LIVE
T0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
DISABLE_AFTER = 4
SETTINGS: dict[str, Any] = {
    "consumer_delivery_limit": 2,
    "webhook_retry_base_seconds": 0.05,
    "webhook_retry_max_seconds": 0.2,
    "webhook_max_attempts": 10,
    "webhook_disable_after_failures": DISABLE_AFTER,
    "webhook_timeout_seconds": 2,
    "webhook_workers": 2,
    "webhook_secret_rotation_grace_seconds": 600,
}


@pytest_asyncio.fixture
async def ns(amqp_url: str) -> AsyncIterator[BrokerNamespace]:
    async with broker_namespace(
        amqp_url,
        known_consumers=[("notifications", WEBHOOK_EVENTS), ("notifications", CUSTOMER_DIRECTORY)],
    ) as namespace:
        yield namespace


service = service_fixture(create_app, NotificationsSettings, with_broker=True, **SETTINGS)


@pytest_asyncio.fixture
async def publisher(amqp_url: str, ns: BrokerNamespace) -> AsyncIterator[EventPublisher]:
    events = EventPublisher(amqp_url, ns.exchange, service="payments")
    await events.connect()
    try:
        yield events
    finally:
        await events.close()


@pytest.fixture
def stub(service: RunningService[NotificationsRuntime]) -> webhooks_pb2_grpc.WebhooksServiceStub:
    return webhooks_pb2_grpc.WebhooksServiceStub(service.channel)


@dataclass
class Receiver:
    """A local HTTP server recording what it receives; ``answers`` scripts its statuses."""

    url: str = ""
    received: list[tuple[dict[str, str], str]] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)

    def ids(self) -> list[str]:
        return [h["webhook-id"] for h, _ in self.received]


@pytest_asyncio.fixture
async def receiver() -> AsyncIterator[Receiver]:
    state = Receiver()

    async def hook(request: web.Request) -> web.Response:
        state.received.append((dict(request.headers.items()), await request.text()))
        status = state.answers.pop(0) if state.answers else 204
        return web.Response(status=status)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    state.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield state
    finally:
        await runner.cleanup()


def scope(business_id: str = "bus_1", mode: common_pb2.Mode.ValueType = TEST) -> Any:
    return webhooks_pb2.WebhookScope(business_id=business_id, mode=mode)


def payment_event(
    event_id: str,
    *,
    business_id: str = "bus_1",
    mode: str = "test",
    type: str = "payment.succeeded",
) -> CloudEvent:
    data = {
        "payment_id": f"pay_{event_id}",
        "business_id": business_id,
        "mode": mode,
        "customer_id": "cus_1",
        "subscription_id": "",
        "total_amount": 35620,
        "currency": "EUR",
        "status": "succeeded",
        "charge_type": "new",
        "payment_method_id": "pm_1",
        "card_brand": "visa",
        "card_last_four": "4242",
        "error_code": "",
        "error_message": "",
        "challenge_url": "",
        "idempotency_key": f"key_{event_id}",
        "description": "",
        "metadata": {"order": "42"},
        "created_at": T0.isoformat(),
        "updated_at": T0.isoformat(),
    }
    return CloudEvent(id=event_id, source="payments", type=type, time=T0, data=data)


async def create(
    stub: webhooks_pb2_grpc.WebhooksServiceStub, url: str, **fields: Any
) -> webhooks_pb2.Webhook:
    fields.setdefault("scope", scope())
    return await stub.CreateWebhook(webhooks_pb2.CreateWebhookRequest(url=url, **fields))


async def secret_of(stub: webhooks_pb2_grpc.WebhooksServiceStub, webhook: Any) -> str:
    reply = await stub.GetWebhookSecret(
        webhooks_pb2.GetWebhookRequest(scope=scope(), webhook_id=webhook.webhook_id)
    )
    return str(reply.secret)


async def deliveries(
    stub: webhooks_pb2_grpc.WebhooksServiceStub, webhook: Any, mode: Any = TEST
) -> list[webhooks_pb2.WebhookDelivery]:
    reply = await stub.ListWebhookDeliveries(
        webhooks_pb2.ListWebhookDeliveriesRequest(
            scope=scope(mode=mode), webhook_id=webhook.webhook_id, limit=100
        )
    )
    return list(reply.deliveries)


def attempts_metric(outcome: str) -> float:
    value = REGISTRY.get_sample_value("webhook_delivery_attempts_total", {"outcome": outcome})
    return value or 0.0


def reason_of(err: pytest.ExceptionInfo[grpc.aio.AioRpcError]) -> Reason | None:
    error = domain_error_from(err.value)
    return error.reason if error else None


class TestEndpointCrud:
    async def test_create_get_update_list_delete(
        self, stub: webhooks_pb2_grpc.WebhooksServiceStub
    ) -> None:
        made = await create(
            stub,
            "https://merchant.example/hooks",
            description="orders",
            filter_types=["payment.succeeded"],
            metadata={"team": "billing"},
        )
        assert made.webhook_id.startswith("wh_") and not made.disabled
        got = await stub.GetWebhook(
            webhooks_pb2.GetWebhookRequest(scope=scope(), webhook_id=made.webhook_id)
        )
        assert (got.url, list(got.filter_types), dict(got.metadata)) == (
            "https://merchant.example/hooks",
            ["payment.succeeded"],
            {"team": "billing"},
        )
        updated = await stub.UpdateWebhook(
            webhooks_pb2.UpdateWebhookRequest(
                scope=scope(),
                webhook_id=made.webhook_id,
                description="all",
                update_filter_types=True,
                filter_types=[],
                disabled=True,
            )
        )
        assert (updated.description, list(updated.filter_types), updated.disabled) == (
            "all",
            [],
            True,
        )
        await stub.DeleteWebhook(
            webhooks_pb2.DeleteWebhookRequest(scope=scope(), webhook_id=made.webhook_id)
        )
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.GetWebhook(
                webhooks_pb2.GetWebhookRequest(scope=scope(), webhook_id=made.webhook_id)
            )
        assert err.value.code() == grpc.StatusCode.NOT_FOUND

    async def test_list_walks_cursor_pages_newest_first(
        self, stub: webhooks_pb2_grpc.WebhooksServiceStub
    ) -> None:
        made = [await create(stub, f"https://merchant.example/{n}") for n in range(5)]
        await create(stub, "https://other.example/", scope=scope("bus_2"))
        seen: list[str] = []
        iterator = ""
        while True:
            page = await stub.ListWebhooks(
                webhooks_pb2.ListWebhooksRequest(scope=scope(), limit=2, iterator=iterator)
            )
            seen += [w.webhook_id for w in page.webhooks]
            if page.done:
                break
            iterator = page.iterator
        assert seen == [w.webhook_id for w in reversed(made)]

    async def test_another_business_gets_not_found(
        self, stub: webhooks_pb2_grpc.WebhooksServiceStub
    ) -> None:
        made = await create(stub, "https://merchant.example/hooks")
        for call in (stub.GetWebhook, stub.GetWebhookSecret, stub.GetWebhookHeaders):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await call(
                    webhooks_pb2.GetWebhookRequest(scope=scope("bus_2"), webhook_id=made.webhook_id)
                )
            assert reason_of(err) is Reason.WEBHOOK_NOT_FOUND
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.GetWebhook(
                webhooks_pb2.GetWebhookRequest(scope=scope(mode=LIVE), webhook_id=made.webhook_id)
            )
        assert err.value.code() == grpc.StatusCode.NOT_FOUND

    @pytest.mark.parametrize(
        "url",
        ["ftp://merchant.example/", "javascript:alert(1)", "/relative", "https://u:p@h.example/"],
    )
    async def test_a_url_that_is_not_http_is_refused(
        self, stub: webhooks_pb2_grpc.WebhooksServiceStub, url: str
    ) -> None:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await create(stub, url)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert reason_of(err) is Reason.INVALID_WEBHOOK

    async def test_unknown_filter_type_is_refused(
        self, stub: webhooks_pb2_grpc.WebhooksServiceStub
    ) -> None:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await create(stub, "https://merchant.example/", filter_types=["payment.exploded"])
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    async def test_secret_is_whsec_and_sealed_at_rest(
        self, stub: webhooks_pb2_grpc.WebhooksServiceStub, service: RunningService[Any]
    ) -> None:
        made = await create(stub, "https://merchant.example/hooks", headers={"X-Api-Key": "k-123"})
        secret = await secret_of(stub, made)
        assert secret.startswith("whsec_") and len(secret) > 30
        stored = await service.runtime.db["webhooks"].find_one({"_id": made.webhook_id})
        assert secret not in json.dumps(stored, default=str)
        assert "k-123" not in json.dumps(stored, default=str)

    async def test_headers_show_sensitive_ones_by_name_only(
        self, stub: webhooks_pb2_grpc.WebhooksServiceStub
    ) -> None:
        made = await create(stub, "https://merchant.example/", headers={"X-Team": "a"})
        await stub.UpdateWebhookHeaders(
            webhooks_pb2.UpdateWebhookHeadersRequest(
                scope=scope(),
                webhook_id=made.webhook_id,
                headers={"Authorization": "Bearer xyz", "X-Env": "prod", "X-Team": ""},
            )
        )
        shown = await stub.GetWebhookHeaders(
            webhooks_pb2.GetWebhookRequest(scope=scope(), webhook_id=made.webhook_id)
        )
        assert dict(shown.headers) == {"X-Env": "prod"}
        assert list(shown.sensitive) == ["Authorization"]

    async def test_same_idempotency_key_gives_the_same_endpoint(
        self, stub: webhooks_pb2_grpc.WebhooksServiceStub
    ) -> None:
        first = await create(stub, "https://merchant.example/", idempotency_key="k1")
        again = await create(stub, "https://merchant.example/", idempotency_key="k1")
        assert first.webhook_id == again.webhook_id


class TestDelivery:
    async def test_payment_succeeded_is_delivered_signed_in_the_api_shape(
        self,
        stub: webhooks_pb2_grpc.WebhooksServiceStub,
        publisher: EventPublisher,
        receiver: Receiver,
    ) -> None:
        await publisher.publish(
            CloudEvent(
                id="evt_cus",
                source="auth",
                type="customer.created",
                time=T0,
                data={
                    "customer_id": "cus_1",
                    "business_id": "bus_1",
                    "mode": "test",
                    "email": "ada@example.com",
                    "name": "Ada",
                },
            )
        )
        made = await create(stub, receiver.url, headers={"X-Shop": "42", "Authorization": "B t"})
        filtered_out = await create(stub, receiver.url, filter_types=["subscription.active"])
        await asyncio.sleep(0.3)  # the directory learns the customer first
        await publisher.publish(payment_event("evt_pay_1"))

        await eventually(lambda: len(receiver.received) == 1, message="nothing delivered")
        headers, body = receiver.received[0]
        Webhook(await secret_of(stub, made)).verify(body, headers)
        payload = json.loads(body)
        assert payload["type"] == "payment.succeeded" and payload["business_id"] == "bus_1"
        assert payload["timestamp"] == "2026-05-01T08:00:00Z"
        data = payload["data"]
        assert data["payment_id"] == "pay_evt_pay_1" and data["total_amount"] == 35620
        assert data["customer"] == {
            "customer_id": "cus_1",
            "email": "ada@example.com",
            "name": "Ada",
            "metadata": {},
            "phone_number": None,
        }
        assert (data["card_last_four"], data["status"], data["metadata"]) == (
            "4242",
            "succeeded",
            {"order": "42"},
        )
        assert (headers["X-Shop"], headers["Authorization"]) == ("42", "B t")
        log = await deliveries(stub, made)
        assert [(d.status, d.attempts) for d in log] == [("delivered", 1)]
        assert log[0].delivery_id == headers["webhook-id"]
        assert log[0].attempt_log[0].status_code == 204
        assert await deliveries(stub, filtered_out) == []

    async def test_same_event_twice_gives_one_delivery(
        self,
        stub: webhooks_pb2_grpc.WebhooksServiceStub,
        publisher: EventPublisher,
        receiver: Receiver,
    ) -> None:
        made = await create(stub, receiver.url)
        await publisher.publish(payment_event("evt_twice"))
        await publisher.publish(payment_event("evt_twice"))
        await publisher.publish(payment_event("evt_after"))
        await eventually(lambda: len(receiver.received) >= 2, message="not delivered")
        await asyncio.sleep(0.5)
        assert len(receiver.received) == 2
        assert len(set(receiver.ids())) == 2
        assert len(await deliveries(stub, made)) == 2

    async def test_license_key_created_carries_the_key_in_the_license_key_shape(
        self,
        stub: webhooks_pb2_grpc.WebhooksServiceStub,
        publisher: EventPublisher,
        receiver: Receiver,
        service: RunningService[NotificationsRuntime],
    ) -> None:
        key = "QWERT-YUIOP-ASDFG-HJKLZ-XCVBN-M2345"
        made = await create(stub, receiver.url, filter_types=["license_key.created"])
        receiver.answers = [500]  # the first attempt fails: the retry must send the same bytes
        expires = datetime(2027, 5, 1, 8, 0, tzinfo=UTC)
        await publisher.publish(
            CloudEvent(
                id="evt_lic_1",
                source="subscriptions",
                type="license_key.created",
                time=T0,
                data={
                    "license_key_id": "lic_1",
                    "business_id": "bus_1",
                    "mode": "test",
                    "customer_id": "cus_1",
                    "product_id": "pdt_app",
                    "source": "auto",
                    "payment_id": "pay_1",
                    "subscription_id": "",
                    "key_sealed": Sealer(DEVELOPMENT_SEALING_KEY).seal(key),
                    "activation_message": "Paste it in Settings",
                    "activations_limit": 5,
                    "expires_at": expires.isoformat(),
                    "product_name": "Desktop App",
                    "instances_count": 0,
                    "disabled": False,
                    "created_at": T0.isoformat(),
                },
            )
        )
        await eventually(lambda: len(receiver.received) == 2, message="not retried")
        (first_headers, first), (headers, body) = receiver.received
        assert first == body and first_headers["webhook-id"] == headers["webhook-id"]
        Webhook(await secret_of(stub, made)).verify(body, headers)
        payload = json.loads(body)
        assert payload["type"] == "license_key.created"
        assert payload["data"] == {
            "id": "lic_1",
            "brand_id": "bus_1",
            "business_id": "bus_1",
            "created_at": "2026-05-01T08:00:00Z",
            "customer_id": "cus_1",
            "instances_count": 0,
            "key": key,
            "product_id": "pdt_app",
            "source": "auto",
            "status": "active",
            "activations_limit": 5,
            "expires_at": "2027-05-01T08:00:00Z",
            "payment_id": "pay_1",
            "subscription_id": None,
        }
        # At rest the delivery holds the key sealed only.
        stored = await service.runtime.db["webhook_deliveries"].find_one({"event_id": "evt_lic_1"})
        assert stored is not None and key not in repr(stored)

    async def test_retries_with_backoff_then_succeeds_with_the_same_id(
        self,
        stub: webhooks_pb2_grpc.WebhooksServiceStub,
        publisher: EventPublisher,
        receiver: Receiver,
    ) -> None:
        receiver.answers = [500, 503]
        failed_before = attempts_metric("http_status")
        made = await create(stub, receiver.url)
        await publisher.publish(payment_event("evt_retry"))

        async def delivered() -> bool:
            log = await deliveries(stub, made)
            return bool(log) and log[0].status == "delivered"

        await eventually(delivered, message="never delivered")
        assert len(receiver.received) == 3
        assert len(set(receiver.ids())) == 1, "webhook-id must be stable across retries"
        (delivery,) = await deliveries(stub, made)
        attempts = list(reversed(delivery.attempt_log))  # oldest first
        assert [a.status_code for a in attempts] == [500, 503, 204]
        assert [a.error for a in attempts] == ["http_status", "http_status", ""]
        gaps = [
            (b.at.ToDatetime() - a.at.ToDatetime()).total_seconds()
            for a, b in itertools.pairwise(attempts)
        ]
        assert gaps[0] >= 0.05 and gaps[1] >= 0.1, f"no backoff between attempts: {gaps}"
        assert attempts_metric("http_status") - failed_before == 2
        endpoint = await stub.GetWebhook(
            webhooks_pb2.GetWebhookRequest(scope=scope(), webhook_id=made.webhook_id)
        )
        assert not endpoint.disabled

    async def test_persistently_failing_endpoint_is_disabled(
        self,
        stub: webhooks_pb2_grpc.WebhooksServiceStub,
        publisher: EventPublisher,
        receiver: Receiver,
    ) -> None:
        receiver.answers = [500] * 100
        made = await create(stub, receiver.url)
        await publisher.publish(payment_event("evt_fail"))

        async def disabled() -> webhooks_pb2.Webhook | None:
            got = await stub.GetWebhook(
                webhooks_pb2.GetWebhookRequest(scope=scope(), webhook_id=made.webhook_id)
            )
            return got if got.disabled else None

        endpoint = await eventually(disabled, message="endpoint never disabled")
        assert endpoint.disabled_reason == "failing"
        assert len(receiver.received) == DISABLE_AFTER
        (delivery,) = await deliveries(stub, made)
        assert delivery.status == "failed" and delivery.attempts == DISABLE_AFTER
        # Disabled endpoints get nothing new.
        await publisher.publish(payment_event("evt_after_disable"))
        await asyncio.sleep(0.5)
        assert len(receiver.received) == DISABLE_AFTER
        # Re-enabled by the merchant, it gets events again.
        await stub.UpdateWebhook(
            webhooks_pb2.UpdateWebhookRequest(
                scope=scope(), webhook_id=made.webhook_id, disabled=False
            )
        )
        receiver.answers = []
        await publisher.publish(payment_event("evt_reenabled"))
        await eventually(lambda: len(receiver.received) == DISABLE_AFTER + 1, message="no delivery")

    async def test_a_secret_our_keys_cannot_open_is_retried_not_blamed_on_the_endpoint(
        self,
        stub: webhooks_pb2_grpc.WebhooksServiceStub,
        service: RunningService[NotificationsRuntime],
        publisher: EventPublisher,
        receiver: Receiver,
    ) -> None:
        made = await create(stub, receiver.url)
        await service.runtime.db["webhooks"].update_one(
            {"_id": made.webhook_id}, {"$set": {"secrets.0.sealed": "not-a-fernet-token"}}
        )
        await publisher.publish(payment_event("evt_sealed"))

        async def tried_twice() -> list[webhooks_pb2.WebhookDelivery]:
            log = await deliveries(stub, made)
            return log if log and len(log[0].attempt_log) >= DISABLE_AFTER + 1 else []

        (delivery,) = await eventually(tried_twice, message="not retried")
        assert {a.error for a in delivery.attempt_log} == {"secret_unavailable"}
        assert receiver.received == [], "nothing unsigned is sent"
        endpoint = await stub.GetWebhook(
            webhooks_pb2.GetWebhookRequest(scope=scope(), webhook_id=made.webhook_id)
        )
        assert not endpoint.disabled

    async def test_two_workers_send_each_delivery_once(
        self,
        stub: webhooks_pb2_grpc.WebhooksServiceStub,
        service: RunningService[NotificationsRuntime],
        publisher: EventPublisher,
        receiver: Receiver,
    ) -> None:
        runtime = service.runtime
        first = runtime.webhook_delivery
        # A second replica's workers on the same database, racing for the same claims.
        second = WebhookDelivery(
            first._repository,
            first._service,
            delivery_policy(NotificationsSettings(**SETTINGS)),
            clock=utc_now,
            workers=3,
        )
        await second.start()
        try:
            await create(stub, receiver.url)
            await create(stub, receiver.url)
            for n in range(15):
                await publisher.publish(payment_event(f"evt_many_{n}"))
                second.wake()
            await eventually(lambda: len(receiver.received) >= 30, message="not all delivered")
            await asyncio.sleep(0.5)
        finally:
            await second.stop()
        assert len(receiver.received) == 30
        assert len(set(receiver.ids())) == 30

    async def test_rotation_signs_with_both_secrets(
        self,
        stub: webhooks_pb2_grpc.WebhooksServiceStub,
        publisher: EventPublisher,
        receiver: Receiver,
    ) -> None:
        made = await create(stub, receiver.url)
        old = await secret_of(stub, made)
        rotated = await stub.RotateWebhookSecret(
            webhooks_pb2.GetWebhookRequest(scope=scope(), webhook_id=made.webhook_id)
        )
        assert rotated.secret != old and await secret_of(stub, made) == rotated.secret
        await publisher.publish(payment_event("evt_rotated"))
        await eventually(lambda: receiver.received, message="nothing delivered")
        headers, body = receiver.received[0]
        assert len(headers["webhook-signature"].split(" ")) == 2
        Webhook(old).verify(body, headers)
        Webhook(rotated.secret).verify(body, headers)


class TestAddressGuard:
    @pytest.mark.parametrize(
        "host", ["127.0.0.1", "169.254.169.254", "10.1.2.3", "[::1]", "localhost"]
    )
    async def test_live_mode_refuses_internal_addresses(
        self,
        stub: webhooks_pb2_grpc.WebhooksServiceStub,
        publisher: EventPublisher,
        receiver: Receiver,
        host: str,
    ) -> None:
        port = receiver.url.split(":")[2].split("/")[0]
        made = await create(stub, f"http://{host}:{port}/hook", scope=scope(mode=LIVE))
        await publisher.publish(payment_event("evt_live", mode="live"))

        async def attempted() -> list[webhooks_pb2.WebhookDelivery]:
            log = await deliveries(stub, made, mode=LIVE)
            return log if log and log[0].attempt_log else []

        log = await eventually(attempted, message="no attempt logged")
        assert log[0].attempt_log[0].error.startswith("address_refused:")
        assert log[0].attempt_log[0].status_code == 0
        await asyncio.sleep(0.3)
        assert receiver.received == []


async def test_reseal_moves_every_secret_to_the_new_key(
    stub: webhooks_pb2_grpc.WebhooksServiceStub, service: RunningService[NotificationsRuntime]
) -> None:
    from billing_kit.sealing import DEVELOPMENT_SEALING_KEY, Sealer, SealError, new_sealing_key
    from notifications.webhooks.operations import reseal
    from notifications.webhooks.repository import WebhooksRepository

    made = await create(stub, "https://merchant.example/", headers={"Authorization": "B x"})
    secret = await secret_of(stub, made)
    new_key = new_sealing_key()
    repository = WebhooksRepository(service.runtime.db)

    assert await reseal(repository, Sealer(f"{new_key},{DEVELOPMENT_SEALING_KEY}")) == (1, 0)

    only_new = Sealer(new_key)
    stored = await repository.get_endpoint("bus_1", "test", made.webhook_id)
    assert stored is not None
    assert only_new.open(stored.secrets[0].sealed) == secret
    assert only_new.open(stored.sealed_headers["Authorization"]) == "B x"
    with pytest.raises(SealError):
        Sealer(DEVELOPMENT_SEALING_KEY).open(stored.secrets[0].sealed)
