"""Use cases of the payments service: pure logic over the repository."""

from __future__ import annotations

from typing import Protocol

from billing_kit.scoping import CustomerScope, PageRequest

from payments.models import PaymentMethod


class PaymentMethodReader(Protocol):
    """What the use cases need from storage."""

    async def list_payment_methods(
        self, scope: CustomerScope, page: PageRequest
    ) -> list[PaymentMethod]: ...


class PaymentsService:
    """Reads a customer's saved payment methods; later issues add charges and 3-D Secure."""

    def __init__(self, repository: PaymentMethodReader) -> None:
        self._repository = repository

    async def list_payment_methods(
        self, scope: CustomerScope, page: PageRequest
    ) -> list[PaymentMethod]:
        """One page of the customer's saved methods, newest first."""
        return await self._repository.list_payment_methods(scope, page)
