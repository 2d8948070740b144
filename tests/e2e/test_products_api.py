"""Merchants manage their catalogue with the official Dodo SDK: ``client.products.*``.

Create, retrieve, list (filters, auto-pagination), update, archive and unarchive,
one-time and recurring prices, license-key settings; another business's or the
other mode's product is 404; bad and unsupported fields are a 422 naming them,
with nothing written. The SDK parses leniently, so every test asserts on fields.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from devstack import Stack
from devstack.portal import PortalBusiness, create_portal_business
from dodopayments import AsyncDodoPayments, NotFoundError, UnprocessableEntityError

from .conftest import merchant_sdk

pytestmark = pytest.mark.e2e

ONE_TIME: dict[str, Any] = {"type": "one_time_price", "currency": "EUR", "price": 4900}
MONTHLY: dict[str, Any] = {
    "type": "recurring_price",
    "currency": "USD",
    "price": 1500,
    "payment_frequency_count": 1,
    "payment_frequency_interval": "Month",
    "subscription_period_count": 10,
    "subscription_period_interval": "Year",
    "trial_period_days": 14,
    "discount_bps": 1250,
    "tax_inclusive": True,
}


async def new_shop(stack: Stack, label: str) -> PortalBusiness:
    """A business of its own, so what its lists hold is only what the test made."""
    async with stack.auth_admin() as admin:
        return await create_portal_business(admin, f"{label} {uuid.uuid4().hex[:6]}")


async def test_a_one_time_product_with_license_keys_round_trips(
    shop_sdk: AsyncDodoPayments, shop: PortalBusiness
) -> None:
    created = await shop_sdk.products.create(
        name="Pro Editor",
        description="The desktop editor",
        tax_category="digital_products",
        price=ONE_TIME,  # type: ignore[arg-type]
        license_key_enabled=True,
        license_key_activations_limit=3,
        license_key_duration={"count": 1, "interval": "Year"},
        license_key_activation_message="Welcome aboard",
        metadata={"sku": "ED-1"},
    )

    assert created.product_id.startswith("pdt_")
    assert created.business_id == shop.business_id
    assert created.is_recurring is False
    assert created.price.type == "one_time_price"
    assert (created.price.price, created.price.currency) == (4900, "EUR")
    fetched = await shop_sdk.products.retrieve(created.product_id)
    assert fetched.name == "Pro Editor"
    assert fetched.description == "The desktop editor"
    assert fetched.tax_category == "digital_products"
    assert fetched.license_key_enabled is True
    assert fetched.license_key_activations_limit == 3
    assert fetched.license_key_duration is not None
    assert (fetched.license_key_duration.count, fetched.license_key_duration.interval) == (
        1,
        "Year",
    )
    assert fetched.license_key_activation_message == "Welcome aboard"
    assert fetched.metadata == {"sku": "ED-1"}
    assert fetched.created_at == created.created_at

    # PATCH returns nothing (as Dodo's); the change shows on the next read.
    await shop_sdk.products.update(
        created.product_id,
        name="Pro Editor 2",
        price={**ONE_TIME, "price": 5900},  # type: ignore[arg-type]
        license_key_activations_limit=None,  # unlimited
        license_key_duration=None,  # never expires
    )
    updated = await shop_sdk.products.retrieve(created.product_id)
    assert updated.name == "Pro Editor 2"
    assert updated.price.price == 5900
    assert updated.license_key_activations_limit is None
    assert updated.license_key_duration is None
    assert updated.license_key_activation_message == "Welcome aboard"  # not sent: unchanged
    assert updated.description == "The desktop editor"
    assert updated.updated_at > created.updated_at


async def test_recurring_products_and_the_recurring_filter(stack: Stack) -> None:
    shop = await new_shop(stack, "Recurring shop")
    async with merchant_sdk(stack, shop) as sdk:
        plan = await sdk.products.create(
            name="Monthly plan",
            tax_category="saas",
            price=MONTHLY,  # type: ignore[arg-type]
        )
        one_off = await sdk.products.create(
            name="Setup fee",
            tax_category="saas",
            price=ONE_TIME,  # type: ignore[arg-type]
        )

        fetched = await sdk.products.retrieve(plan.product_id)
        assert fetched.is_recurring is True
        price = fetched.price
        assert price.type == "recurring_price"
        assert (price.price, price.currency) == (1500, "USD")
        assert (price.payment_frequency_count, price.payment_frequency_interval) == (1, "Month")
        assert (price.subscription_period_count, price.subscription_period_interval) == (
            10,
            "Year",
        )
        assert price.trial_period_days == 14
        assert (price.discount_bps, price.discount) == (1250, 12)
        assert price.tax_inclusive is True
        assert fetched.license_key_enabled is False

        recurring = [p async for p in sdk.products.list(recurring=True)]
        one_time = [p async for p in sdk.products.list(recurring=False)]
        every = [p async for p in sdk.products.list()]

    assert [p.product_id for p in recurring] == [plan.product_id]
    assert [p.product_id for p in one_time] == [one_off.product_id]
    assert [p.product_id for p in every] == [one_off.product_id, plan.product_id]  # newest first
    item = recurring[0]
    # The list item flattens the price (Dodo's ProductListResponse) and keeps the detail.
    assert (item.price, item.currency, item.tax_inclusive) == (1500, "USD", True)
    assert item.price_detail is not None and item.price_detail.type == "recurring_price"
    assert item.is_recurring is True
    assert item.name == "Monthly plan"
    assert item.business_id == shop.business_id


async def test_auto_pagination_walks_every_page(stack: Stack) -> None:
    shop = await new_shop(stack, "Paged shop")
    async with merchant_sdk(stack, shop) as sdk:
        made = [
            (
                await sdk.products.create(
                    name=f"Item {n}",
                    tax_category="e_book",
                    price={**ONE_TIME, "price": 100 + n},  # type: ignore[arg-type]
                )
            ).product_id
            for n in range(5)
        ]
        walked = [p.product_id async for p in sdk.products.list(page_size=2)]
        first_page = await sdk.products.list(page_size=2)

    assert walked == list(reversed(made))  # all five, newest first, none twice
    assert [p.product_id for p in first_page.items] == walked[:2]


async def test_archive_hides_from_the_list_and_unarchive_brings_it_back(stack: Stack) -> None:
    shop = await new_shop(stack, "Archiving shop")
    async with merchant_sdk(stack, shop) as sdk:
        product = await sdk.products.create(
            name="Old plan",
            tax_category="saas",
            price=MONTHLY,  # type: ignore[arg-type]
        )

        await sdk.products.archive(product.product_id)
        await sdk.products.archive(product.product_id)  # again: harmless
        live = [p.product_id async for p in sdk.products.list()]
        archived = [p.product_id async for p in sdk.products.list(archived=True)]
        still_readable = await sdk.products.retrieve(product.product_id)
        assert live == []
        assert archived == [product.product_id]
        assert still_readable.name == "Old plan"

        await sdk.products.unarchive(product.product_id)
        assert [p.product_id async for p in sdk.products.list()] == [product.product_id]
        assert [p.product_id async for p in sdk.products.list(archived=True)] == []


async def test_another_business_or_mode_cannot_see_or_touch_a_product(
    stack: Stack, shop_sdk: AsyncDodoPayments, shop: PortalBusiness
) -> None:
    product = await shop_sdk.products.create(
        name="Private",
        tax_category="saas",
        price=ONE_TIME,  # type: ignore[arg-type]
    )
    other = await new_shop(stack, "Other merchant")
    for intruder in (merchant_sdk(stack, other, "test"), merchant_sdk(stack, shop, "live")):
        async with intruder as sdk:
            with pytest.raises(NotFoundError):
                await sdk.products.retrieve(product.product_id)
            with pytest.raises(NotFoundError):
                await sdk.products.update(product.product_id, name="Mine now")
            with pytest.raises(NotFoundError):
                await sdk.products.archive(product.product_id)
            with pytest.raises(NotFoundError):
                await sdk.products.unarchive(product.product_id)
            assert product.product_id not in [p.product_id async for p in sdk.products.list()]
    untouched = await shop_sdk.products.retrieve(product.product_id)
    assert untouched.name == "Private"
    assert [p.product_id async for p in shop_sdk.products.list()].count(product.product_id) == 1


BAD_BODIES: list[tuple[str, dict[str, Any]]] = [
    ("price.price", {"price": {**ONE_TIME, "price": 0}}),
    ("price.price", {"price": {**MONTHLY, "price": -5}}),
    ("price.currency", {"price": {**ONE_TIME, "currency": "eur"}}),
    ("price.currency", {"price": {**ONE_TIME, "currency": "XYZ"}}),
    ("price.payment_frequency_count", {"price": {**MONTHLY, "payment_frequency_count": 0}}),
    ("price.subscription_period_count", {"price": {**MONTHLY, "subscription_period_count": 0}}),
    (
        "price.payment_frequency_interval",
        {"price": {**MONTHLY, "payment_frequency_interval": "month"}},
    ),
    ("price.trial_period_days", {"price": {**MONTHLY, "trial_period_days": 5000}}),
    ("price.trial_period_days", {"price": {**MONTHLY, "trial_period_days": -1}}),
    ("name", {"name": ""}),
    ("name", {"name": "x" * 101}),
    ("tax_category", {"tax_category": "groceries"}),
    ("license_key_activations_limit", {"license_key_activations_limit": 0}),
    ("license_key_duration.count", {"license_key_duration": {"count": 0, "interval": "Day"}}),
    ("license_key_duration.interval", {"license_key_duration": {"count": 1, "interval": "Decade"}}),
]


async def test_bad_bodies_are_refused_naming_the_field_and_nothing_is_written(
    stack: Stack,
) -> None:
    shop = await new_shop(stack, "Strict shop")
    async with merchant_sdk(stack, shop) as sdk:
        for field, change in BAD_BODIES:
            body = {"name": "Widget", "tax_category": "saas", "price": ONE_TIME, **change}
            with pytest.raises(UnprocessableEntityError) as refused:
                await sdk.products.create(**body)
            errors = refused.value.body["errors"]  # type: ignore[index]
            assert field in [e["field"] for e in errors], (field, errors)
            assert field in refused.value.body["detail"]  # type: ignore[index]

        product = await sdk.products.create(
            name="Widget",
            tax_category="saas",
            price=ONE_TIME,  # type: ignore[arg-type]
        )
        with pytest.raises(UnprocessableEntityError):
            await sdk.products.update(product.product_id, price={**ONE_TIME, "price": 0})  # type: ignore[typeddict-item]
        with pytest.raises(UnprocessableEntityError):
            await sdk.products.update(product.product_id, name=None)
        assert [p.product_id async for p in sdk.products.list()] == [product.product_id]
        assert [p.product_id async for p in sdk.products.list(archived=True)] == []
        unchanged = await sdk.products.retrieve(product.product_id)
        assert (unchanged.name, unchanged.price.price) == ("Widget", 4900)


UNSUPPORTED: list[tuple[str, dict[str, Any]]] = [
    ("entitlements", {"entitlements": [{"entitlement_id": "ent_1"}]}),
    ("credit_entitlements", {"credit_entitlements": []}),
    ("digital_product_delivery", {"digital_product_delivery": {"external_url": "https://x.io"}}),
    ("pricing_mode", {"pricing_mode": "by_country"}),
    ("brand_id", {"brand_id": "brd_1"}),
    (
        "price",
        {
            "price": {
                "type": "usage_based_price",
                "currency": "USD",
                "fixed_price": 100,
                "payment_frequency_count": 1,
                "payment_frequency_interval": "Month",
                "subscription_period_count": 1,
                "subscription_period_interval": "Year",
                "meters": [{"meter_id": "mtr_1"}],
            }
        },
    ),
    ("price.trial_amount", {"price": {**MONTHLY, "trial_amount": 100}}),
]


async def test_fields_we_do_not_support_are_a_422_naming_them(stack: Stack) -> None:
    shop = await new_shop(stack, "Unsupported shop")
    async with merchant_sdk(stack, shop) as sdk:
        for field, change in UNSUPPORTED:
            body = {"name": "Widget", "tax_category": "saas", "price": ONE_TIME, **change}
            with pytest.raises(UnprocessableEntityError) as refused:
                await sdk.products.create(**body)
            errors = refused.value.body["errors"]  # type: ignore[index]
            assert {"field": field, "type": "unsupported_field"}.items() <= errors[0].items(), (
                field,
                errors,
            )
        # null is "not using it", which is fine.
        product = await sdk.products.create(
            name="Widget",
            tax_category="saas",
            price=ONE_TIME,  # type: ignore[arg-type]
            addons=None,
            entitlements=None,
        )
        with pytest.raises(UnprocessableEntityError) as refused:
            await sdk.products.update(product.product_id, image_id="img_1")
        assert refused.value.body["errors"][0]["field"] == "image_id"  # type: ignore[index]
        assert [p.product_id async for p in sdk.products.list()] == [product.product_id]
