"""Who a read is for, and which page of it: shared by every service's lookups.

Every repository read takes a :class:`CustomerScope`, so a record of another
customer, business or mode is simply not found (never "forbidden").

Domain code, stored documents and event payloads spell the mode as the strings
``"test"``/``"live"``; every gRPC contract carries ``billing.common.v1.Mode``.
:func:`mode_from_proto` and :func:`mode_to_proto` are the one place that
converts between the two.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from billing.common.v1 import common_pb2
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pymongo import ASCENDING, DESCENDING, IndexModel

from billing_kit.errors import InvalidArgument, Reason, describe_validation_error

Mode = Literal["test", "live"]

_MODE_TO_PROTO: dict[Mode, common_pb2.Mode.ValueType] = {
    "test": common_pb2.MODE_TEST,
    "live": common_pb2.MODE_LIVE,
}
_MODE_FROM_PROTO: dict[int, Mode] = {value: mode for mode, value in _MODE_TO_PROTO.items()}

DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 100
# Offset pagination walks the index; a cap keeps a hostile page_number from forcing a huge skip.
MAX_PAGE_NUMBER = 10_000


def mode_from_proto(value: int) -> Mode:
    """``MODE_TEST``/``MODE_LIVE`` -> ``"test"``/``"live"``.

    ``MODE_UNSPECIFIED`` (a request that did not say) or a number this build
    does not know is an InvalidArgument with reason ``INVALID_MODE``: guessing
    a mode would risk mixing test and live data.
    """
    try:
        return _MODE_FROM_PROTO[value]
    except KeyError:
        raise InvalidArgument(
            "mode is required: MODE_TEST or MODE_LIVE", reason=Reason.INVALID_MODE
        ) from None


def mode_to_proto(mode: Mode) -> common_pb2.Mode.ValueType:
    """``"test"``/``"live"`` -> ``MODE_TEST``/``MODE_LIVE`` for a gRPC message."""
    return _MODE_TO_PROTO[mode]


class CustomerScope(BaseModel):
    """Whose records a read may see: one customer of one business in one mode."""

    model_config = ConfigDict(frozen=True)

    business_id: str = Field(min_length=1, max_length=128)
    mode: Mode
    customer_id: str = Field(min_length=1, max_length=128)

    def as_filter(self) -> dict[str, Any]:
        """The MongoDB filter every scoped query starts from."""
        return {"business_id": self.business_id, "mode": self.mode, "customer_id": self.customer_id}


class PageRequest(BaseModel):
    """A zero-based page of a list, as in the Dodo Payments API."""

    model_config = ConfigDict(frozen=True)

    page_size: int = Field(default=DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)
    page_number: int = Field(default=0, ge=0, le=MAX_PAGE_NUMBER)

    @property
    def skip(self) -> int:
        """How many records come before this page."""
        return self.page_size * self.page_number


def make_scope(business_id: str, mode: str, customer_id: str) -> CustomerScope:
    """Validate who is asking; a missing part is a clear InvalidArgument."""
    try:
        return CustomerScope.model_validate(
            {"business_id": business_id, "mode": mode, "customer_id": customer_id}
        )
    except ValidationError as exc:
        raise InvalidArgument(describe_validation_error(exc), reason=Reason.INVALID_SCOPE) from None


def list_business(business_id: str, customer_ids: Sequence[str]) -> str:
    """The business a list is scoped to, or ``""`` for the unified portal's question.

    A list names one business, or no business and the customers of one verified
    email in every business: customer ids are unique across businesses and the
    gateway takes them from auth's resolution of that email, so one query serves
    every business instead of one query per business.
    """
    if business_id or not customer_ids:
        if not 0 < len(business_id) <= 128:
            raise InvalidArgument(
                "business_id is required", reason=Reason.INVALID_SCOPE, field="business_id"
            )
        return business_id
    if any(not 0 < len(customer_id) <= 128 for customer_id in customer_ids):
        raise InvalidArgument(
            "customer_ids must be 1 to 128 characters each",
            reason=Reason.INVALID_SCOPE,
            field="customer_ids",
        )
    return ""


def make_page(page_size: int, page_number: int) -> PageRequest:
    """Page bounds: size 0 (proto default) means the default, otherwise 1..100; zero-based."""
    try:
        if page_size == 0:
            return PageRequest(page_number=page_number)
        return PageRequest(page_size=page_size, page_number=page_number)
    except ValidationError as exc:
        raise InvalidArgument(describe_validation_error(exc), reason=Reason.INVALID_PAGE) from None


def customers_across_businesses_index(time_field: str = "created_at") -> IndexModel:
    """The index behind the unified portal's lists: customers of any business, newest first."""
    return IndexModel(
        [("customer_id", ASCENDING), ("mode", ASCENDING), (time_field, DESCENDING)],
        name="customers_across_businesses",
    )


def customer_newest_first_index(time_field: str = "created_at") -> IndexModel:
    """The index behind every scoped read: a customer's records, newest first.

    It serves both the scoped get by id and the paginated list without an
    in-memory sort (``_id`` breaks ties so pages never overlap).
    """
    return IndexModel(
        [
            ("business_id", ASCENDING),
            ("mode", ASCENDING),
            ("customer_id", ASCENDING),
            (time_field, DESCENDING),
            ("_id", DESCENDING),
        ],
        name="customer_newest_first",
    )


def newest_first(time_field: str = "created_at") -> list[tuple[str, int]]:
    """The sort matching :func:`customer_newest_first_index`."""
    return [(time_field, DESCENDING), ("_id", DESCENDING)]
