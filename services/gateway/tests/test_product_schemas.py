"""The /products request models: what the SDK may send, what is refused, and how it maps."""

from __future__ import annotations

from typing import Any

import pytest
from gateway.api.product_schemas import (
    CreateProductBody,
    ListProductsQuery,
    UpdateProductBody,
    price_to_proto,
)
from gateway.problems import field_errors
from pydantic import ValidationError

ONE_TIME = {"type": "one_time_price", "currency": "EUR", "price": 100}
MONTHLY = {
    "type": "recurring_price",
    "currency": "USD",
    "price": 1500,
    "payment_frequency_count": 1,
    "payment_frequency_interval": "Month",
    "subscription_period_count": 1,
    "subscription_period_interval": "Year",
}


def _create(**changes: Any) -> dict[str, Any]:
    return {"name": "Widget", "tax_category": "saas", "price": ONE_TIME, **changes}


def _errors(model: Any, payload: dict[str, Any]) -> list[dict[str, str]]:
    with pytest.raises(ValidationError) as refused:
        model.model_validate(payload)
    return field_errors(refused.value)


@pytest.mark.parametrize(
    "field",
    ["brand_id", "credit_entitlements", "digital_product_delivery", "entitlements"],
)
def test_an_unsupported_field_with_a_value_is_refused_by_name(field: str) -> None:
    errors = _errors(CreateProductBody, _create(**{field: ["x"]}))

    assert errors == [
        {
            "field": field,
            "message": "Not supported by this server; leave it out or send null",
            "type": "unsupported_field",
        }
    ]


def test_unsupported_fields_sent_as_null_are_fine() -> None:
    body = CreateProductBody.model_validate(_create(brand_id=None, pricing_mode=None))
    assert body.brand_id is None


def test_a_usage_based_price_is_unsupported() -> None:
    errors = _errors(CreateProductBody, _create(price={"type": "usage_based_price"}))
    assert [(e["field"], e["type"]) for e in errors] == [("price", "unsupported_field")]


@pytest.mark.parametrize(
    ("field", "payload"),
    [
        ("price.one_time_price.price", _create(price={**ONE_TIME, "price": "100"})),
        ("price.one_time_price.price", _create(price={**ONE_TIME, "price": True})),
        ("license_key_enabled", _create(license_key_enabled="true")),
        ("price.recurring_price.tax_inclusive", _create(price={**MONTHLY, "tax_inclusive": 1})),
        ("license_key_activations_limit", _create(license_key_activations_limit="3")),
    ],
)
def test_numbers_and_booleans_must_be_json_typed(field: str, payload: dict[str, Any]) -> None:
    assert field in [e["field"] for e in _errors(CreateProductBody, payload)]


@pytest.mark.parametrize("field", ["name", "price", "tax_category", "license_key_enabled"])
def test_an_update_cannot_null_a_required_field(field: str) -> None:
    errors = _errors(UpdateProductBody, {field: None})
    assert field in " ".join(e["field"] + " " + e["message"] for e in errors)


def test_an_update_may_null_the_optional_fields() -> None:
    body = UpdateProductBody.model_validate(
        {"description": None, "license_key_duration": None, "metadata": None}
    )
    assert body.model_fields_set == {"description", "license_key_duration", "metadata"}
    assert body.price is None


@pytest.mark.parametrize(("sent", "index"), [(None, 0), ("0", 0), ("1", 0), ("2", 1), ("3", 2)])
def test_pages_are_counted_as_the_sdk_walks_them(sent: str | None, index: int) -> None:
    query = ListProductsQuery.model_validate({} if sent is None else {"page_number": sent})
    assert query.page_index == index


def test_the_deprecated_percent_discount_becomes_basis_points() -> None:
    legacy = CreateProductBody.model_validate(_create(price={**ONE_TIME, "discount": 15}))
    both = CreateProductBody.model_validate(
        _create(price={**ONE_TIME, "discount": 15, "discount_bps": 1250})
    )

    assert price_to_proto(legacy.price).discount_bps == 1500
    assert price_to_proto(both.price).discount_bps == 1250  # the precise one wins


def test_a_recurring_price_maps_every_field() -> None:
    body = CreateProductBody.model_validate(_create(price={**MONTHLY, "trial_period_days": 9}))
    message = price_to_proto(body.price)

    assert (message.type, message.price, message.currency) == ("recurring_price", 1500, "USD")
    assert (message.payment_frequency_count, message.payment_frequency_interval) == (1, "Month")
    assert message.trial_period_days == 9
    assert not message.HasField("tax_inclusive")
