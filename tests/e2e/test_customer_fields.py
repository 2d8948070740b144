"""Customers' metadata, preferred_locale and email through the official SDK, against
the whole running stack; the customer's language reaches the emails they get."""

from __future__ import annotations

import contextlib
import uuid

import dodopayments
import grpc
import pytest
from billing.common.v1 import common_pb2
from billing.notifications.v1 import notifications_pb2, notifications_pb2_grpc
from billing_kit.testing import eventually
from devstack import BusinessWithKey, Mailbox, Stack
from dodopayments import AsyncDodoPayments

pytestmark = pytest.mark.e2e

EVENT_DELIVERY_LIMIT_SECONDS = 20.0


def unique_email(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:10]}@example.com"


async def recipient_locale(stack: Stack, business_id: str, customer_id: str, expected: str) -> str:
    """Notifications' idea of the customer's language, once it has caught up (bounded)."""
    seen = None
    async with grpc.aio.insecure_channel(stack.grpc_target("notifications")) as channel:
        stub = notifications_pb2_grpc.NotificationsServiceStub(channel)
        request = notifications_pb2.GetRecipientRequest(
            business_id=business_id, mode=common_pb2.MODE_TEST, customer_id=customer_id
        )

        async def caught_up() -> bool:
            nonlocal seen
            try:
                seen = (await stub.GetRecipient(request, timeout=5)).locale
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.NOT_FOUND:
                    raise
            return seen == expected

        # Bounded: on a timeout the caller's assertion shows the language last seen.
        with contextlib.suppress(AssertionError):
            await eventually(caught_up, within=EVENT_DELIVERY_LIMIT_SECONDS, interval=0.25)
    return str(seen)


async def test_metadata_language_and_email_round_trip_through_the_sdk(
    stack: Stack, merchant: BusinessWithKey, sdk: AsyncDodoPayments
) -> None:
    email = unique_email("giulia")
    customer = await sdk.customers.create(
        email=email,
        name="Giulia Verdi",
        metadata={"crm_id": "42", "plan.tier": "gold"},
        preferred_locale="it",
    )
    assert customer.metadata == {"crm_id": "42", "plan.tier": "gold"}
    assert customer.preferred_locale == "it"
    fetched = await sdk.customers.retrieve(customer.customer_id)
    assert fetched.metadata == {"crm_id": "42", "plan.tier": "gold"}
    assert fetched.preferred_locale == "it"
    # The customer.created event carried the language to notifications.
    assert await recipient_locale(stack, merchant.business_id, customer.customer_id, "it") == "it"

    renamed = await sdk.customers.update(customer.customer_id, name="Giulia Bianchi")
    assert renamed.preferred_locale == "it" and renamed.metadata == fetched.metadata

    cleared = await sdk.customers.update(customer.customer_id, preferred_locale=None)
    assert cleared.preferred_locale is None
    replaced = await sdk.customers.update(customer.customer_id, metadata={"crm_id": "43"})
    assert replaced.metadata == {"crm_id": "43"} and replaced.preferred_locale is None
    fetched = await sdk.customers.retrieve(customer.customer_id)
    assert (fetched.name, fetched.metadata, fetched.preferred_locale) == (
        "Giulia Bianchi",
        {"crm_id": "43"},
        None,
    )

    new_email = unique_email("giulia.new")
    moved = await sdk.customers.update(customer.customer_id, email=new_email)
    assert moved.email == new_email
    listed = await sdk.customers.list(email=new_email)
    assert [c.customer_id for c in listed.items] == [customer.customer_id]

    other = await sdk.customers.create(email=unique_email("marco"), name="Marco")
    with pytest.raises(dodopayments.ConflictError) as info:
        await sdk.customers.update(other.customer_id, email=new_email)
    assert info.value.status_code == 409
    assert (await sdk.customers.retrieve(other.customer_id)).email == other.email

    with pytest.raises(dodopayments.UnprocessableEntityError):
        await sdk.customers.update(customer.customer_id, metadata={f"k{i}": "v" for i in range(51)})
    assert (await sdk.customers.retrieve(customer.customer_id)).metadata == {"crm_id": "43"}


async def test_magic_link_email_is_in_the_customers_language(
    sdk: AsyncDodoPayments, mailbox: Mailbox
) -> None:
    italian = await sdk.customers.create(
        email=unique_email("lucia"), name="Lucia Neri", preferred_locale="it"
    )
    english = await sdk.customers.create(email=unique_email("ann"), name="Ann Lee")

    for customer in (italian, english):
        await sdk.customers.customer_portal.create(customer.customer_id, send_email=True)

    to_italian = await mailbox.wait_for(italian.email)
    assert "Il tuo link al Portale Clienti" in to_italian.subject
    to_english = await mailbox.wait_for(english.email)
    assert "Your customer portal link" in to_english.subject
