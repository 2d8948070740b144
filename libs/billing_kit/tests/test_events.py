"""CloudEvent wire format."""

from __future__ import annotations

import json

import pytest
from billing_kit.events import decode_event, encode_event, new_event
from pydantic import BaseModel


class CustomerCreated(BaseModel):
    customer_id: str
    note: str | None = None


def test_round_trip_keeps_every_attribute() -> None:
    event = new_event("customer.created", "auth", CustomerCreated(customer_id="cus_1"))
    decoded = decode_event(encode_event(event))
    assert decoded == event
    assert decoded.time.tzinfo is not None


def test_unset_subject_is_omitted_but_null_data_fields_are_kept() -> None:
    event = new_event("customer.created", "auth", CustomerCreated(customer_id="cus_1"))
    wire = json.loads(encode_event(event))
    assert "subject" not in wire
    assert wire["data"] == {"customer_id": "cus_1", "note": None}
    assert wire["specversion"] == "1.0"


@pytest.mark.parametrize(
    "body",
    [b"not json", b"{}", b'{"id": "1", "source": "auth", "type": "x"}', b"[1, 2]"],
)
def test_decode_rejects_what_is_not_a_cloudevent(body: bytes) -> None:
    with pytest.raises(ValueError, match="not a CloudEvent"):
        decode_event(body)
