"""Use cases of customer records: create (one per email in a business+mode, as
Dodo's ``POST /customers``), get and list, every read scoped to the business.

The profile and email-change use cases are :mod:`auth.customers.profile` and
:mod:`auth.customers.email_change`.
"""

from __future__ import annotations

import logging

from billing_kit.clock import Clock, SystemClock
from billing_kit.errors import AlreadyExists, InvalidArgument, Reason
from billing_kit.events import new_event

from auth.customers.errors import CustomerNotFound, EmailTaken
from auth.customers.models import (
    CUSTOMER_CREATED,
    CUSTOMER_PREFIX,
    Customer,
    CustomerCreatedData,
    CustomerQuery,
    NewCustomer,
)
from auth.customers.repository import CustomerRepository
from auth.merchants.service import MerchantService, given
from auth.rules import check_mode, new_id, normalize_email, validated
from auth.unit_of_work import Txn, UnitOfWork

log = logging.getLogger(__name__)


class CustomerService:
    """The customer-record use cases; one instance per process."""

    def __init__(
        self,
        customers: CustomerRepository,
        merchants: MerchantService,
        uow: UnitOfWork,
        *,
        source: str = "auth",
        clock: Clock | None = None,
    ) -> None:
        self.customers = customers
        self.merchants = merchants
        self.uow = uow
        self.source = source
        self.clock: Clock = clock or SystemClock()

    async def create_customer(
        self,
        *,
        business_id: str,
        mode: str,
        email: str,
        name: str,
        phone_number: str | None = None,
        metadata: dict[str, str] | None = None,
        preferred_locale: str | None = None,
    ) -> tuple[Customer, bool]:
        """Create a customer; returns ``(customer, created)``.

        Like the Dodo Payments API, creating a customer whose email already
        exists in the business (and mode) returns the existing customer unchanged
        instead of failing or making a duplicate; ``created`` is then False and
        no event is emitted. ``metadata`` (at most 50 keys of 1-40 characters,
        string values up to 500) and ``preferred_locale`` (a Dodo Locale code)
        are optional.
        """
        request = validated(
            NewCustomer,
            business_id=business_id,
            mode=mode,
            email=email,
            name=name,
            phone_number=phone_number,
            metadata=metadata,
            preferred_locale=preferred_locale,
        )
        await self.merchants.require_business(request.business_id)
        email_normalized = normalize_email(request.email)
        existing = await self.customers.find_by_email(
            request.business_id, request.mode, email_normalized
        )
        if existing is not None:
            return existing, False
        customer = Customer(
            customer_id=new_id(CUSTOMER_PREFIX), created_at=self.clock.now(), **request.model_dump()
        )
        event = new_event(
            CUSTOMER_CREATED,
            self.source,
            CustomerCreatedData.from_customer(customer),
            subject=customer.customer_id,
        )

        async def write(txn: Txn) -> None:
            await self.customers.insert(customer, txn=txn)
            await self.uow.add_event(event, txn)

        try:
            await self.uow.run(write)
        except EmailTaken:
            # A concurrent create with the same email committed first: answer with its customer.
            winner = await self.customers.find_by_email(
                request.business_id, request.mode, email_normalized
            )
            if winner is None:
                raise AlreadyExists(
                    "a customer with this email already exists", reason=Reason.CUSTOMER_EXISTS
                ) from None
            return winner, False
        log.info(
            "customer created",
            extra={"business_id": customer.business_id, "customer_id": customer.customer_id},
        )
        return customer, True

    async def get_customer(self, *, business_id: str, mode: str, customer_id: str) -> Customer:
        """A customer of this business and mode; anyone else's is simply not found."""
        try:
            checked_mode = check_mode(mode)
        except ValueError as exc:
            raise InvalidArgument(f"mode: {exc}") from None
        customer = (
            await self.customers.get(business_id, checked_mode, customer_id)
            if business_id and customer_id
            else None
        )
        if customer is None:
            raise CustomerNotFound(f"customer {customer_id!r} not found")
        return customer

    async def list_customers(
        self,
        *,
        business_id: str,
        mode: str,
        page_size: int | None = None,
        page_number: int | None = None,
        email: str | None = None,
    ) -> list[Customer]:
        """A page of the business's customers (newest first), optionally by email."""
        query = validated(
            CustomerQuery,
            business_id=business_id,
            mode=mode,
            email=email,
            **given(page_size=page_size, page_number=page_number),
        )
        return await self.customers.list_page(
            query.business_id,
            query.mode,
            email_normalized=query.email,
            limit=query.page_size,
            skip=query.page_size * query.page_number,
        )
