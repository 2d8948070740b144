"""Use cases of the subscriptions service: pure logic over the repository."""

from __future__ import annotations

from typing import Protocol

from billing_kit.errors import InvalidArgument, NotFound, Reason
from billing_kit.scoping import CustomerScope, PageRequest

from subscriptions.models import Subscription


class SubscriptionReader(Protocol):
    """What the use cases need from storage."""

    async def get_subscription(
        self, scope: CustomerScope, subscription_id: str
    ) -> Subscription | None: ...

    async def list_subscriptions(
        self, scope: CustomerScope, page: PageRequest
    ) -> list[Subscription]: ...


class SubscriptionsService:
    """Reads a customer's subscriptions; later issues add the state machine."""

    def __init__(self, repository: SubscriptionReader) -> None:
        self._repository = repository

    async def get_subscription(self, scope: CustomerScope, subscription_id: str) -> Subscription:
        """The customer's subscription, or NotFound (also for another customer's id)."""
        if not subscription_id:
            raise InvalidArgument(
                "subscription_id is required", reason=Reason.INVALID_SUBSCRIPTION_ID
            )
        found = await self._repository.get_subscription(scope, subscription_id)
        if found is None:
            raise NotFound("subscription not found", reason=Reason.SUBSCRIPTION_NOT_FOUND)
        return found

    async def list_subscriptions(
        self, scope: CustomerScope, page: PageRequest
    ) -> list[Subscription]:
        """One page of the customer's subscriptions, newest first."""
        return await self._repository.list_subscriptions(scope, page)
