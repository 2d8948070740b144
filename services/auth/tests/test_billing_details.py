"""A customer's billing details: the tax id rules (pure) and UpdateBillingDetails over gRPC."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from auth.customers.billing_details import BillingDetailsError, check_billing_details
from billing.auth.v1 import auth_pb2
from billing.auth.v1 import portal_access_pb2 as pb

from .conftest import rpc_error
from .test_customer_fields import TEST, get_customer, new_business, new_customer, unique_email
from .test_portal_grpc import outbox_events

# (country, typed tax id, stored tax id) that are accepted.
VALID = [
    ("DE", "DE136695976", "DE136695976"),
    ("DE", "de 136 695 976", "DE136695976"),
    ("DE", "136695976", "DE136695976"),  # the prefix may be left out
    ("IT", "IT00743110157", "IT00743110157"),
    ("FR", "FR 40 303 265 045", "FR40303265045"),
    ("GB", "GB 980 7806 84", "GB980780684"),
    ("NO", "NO 995 525 828 MVA", "995525828MVA"),
    ("AU", "51 824 753 556", "51824753556"),
    ("US", "12-3456789", "12-3456789"),  # no checker: any printable text
    ("DE", "", ""),
]

# (country, tax id) refused, each naming tax_id.
INVALID = [
    ("DE", "DE136695977"),  # wrong check digit
    ("IT", "IT00743110158"),  # wrong check digit
    ("FR", "FR41303265045"),  # wrong check key
    ("FR", "DE136695976"),  # a valid German number on a French address
    ("IT", "DE136695976"),
    ("GB", "GB980780685"),
    ("AU", "51 824 753 557"),
    ("US", "x" * 65),
    ("US", "12\x003456"),
]


@pytest.mark.parametrize(("country", "typed", "stored"), VALID)
def test_valid_tax_ids_are_stored_compact(country: str, typed: str, stored: str) -> None:
    details = check_billing_details(country=country, tax_id=typed)
    assert details.tax_id == stored


@pytest.mark.parametrize(("country", "typed"), INVALID)
def test_invalid_tax_ids_are_refused(country: str, typed: str) -> None:
    with pytest.raises(BillingDetailsError) as caught:
        check_billing_details(country=country, tax_id=typed)
    assert caught.value.field == "tax_id"


@pytest.mark.parametrize("country", ["", "D", "DEU", "ZZ", "EU", "12"])
def test_country_must_be_a_country_code(country: str) -> None:
    with pytest.raises(BillingDetailsError) as caught:
        check_billing_details(country=country)
    assert caught.value.field == "country"


def test_fields_are_trimmed_and_bounded() -> None:
    details = check_billing_details(
        country=" it ", city=" Milano ", street=" Via Roma 1 ", zipcode=" 20121 "
    )
    assert (details.country, details.city, details.street, details.zipcode) == (
        "IT",
        "Milano",
        "Via Roma 1",
        "20121",
    )
    with pytest.raises(BillingDetailsError) as caught:
        check_billing_details(country="IT", street="x" * 501)
    assert caught.value.field == "street"


def _request(customer: auth_pb2.Customer, business_id: str = "", **fields: Any) -> Any:
    return pb.UpdateBillingDetailsRequest(
        business_id=business_id or customer.business_id,
        mode=TEST,
        customer_id=customer.customer_id,
        billing_details=auth_pb2.CustomerBillingDetails(**fields),
    )


class TestUpdateBillingDetails:
    async def test_saved_compact_and_announced_once(self, auth: Any) -> None:
        business = await new_business(auth)
        customer = await new_customer(auth, business.business_id, unique_email())
        fields = {
            "country": "DE",
            "city": "Berlin",
            "street": "Unter den Linden 1",
            "zipcode": "10117",
            "tax_id": "DE 136 695 976",
            "business_name": "Lovelace GmbH",
        }
        updated = await auth.portal.UpdateBillingDetails(_request(customer, **fields))
        assert updated.billing_details.tax_id == "DE136695976"
        assert updated.billing_details.business_name == "Lovelace GmbH"
        fetched = await get_customer(auth, customer)
        assert fetched.billing_details.city == "Berlin"
        assert fetched.billing_details.country == "DE"
        events = await outbox_events(auth, customer.customer_id, "customer.updated")
        assert len(events) == 1
        assert events[0]["data"]["changed_fields"] == ["billing_details"]
        assert events[0]["data"]["billing_details"]["tax_id"] == "DE136695976"

        # The same details again change nothing and announce nothing.
        await auth.portal.UpdateBillingDetails(_request(customer, **fields))
        assert len(await outbox_events(auth, customer.customer_id, "customer.updated")) == 1

    async def test_invalid_vat_is_refused_and_nothing_changes(self, auth: Any) -> None:
        business = await new_business(auth)
        customer = await new_customer(auth, business.business_id, unique_email())
        err = await rpc_error(
            auth.portal.UpdateBillingDetails(
                _request(customer, country="IT", city="Milano", tax_id="IT00743110158")
            )
        )
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "tax_id" in (err.details() or "")
        fetched = await get_customer(auth, customer)
        assert not fetched.HasField("billing_details")
        assert await outbox_events(auth, customer.customer_id, "customer.updated") == []

    async def test_another_business_cannot_set_them(self, auth: Any) -> None:
        business = await new_business(auth)
        other = await new_business(auth)
        customer = await new_customer(auth, business.business_id, unique_email())
        err = await rpc_error(
            auth.portal.UpdateBillingDetails(
                _request(customer, business_id=other.business_id, country="IT")
            )
        )
        assert err.code() == grpc.StatusCode.NOT_FOUND
        assert not (await get_customer(auth, customer)).HasField("billing_details")
