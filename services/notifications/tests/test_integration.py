"""Notifications against the real broker and database: customer events build the directory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import grpc
import pytest
import pytest_asyncio
from billing.common.v1 import common_pb2
from billing.notifications.v1 import notifications_pb2, notifications_pb2_grpc
from billing_kit.broker import EventPublisher
from billing_kit.errors import Reason
from billing_kit.events import CloudEvent
from billing_kit.grpc_client import domain_error_from
from billing_kit.testing import (
    BrokerNamespace,
    RunningService,
    broker_namespace,
    eventually,
    service_fixture,
    take_queue_messages,
)
from notifications.app import NotificationsRuntime, create_app
from notifications.config import NotificationsSettings
from notifications.consumers import CUSTOMER_DIRECTORY

pytestmark = pytest.mark.integration

T0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
SERVICE = "billing.notifications.v1.NotificationsService"
DELIVERY_LIMIT = 2


def customer_event(
    event_id: str,
    *,
    type: str = "customer.created",
    time: datetime = T0,
    customer_id: str = "cus_1",
    **data: Any,
) -> CloudEvent:
    payload: dict[str, Any] = {
        "customer_id": customer_id,
        "business_id": "bus_1",
        "mode": "test",
        "email": "ada@example.com",
        "name": "Ada",
        "phone_number": "",
        "created_at": T0.isoformat(),
    }
    payload.update(data)
    return CloudEvent(id=event_id, source="auth", type=type, time=time, data=payload)


@pytest_asyncio.fixture
async def ns(amqp_url: str) -> AsyncIterator[BrokerNamespace]:
    """A private exchange and queue prefix per test, deleted afterwards."""
    async with broker_namespace(
        amqp_url, known_consumers=[("notifications", CUSTOMER_DIRECTORY)]
    ) as namespace:
        yield namespace


service = service_fixture(
    create_app, NotificationsSettings, with_broker=True, consumer_delivery_limit=DELIVERY_LIMIT
)


@pytest_asyncio.fixture
async def publisher(amqp_url: str, ns: BrokerNamespace) -> AsyncIterator[EventPublisher]:
    """Publishes as auth would (its relay uses the same publisher)."""
    events = EventPublisher(amqp_url, ns.exchange, service="auth")
    await events.connect()
    try:
        yield events
    finally:
        await events.close()


@pytest.fixture
def stub(
    service: RunningService[NotificationsRuntime],
) -> notifications_pb2_grpc.NotificationsServiceStub:
    return notifications_pb2_grpc.NotificationsServiceStub(service.channel)


async def get_recipient(
    stub: notifications_pb2_grpc.NotificationsServiceStub, customer_id: str = "cus_1"
) -> notifications_pb2.Recipient | None:
    try:
        return await stub.GetRecipient(
            notifications_pb2.GetRecipientRequest(
                business_id="bus_1", mode=common_pb2.MODE_TEST, customer_id=customer_id
            ),
        )
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.NOT_FOUND:
            return None
        raise


async def handled(service: RunningService[NotificationsRuntime], event_id: str) -> bool:
    """Whether the consumer committed this event (its processed_events record exists)."""
    found = await service.runtime.db["processed_events"].find_one(
        {"_id": f"{CUSTOMER_DIRECTORY}:{event_id}"}
    )
    return found is not None


async def test_reports_serving_and_ready(service: RunningService[NotificationsRuntime]) -> None:
    assert await service.is_serving(SERVICE)
    assert await service.readyz() == 200


async def test_unknown_recipient_is_not_found(
    stub: notifications_pb2_grpc.NotificationsServiceStub,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetRecipient(
            notifications_pb2.GetRecipientRequest(
                business_id="bus_1", mode=common_pb2.MODE_TEST, customer_id="cus_nobody"
            ),
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    error = domain_error_from(err.value)
    assert error is not None and error.reason is Reason.RECIPIENT_NOT_FOUND


async def test_customer_created_on_the_broker_becomes_a_recipient(
    publisher: EventPublisher, stub: notifications_pb2_grpc.NotificationsServiceStub
) -> None:
    await publisher.publish(customer_event("evt_created", locale="it"))

    recipient = await eventually(lambda: get_recipient(stub), message="recipient never appeared")

    assert (recipient.email, recipient.name, recipient.locale) == ("ada@example.com", "Ada", "it")
    assert recipient.last_event_id == "evt_created"
    assert recipient.updated_at.ToDatetime(tzinfo=UTC) == T0
    # Another mode is another directory.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetRecipient(
            notifications_pb2.GetRecipientRequest(
                business_id="bus_1", mode=common_pb2.MODE_LIVE, customer_id="cus_1"
            ),
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_the_same_event_delivered_twice_has_one_effect(
    service: RunningService[NotificationsRuntime],
    publisher: EventPublisher,
    stub: notifications_pb2_grpc.NotificationsServiceStub,
) -> None:
    created = customer_event("evt_twice", name="Ada")
    await publisher.publish(created)
    await eventually(lambda: get_recipient(stub))
    # A newer update, then the first event once more (a redelivery after a lost ack).
    renamed = customer_event(
        "evt_renamed", type="customer.updated", time=T0 + timedelta(minutes=5), name="Ada L."
    )
    await publisher.publish(renamed)
    await eventually(lambda: handled(service, "evt_renamed"))
    await publisher.publish(created)
    # A marker published after the duplicate: once it is handled the duplicate was too.
    await publisher.publish(customer_event("evt_marker", customer_id="cus_marker"))
    await eventually(lambda: get_recipient(stub, "cus_marker"))

    recipient = await get_recipient(stub)
    assert recipient is not None
    assert (recipient.name, recipient.last_event_id) == ("Ada L.", "evt_renamed")
    assert (
        await service.runtime.db["processed_events"].count_documents({"event_id": "evt_twice"}) == 1
    )
    assert await service.runtime.db["recipients"].count_documents({"customer_id": "cus_1"}) == 1
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{service.runtime.ops_port}/metrics") as response,
    ):
        metrics = await response.text()
    assert 'handler="customer-directory",outcome="duplicate"' in metrics


async def test_an_older_update_after_a_newer_one_does_not_overwrite(
    service: RunningService[NotificationsRuntime],
    publisher: EventPublisher,
    stub: notifications_pb2_grpc.NotificationsServiceStub,
) -> None:
    newer = customer_event(
        "evt_new",
        type="customer.updated",
        time=T0 + timedelta(hours=2),
        email="ada.new@example.com",
        name="New name",
    )
    older = customer_event(
        "evt_old",
        type="customer.updated",
        time=T0 + timedelta(hours=1),
        email="ada.old@example.com",
        name="Old name",
    )
    await publisher.publish(newer)
    await eventually(lambda: get_recipient(stub))
    await publisher.publish(older)
    await eventually(lambda: handled(service, "evt_old"), message="older event never handled")

    recipient = await get_recipient(stub)
    assert recipient is not None
    assert (recipient.email, recipient.name, recipient.last_event_id) == (
        "ada.new@example.com",
        "New name",
        "evt_new",
    )


async def test_invalid_customer_data_is_dead_lettered_and_writes_nothing(
    service: RunningService[NotificationsRuntime],
    publisher: EventPublisher,
    ns: BrokerNamespace,
    amqp_url: str,
    stub: notifications_pb2_grpc.NotificationsServiceStub,
) -> None:
    await publisher.publish(customer_event("evt_bad", customer_id="cus_bad", email="not-an-email"))
    dead_letter_queue = ns.dead_letter_queue("notifications", CUSTOMER_DIRECTORY)

    async def dead_lettered() -> list[Any]:
        return await take_queue_messages(amqp_url, dead_letter_queue)

    messages = await eventually(dead_lettered, within=20, message="bad event not dead-lettered")
    assert [m.message_id for m in messages] == ["evt_bad"]
    assert await get_recipient(stub, "cus_bad") is None
    assert not await handled(service, "evt_bad")
    # Good events still flow after the bad one.
    await publisher.publish(customer_event("evt_good", customer_id="cus_good"))
    assert await eventually(lambda: get_recipient(stub, "cus_good"))
