"""Use cases of the payments service: pure logic over the repository."""

from __future__ import annotations

from typing import Protocol

from billing_kit.errors import InvalidArgument
from pydantic import ValidationError

from payments.models import CustomerScope, PageRequest, PaymentMethod


class PaymentMethodReader(Protocol):
    """What the use cases need from storage."""

    async def list_payment_methods(
        self, scope: CustomerScope, page: PageRequest
    ) -> list[PaymentMethod]: ...


def _explain(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())


def make_scope(business_id: str, mode: str, customer_id: str) -> CustomerScope:
    """Validate who is asking; a missing part is a clear InvalidArgument."""
    try:
        return CustomerScope(business_id=business_id, mode=mode, customer_id=customer_id)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise InvalidArgument(_explain(exc), reason="INVALID_SCOPE") from None


def make_page(page_size: int, page_number: int) -> PageRequest:
    """Page bounds: size 0 means the default, otherwise 1..100; number is zero-based."""
    try:
        if page_size == 0:
            return PageRequest(page_number=page_number)
        return PageRequest(page_size=page_size, page_number=page_number)
    except ValidationError as exc:
        raise InvalidArgument(_explain(exc), reason="INVALID_PAGE") from None


class PaymentsService:
    """Reads a customer's saved payment methods; later issues add charges and 3-D Secure."""

    def __init__(self, repository: PaymentMethodReader) -> None:
        self._repository = repository

    async def list_payment_methods(
        self, scope: CustomerScope, page: PageRequest
    ) -> list[PaymentMethod]:
        """One page of the customer's saved methods, newest first."""
        return await self._repository.list_payment_methods(scope, page)
