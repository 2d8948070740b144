"""Who a read is for, and which page of it: shared by every service's lookups.

Every repository read takes a :class:`CustomerScope`, so a record of another
customer, business or mode is simply not found (never "forbidden").
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pymongo import ASCENDING, DESCENDING, IndexModel

from billing_kit.errors import InvalidArgument, describe_validation_error

Mode = Literal["test", "live"]

DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 100
# Offset pagination walks the index; a cap keeps a hostile page_number from forcing a huge skip.
MAX_PAGE_NUMBER = 10_000


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
        raise InvalidArgument(describe_validation_error(exc), reason="INVALID_SCOPE") from None


def make_page(page_size: int, page_number: int) -> PageRequest:
    """Page bounds: size 0 (proto default) means the default, otherwise 1..100; zero-based."""
    try:
        if page_size == 0:
            return PageRequest(page_number=page_number)
        return PageRequest(page_size=page_size, page_number=page_number)
    except ValidationError as exc:
        raise InvalidArgument(describe_validation_error(exc), reason="INVALID_PAGE") from None


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
