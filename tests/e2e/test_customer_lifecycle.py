"""A merchant creates a customer with the official SDK; notifications learns about it."""

from __future__ import annotations

import uuid

import grpc
import pytest
from billing.common.v1 import common_pb2
from billing.notifications.v1 import notifications_pb2, notifications_pb2_grpc
from billing_kit.testing import eventually
from devstack import BusinessWithKey, Stack
from dodopayments import AsyncDodoPayments

pytestmark = pytest.mark.e2e

EVENT_DELIVERY_LIMIT_SECONDS = 20.0


async def wait_for_recipient(
    stack: Stack, business_id: str, customer_id: str
) -> notifications_pb2.Recipient:
    """Poll notifications until the customer.created event has been applied (bounded)."""
    async with grpc.aio.insecure_channel(stack.grpc_target("notifications")) as channel:
        stub = notifications_pb2_grpc.NotificationsServiceStub(channel)
        request = notifications_pb2.GetRecipientRequest(
            business_id=business_id, mode=common_pb2.MODE_TEST, customer_id=customer_id
        )

        async def recipient() -> notifications_pb2.Recipient | None:
            try:
                return await stub.GetRecipient(request, timeout=5)
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.NOT_FOUND:
                    raise
                return None

        return await eventually(
            recipient,
            within=EVENT_DELIVERY_LIMIT_SECONDS,
            interval=0.25,
            message=f"notifications never saw customer.created for {customer_id}",
        )


async def test_sdk_created_customer_reaches_notifications(
    stack: Stack, merchant: BusinessWithKey, sdk: AsyncDodoPayments
) -> None:
    email = f"ada-{uuid.uuid4().hex[:10]}@example.com"

    customer = await sdk.customers.create(email=email, name="Ada Lovelace")

    assert customer.email == email
    assert customer.name == "Ada Lovelace"
    assert customer.business_id == merchant.business_id
    assert customer.customer_id
    fetched = await sdk.customers.retrieve(customer.customer_id)
    assert fetched.customer_id == customer.customer_id
    assert fetched.email == email

    recipient = await wait_for_recipient(stack, merchant.business_id, customer.customer_id)
    assert recipient.email == email
    assert recipient.name == "Ada Lovelace"
    assert recipient.customer_id == customer.customer_id
    assert recipient.last_event_id


async def test_creating_the_same_email_twice_returns_the_same_customer(
    sdk: AsyncDodoPayments,
) -> None:
    email = f"twice-{uuid.uuid4().hex[:10]}@example.com"

    first = await sdk.customers.create(email=email, name="Grace Hopper")
    second = await sdk.customers.create(email=email, name="Grace Hopper")

    assert second.customer_id == first.customer_id
    page = await sdk.customers.list(email=email)
    assert [c.customer_id for c in page.items] == [first.customer_id]
