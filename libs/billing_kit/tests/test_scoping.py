"""The one conversion between the domain's "test"/"live" and the contracts' Mode enum."""

from __future__ import annotations

import pytest
from billing.common.v1 import common_pb2
from billing_kit.errors import InvalidArgument
from billing_kit.scoping import mode_from_proto, mode_to_proto


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
