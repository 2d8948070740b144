"""Request scoping: the Mode conversion at the gRPC edge, customer scopes and pages."""

from __future__ import annotations

import pytest
from billing.common.v1 import common_pb2
from billing_kit.errors import InvalidArgument, Reason
from billing_kit.scoping import (
    CustomerScope,
    PageRequest,
    make_page,
    make_scope,
    mode_from_proto,
    mode_to_proto,
)


@pytest.mark.parametrize(
    ("mode", "value"), [("test", common_pb2.MODE_TEST), ("live", common_pb2.MODE_LIVE)]
)
def test_each_mode_maps_to_its_enum_value_and_back(mode: str, value: int) -> None:
    assert mode_to_proto(mode) == value  # type: ignore[arg-type]
    assert mode_from_proto(value) == mode


@pytest.mark.parametrize("value", [common_pb2.MODE_UNSPECIFIED, 3, -1])
def test_an_unset_or_unknown_mode_is_refused_with_a_clear_reason(value: int) -> None:
    # Guessing a default would put a request in the wrong mode's data.
    with pytest.raises(InvalidArgument) as err:
        mode_from_proto(value)
    assert err.value.reason == "INVALID_MODE"
    assert "MODE_TEST or MODE_LIVE" in str(err.value)


def test_zero_page_size_means_the_default_of_ten() -> None:
    assert make_page(0, 0) == PageRequest(page_size=10, page_number=0)
    assert make_page(0, 2).page_size == 10


def test_skip_is_size_times_number() -> None:
    assert make_page(25, 3).skip == 75


def test_largest_allowed_page() -> None:
    assert make_page(100, 10_000).page_size == 100


@pytest.mark.parametrize(("size", "number"), [(101, 0), (-1, 0), (-5, 0), (10, -1), (10, 10_001)])
def test_an_out_of_bounds_page_is_invalid_argument(size: int, number: int) -> None:
    with pytest.raises(InvalidArgument) as err:
        make_page(size, number)
    assert err.value.reason is Reason.INVALID_PAGE


def test_a_scope_filters_by_business_mode_and_customer() -> None:
    scope = make_scope("bus_1", "live", "cus_1")
    assert scope == CustomerScope(business_id="bus_1", mode="live", customer_id="cus_1")
    assert scope.as_filter() == {"business_id": "bus_1", "mode": "live", "customer_id": "cus_1"}


@pytest.mark.parametrize(
    ("business_id", "mode", "customer_id"),
    [
        ("", "test", "cus_1"),
        ("bus_1", "prod", "cus_1"),
        ("bus_1", "staging", "cus_1"),
        ("bus_1", "live", ""),
    ],
)
def test_an_incomplete_or_bad_scope_is_invalid_argument(
    business_id: str, mode: str, customer_id: str
) -> None:
    with pytest.raises(InvalidArgument) as err:
        make_scope(business_id, mode, customer_id)
    assert err.value.reason is Reason.INVALID_SCOPE
