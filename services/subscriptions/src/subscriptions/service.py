"""Use cases of the subscriptions service: pure logic over the repository."""

from __future__ import annotations

from typing import Protocol

from billing_kit.errors import InvalidArgument, NotFound
from pydantic import ValidationError

from subscriptions.models import CustomerScope, PageRequest, Subscription


class SubscriptionReader(Protocol):
    """What the use cases need from storage."""

    async def get_subscription(
        self, scope: CustomerScope, subscription_id: str
    ) -> Subscription | None: ...

    async def list_subscriptions(
        self, scope: CustomerScope, page: PageRequest
    ) -> list[Subscription]: ...


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


class SubscriptionsService:
    """Reads a customer's subscriptions; later issues add the state machine."""

    def __init__(self, repository: SubscriptionReader) -> None:
        self._repository = repository

    async def get_subscription(self, scope: CustomerScope, subscription_id: str) -> Subscription:
        """The customer's subscription, or NotFound (also for another customer's id)."""
        if not subscription_id:
            raise InvalidArgument("subscription_id is required", reason="INVALID_SUBSCRIPTION_ID")
        found = await self._repository.get_subscription(scope, subscription_id)
        if found is None:
            raise NotFound("subscription not found", reason="SUBSCRIPTION_NOT_FOUND")
        return found

    async def list_subscriptions(
        self, scope: CustomerScope, page: PageRequest
    ) -> list[Subscription]:
        """One page of the customer's subscriptions, newest first."""
        return await self._repository.list_subscriptions(scope, page)
