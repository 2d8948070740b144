"""Merchants manage add-ons with the official Dodo SDK (``client.addons.*``) and offer them
on subscription products (``addons`` on ``client.products.*``).

Create, retrieve, list (live and archived), update, archive and unarchive; another
business's or the other mode's add-on is 404; a bad field is a 422 naming it with
nothing written; a product offering an add-on it cannot (unknown, another business's,
archived, another currency) is a 409 naming ``addons`` (one listed twice: 422). The SDK
parses leniently, so every test asserts on fields.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from devstack import Stack
from devstack.portal import create_portal_business
from dodopayments import ConflictError, NotFoundError, UnprocessableEntityError

from .conftest import merchant_sdk

pytestmark = pytest.mark.e2e

MONTHLY: dict[str, Any] = {
    "type": "recurring_price",
    "currency": "USD",
    "price": 1500,
    "payment_frequency_count": 1,
    "payment_frequency_interval": "Month",
    "subscription_period_count": 1,
    "subscription_period_interval": "Year",
}


async def test_addons_round_trip_and_stay_with_their_business(stack: Stack) -> None:
    async with stack.auth_admin() as admin:
        shop = await create_portal_business(admin, f"Addon shop {uuid.uuid4().hex[:6]}")
        other = await create_portal_business(admin, f"Other shop {uuid.uuid4().hex[:6]}")
    async with (
        merchant_sdk(stack, shop) as sdk,
        merchant_sdk(stack, shop, "live") as live_sdk,
        merchant_sdk(stack, other) as other_sdk,
    ):
        seat = await sdk.addons.create(
            name="Extra seat",
            description="One more teammate",
            price=500,
            currency="USD",
            tax_category="saas",
            extra_body={"max_quantity": 5},
        )
        storage = await sdk.addons.create(
            name="Storage", price=200, currency="USD", tax_category="saas"
        )

        assert seat.id.startswith("adn_")
        assert (seat.business_id, seat.name, seat.price, seat.currency) == (
            shop.business_id,
            "Extra seat",
            500,
            "USD",
        )
        assert seat.description == "One more teammate"
        assert seat.model_extra is not None and seat.model_extra["max_quantity"] == 5

        updated = await sdk.addons.update(seat.id, price=700, description=None)
        assert (updated.price, updated.description, updated.name) == (700, None, "Extra seat")
        again = await sdk.addons.retrieve(seat.id)
        assert (again.price, again.description) == (700, None)

        await sdk.addons.delete(storage.id)
        assert [a.id async for a in sdk.addons.list()] == [seat.id]
        assert [a.id async for a in sdk.addons.list(archived=True)] == [storage.id]
        await sdk.addons.unarchive(storage.id)
        assert {a.id async for a in sdk.addons.list()} == {seat.id, storage.id}

        for stranger in (other_sdk, live_sdk):
            with pytest.raises(NotFoundError):
                await stranger.addons.retrieve(seat.id)
            with pytest.raises(NotFoundError):
                await stranger.addons.update(seat.id, price=1)
            assert [a.id async for a in stranger.addons.list()] == []

        with pytest.raises(UnprocessableEntityError) as refused:
            await sdk.addons.update(seat.id, price=0)
        assert refused.value.body["errors"][0]["field"] == "price"  # type: ignore[index]
        with pytest.raises(UnprocessableEntityError) as bad_currency:
            await sdk.addons.create(
                name="Bad",
                price=100,
                currency="usd",
                tax_category="saas",  # type: ignore[arg-type]
            )
        assert bad_currency.value.body["errors"][0]["field"] == "currency"  # type: ignore[index]
        assert (await sdk.addons.retrieve(seat.id)).price == 700
        assert {a.id async for a in sdk.addons.list()} == {seat.id, storage.id}


async def test_a_subscription_product_offers_the_business_addons(stack: Stack) -> None:
    async with stack.auth_admin() as admin:
        shop = await create_portal_business(admin, f"Offer shop {uuid.uuid4().hex[:6]}")
        other = await create_portal_business(admin, f"Foreign shop {uuid.uuid4().hex[:6]}")
    async with merchant_sdk(stack, shop) as sdk, merchant_sdk(stack, other) as other_sdk:
        seat = await sdk.addons.create(name="Seat", price=500, currency="USD", tax_category="saas")
        euro = await sdk.addons.create(name="Euro", price=500, currency="EUR", tax_category="saas")
        foreign = await other_sdk.addons.create(
            name="Theirs", price=500, currency="USD", tax_category="saas"
        )

        product = await sdk.products.create(
            name="Team",
            tax_category="saas",
            price=MONTHLY,  # type: ignore[arg-type]
            addons=[seat.id],
        )
        assert product.addons == [seat.id]
        assert (await sdk.products.retrieve(product.product_id)).addons == [seat.id]

        for addons in ([foreign.id], ["adn_missing"], [euro.id]):
            with pytest.raises(ConflictError) as refused:
                await sdk.products.create(
                    name="Refused",
                    tax_category="saas",
                    price=MONTHLY,  # type: ignore[arg-type]
                    addons=addons,
                )
            assert refused.value.response.headers["x-should-retry"] == "false"
            assert "addons" in refused.value.body["detail"]  # type: ignore[index]
        with pytest.raises(UnprocessableEntityError) as twice:
            await sdk.products.create(
                name="Refused",
                tax_category="saas",
                price=MONTHLY,  # type: ignore[arg-type]
                addons=[seat.id, seat.id],
            )
        assert twice.value.body["errors"][0]["field"].startswith("addons")  # type: ignore[index]
        with pytest.raises(ConflictError):
            await sdk.products.update(product.product_id, addons=[foreign.id])
        assert (await sdk.products.retrieve(product.product_id)).addons == [seat.id]
        assert [p.name async for p in sdk.products.list()] == ["Team"]

        await sdk.products.update(product.product_id, addons=[])
        assert (await sdk.products.retrieve(product.product_id)).addons == []
        assert [p.name async for p in sdk.products.list()] == ["Team"]
