"""Use cases over saved payment methods: list, get, save, delete, choose the default."""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from billing_kit.clock import Clock
from billing_kit.errors import InvalidArgument, NotFound, Reason
from billing_kit.scoping import CustomerScope, Mode, PageRequest

from payments.methods.models import PaymentMethod, StoredPaymentMethod
from payments.methods.repository import PaymentMethodsRepository
from payments.processor.processor import TokenizedCard
from payments.unit_of_work import Txn, UnitOfWork

MAX_CUSTOMERS_PER_LIST = 100


def method_not_found() -> NotFound:
    """The one answer for a missing, deleted or someone else's method."""
    return NotFound(
        "payment method not found",
        reason=Reason.PAYMENT_METHOD_NOT_FOUND,
        field="payment_method_id",
    )


def new_payment_method_id() -> str:
    """A fresh, unguessable ``pm_…`` id."""
    return f"pm_{secrets.token_urlsafe(18)}"


class PaymentMethodsService:
    """A customer's saved cards."""

    def __init__(self, uow: UnitOfWork, repository: PaymentMethodsRepository, clock: Clock) -> None:
        self._uow = uow
        self._repository = repository
        self._clock = clock

    async def list_payment_methods(
        self, business_id: str, mode: Mode, customer_ids: Sequence[str], page: PageRequest
    ) -> list[PaymentMethod]:
        """One page of the customers' methods, newest first."""
        if not customer_ids or any(not c for c in customer_ids):
            raise InvalidArgument("customer_id is required", field="customer_id")
        if len(customer_ids) > MAX_CUSTOMERS_PER_LIST:
            raise InvalidArgument("at most 100 customer_ids", field="customer_ids")
        found = await self._repository.list(business_id, mode, customer_ids, page)
        return [m.public() for m in found]

    async def get_payment_method(
        self, scope: CustomerScope, payment_method_id: str
    ) -> PaymentMethod:
        """The customer's method, NOT_FOUND otherwise."""
        return (await self.get_stored(scope, payment_method_id)).public()

    async def get_stored(
        self, scope: CustomerScope, payment_method_id: str, txn: Txn | None = None
    ) -> StoredPaymentMethod:
        """The method with its processor token (payments' own use only)."""
        found = await self._repository.get(scope, payment_method_id, txn)
        if found is None:
            raise method_not_found()
        return found

    async def save_card(
        self, scope: CustomerScope, card: TokenizedCard, holder_name: str, txn: Txn
    ) -> StoredPaymentMethod:
        """Store a tokenized card inside the caller's transaction; the first one is the default."""
        method = StoredPaymentMethod(
            payment_method_id=new_payment_method_id(),
            business_id=scope.business_id,
            mode=scope.mode,
            customer_id=scope.customer_id,
            brand=card.brand,
            last4=card.last4,
            expiry_month=card.expiry_month,
            expiry_year=card.expiry_year,
            fingerprint=card.fingerprint,
            created_at=self._clock.now(),
            is_default=await self._repository.count(scope, txn) == 0,
            card_holder_name=holder_name,
            processor_token=card.token,
        )
        await self._repository.insert(method, txn)
        return method

    async def delete_payment_method(self, scope: CustomerScope, payment_method_id: str) -> None:
        """Forget the method; another customer's (or a missing) one is NOT_FOUND."""

        async def work(txn: Txn) -> None:
            if not await self._repository.delete(scope, payment_method_id, txn):
                raise method_not_found()

        await self._uow.run(work)

    async def set_default(self, scope: CustomerScope, payment_method_id: str) -> PaymentMethod:
        """Make the method the one renewals charge when a subscription names none."""

        async def work(txn: Txn) -> StoredPaymentMethod:
            await self.get_stored(scope, payment_method_id, txn)
            await self._repository.set_default(scope, payment_method_id, txn)
            return await self.get_stored(scope, payment_method_id, txn)

        return (await self._uow.run(work)).public()

    async def mark_used(self, scope: CustomerScope, payment_method_id: str, txn: Txn) -> None:
        """Record a charge's time on the method (inside the charge's transaction)."""
        await self._repository.mark_used(scope, payment_method_id, self._clock.now(), txn)
