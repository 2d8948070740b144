"""The /subscriptions request models: what the SDK sends is read as the document says."""

from __future__ import annotations

from typing import Any

import pytest
from gateway.api.checkouts import CreateCheckoutBody
from gateway.api.license_schemas import (
    ActivateLicenseBody,
    CreateLicenseKeyBody,
    UpdateLicenseKeyBody,
)
from gateway.api.subscription_schemas import (
    AddonIn,
    AdvanceClockBody,
    CreateSubscriptionBody,
    ListSubscriptionsQuery,
    UpdateSubscriptionBody,
)
from pydantic import BaseModel, ValidationError


def _errors(model: type[BaseModel], data: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as err:
        model.model_validate(data)
    return [(".".join(map(str, e["loc"])), e["type"]) for e in err.value.errors()]


@pytest.mark.parametrize(("sent", "served"), [(None, 0), ("0", 0), ("1", 0), ("2", 1), ("3", 2)])
def test_the_sdk_page_walk_reaches_every_page(sent: str | None, served: int) -> None:
    query = ListSubscriptionsQuery.model_validate({} if sent is None else {"page_number": sent})
    assert query.page_index == served


def test_list_dates_are_iso_8601_only() -> None:
    assert _errors(ListSubscriptionsQuery, {"created_at_lte": "0.5"})[0][0] == "created_at_lte"
    ok = ListSubscriptionsQuery.model_validate({"created_at_lte": "2026-01-01T00:00:00Z"})
    assert ok.created_at_lte is not None


@pytest.mark.parametrize("sent", [2.2e-308, 0, "0.5", "2026-01-01", "2026-01-01T00:00:00", True])
@pytest.mark.parametrize(
    ("model", "field"),
    [
        (UpdateSubscriptionBody, "next_billing_date"),
        (AdvanceClockBody, "to"),
        (UpdateLicenseKeyBody, "expires_at"),
        (CreateLicenseKeyBody, "expires_at"),
    ],
)
def test_body_dates_are_rfc_3339_strings_with_a_zone_only(
    model: type[BaseModel], field: str, sent: Any
) -> None:
    # Pydantic alone would read a number as a Unix time: the document promises a string.
    body: dict[str, Any] = {field: sent}
    if model is CreateLicenseKeyBody:
        body |= {"customer_id": "cus_1", "key": "K-1", "product_id": "pdt_1"}
    assert field in {loc.split(".")[0] for loc, _ in _errors(model, body)}
    body[field] = "2026-01-31T00:00:00+01:00"
    assert getattr(model.model_validate(body), field).utcoffset() is not None


@pytest.mark.parametrize("name", ["", " ", "\x85", "\u2003\t"])
def test_an_instance_name_of_only_whitespace_is_refused_by_the_document(name: str) -> None:
    assert _errors(ActivateLicenseBody, {"license_key": "K", "name": name})[0][0] == "name"
    assert ActivateLicenseBody.model_validate({"license_key": "K", "name": " laptop "}).name


@pytest.mark.parametrize(
    ("model", "data", "field"),
    [
        (UpdateSubscriptionBody, {"status": "past_due"}, "status"),
        (UpdateSubscriptionBody, {"pause": True}, "pause"),
        (
            CreateCheckoutBody,
            {
                "product_cart": [{"product_id": "pdt_1", "quantity": 1}],
                "customer": {"customer_id": "cus_1"},
                "return_url": "https://shop.example/done",
                "subscription_data": {"trial_period_days": 3},
            },
            "subscription_data",
        ),
        (
            CreateCheckoutBody,
            {
                "product_cart": [{"product_id": "pdt_1", "quantity": 1, "amount": 5}],
                "customer": {"customer_id": "cus_1"},
                "return_url": "https://shop.example/done",
            },
            "product_cart.0.amount",
        ),
    ],
)
def test_sdk_fields_we_do_not_implement_are_named_as_unsupported(
    model: type[BaseModel], data: dict[str, Any], field: str
) -> None:
    assert (field, "unsupported_field") in _errors(model, data)


@pytest.mark.parametrize("status", ["paused", "active"])
def test_pause_and_resume_are_accepted_alone(status: str) -> None:
    assert UpdateSubscriptionBody.model_validate({"status": status}).status == status


@pytest.mark.parametrize("status", ["paused", "active"])
def test_pause_and_resume_with_other_fields_sent_as_null_are_accepted(status: str) -> None:
    body = {"status": status, "metadata": None, "next_billing_date": None, "pause": None}
    assert UpdateSubscriptionBody.model_validate(body).status == status


@pytest.mark.parametrize(
    "other",
    [
        {"metadata": {"a": "b"}},
        {"cancel_at_next_billing_date": False},
        {"next_billing_date": "2027-01-01T00:00:00Z"},
    ],
)
@pytest.mark.parametrize("status", ["paused", "active"])
def test_pause_and_resume_with_any_other_field_are_refused(
    status: str, other: dict[str, Any]
) -> None:
    errors = _errors(UpdateSubscriptionBody, {"status": status, **other})
    assert errors and errors[0][1] == "value_error"


def test_clock_advance_takes_seconds_or_to_never_null() -> None:
    assert AdvanceClockBody.model_validate({"seconds": 60}).seconds == 60
    assert _errors(AdvanceClockBody, {"seconds": 1, "to": None})
    schema = AdvanceClockBody.model_json_schema()
    assert schema["oneOf"] == [{"required": ["seconds"]}, {"required": ["to"]}]


def test_a_buyers_tax_id_is_read_and_a_too_long_one_is_named() -> None:
    cart = {
        "product_cart": [{"product_id": "pdt_1", "quantity": 1}],
        "customer": {"customer_id": "cus_1"},
        "return_url": "https://shop.example/done",
        "billing_address": {"country": "IT"},
    }
    body = CreateCheckoutBody.model_validate({**cart, "tax_id": "IT12345678901"})
    assert body.tax_id == "IT12345678901"
    assert _errors(CreateCheckoutBody, {**cart, "tax_id": "X" * 65})[0][0] == "tax_id"
    sub = {
        "billing": {"country": "IT"},
        "customer": {"customer_id": "cus_1"},
        "product_id": "pdt_1",
        "quantity": 1,
    }
    assert CreateSubscriptionBody.model_validate({**sub, "tax_id": "DE123"}).tax_id == "DE123"
    assert _errors(CreateSubscriptionBody, {**sub, "tax_id": ""})[0][0] == "tax_id"


_CREATE = {
    "billing": {"country": "IT"},
    "customer": {"customer_id": "cus_1"},
    "product_id": "pdt_1",
    "quantity": 1,
}


def test_addons_are_read_on_create_and_change_plan() -> None:
    from gateway.api.subscription_schemas import ChangePlanBody

    body = CreateSubscriptionBody.model_validate(
        {**_CREATE, "addons": [{"addon_id": "adn_1", "quantity": 3}]}
    )
    assert [a.to_proto().quantity for a in body.addons or []] == [3]
    change = ChangePlanBody.model_validate(
        {
            "product_id": "pdt_1",
            "quantity": 1,
            "proration_billing_mode": "prorated_immediately",
            "addons": [{"addon_id": "adn_1", "quantity": 2}],
        }
    )
    assert [(a.addon_id, a.quantity) for a in change.addons or []] == [("adn_1", 2)]


@pytest.mark.parametrize(
    ("addons", "field"),
    [
        ([{"addon_id": "adn_1", "quantity": 0}], "addons.0.quantity"),
        ([{"addon_id": "", "quantity": 1}], "addons.0.addon_id"),
        ([{"addon_id": f"adn_{i}", "quantity": 1} for i in range(21)], "addons"),
    ],
)
def test_a_badly_shaped_addon_list_is_refused_by_the_document(
    addons: list[dict[str, Any]], field: str
) -> None:
    assert _errors(CreateSubscriptionBody, {**_CREATE, "addons": addons})[0][0] == field


def test_a_subscription_shows_its_addons_and_a_scheduled_changes_addons_by_name() -> None:
    from billing.subscriptions.v1 import subscriptions_pb2 as pb
    from gateway.api.subscription_schemas import CustomerLimitedOut, SubscriptionOut

    sub = pb.Subscription(
        subscription_id="sub_1",
        business_id="bus_1",
        product_id="pdt_1",
        status=pb.SUBSCRIPTION_STATUS_ACTIVE,
        recurring_pre_tax_amount=1600,
        currency="EUR",
        quantity=1,
        addons=[pb.SubscriptionAddon(addon_id="adn_1", name="Seat", quantity=2, unit_price=300)],
        scheduled_change=pb.ScheduledPlanChange(
            id="spc_1",
            product_id="pdt_1",
            quantity=1,
            addons=[pb.AddonQuantity(addon_id="adn_2", quantity=1)],
            addon_details=[
                pb.SubscriptionAddon(addon_id="adn_2", name="Disk", quantity=1, unit_price=199)
            ],
        ),
    )
    out = SubscriptionOut.from_proto(
        sub, CustomerLimitedOut(customer_id="cus_1", email="a@example.com", name="A")
    )
    assert [(a.addon_id, a.quantity) for a in out.addons] == [("adn_1", 2)]
    assert out.scheduled_change is not None
    assert [(a.addon_id, a.name, a.quantity) for a in out.scheduled_change.addons] == [
        ("adn_2", "Disk", 1)
    ]


@pytest.mark.parametrize("sent", [True, "2", 2.5])
@pytest.mark.parametrize(
    ("model", "body", "field"),
    [
        (AdvanceClockBody, {}, "seconds"),
        (AddonIn, {"addon_id": "adn_1"}, "quantity"),
        (
            CreateCheckoutBody,
            {
                "product_cart": [{"product_id": "pdt_1"}],
                "customer": {"customer_id": "cus_1"},
                "return_url": "https://shop.example/done",
            },
            "product_cart.0.quantity",
        ),
    ],
)
def test_counts_in_bodies_are_json_integers_only(
    model: type[BaseModel], body: dict[str, Any], field: str, sent: Any
) -> None:
    # Pydantic alone would read true as 1 and "2" as 2: the document promises an integer.
    if field.startswith("product_cart"):
        body = {**body, "product_cart": [{"product_id": "pdt_1", "quantity": sent}]}
    else:
        body = {**body, field: sent}
    located = {loc for loc, _ in _errors(model, body)}
    assert any(loc == field or loc.startswith(f"{field}.") for loc in located), located
