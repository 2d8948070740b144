"""gRPC adapter: proto <-> models. Domain errors become statuses in the kit's interceptor."""

from __future__ import annotations

from typing import Any, TypeAlias

import grpc
from billing.subscriptions.v1 import subscriptions_pb2, subscriptions_pb2_grpc
from billing_kit.scoping import make_page, make_scope, mode_from_proto, mode_to_proto
from google.protobuf.timestamp_pb2 import Timestamp

from subscriptions.models import Subscription, SubscriptionStatus
from subscriptions.service import SubscriptionsService

_STATUS_TO_PROTO: dict[SubscriptionStatus, subscriptions_pb2.SubscriptionStatus.ValueType] = {
    SubscriptionStatus.PENDING: subscriptions_pb2.SUBSCRIPTION_STATUS_PENDING,
    SubscriptionStatus.ACTIVE: subscriptions_pb2.SUBSCRIPTION_STATUS_ACTIVE,
    SubscriptionStatus.ON_HOLD: subscriptions_pb2.SUBSCRIPTION_STATUS_ON_HOLD,
    SubscriptionStatus.CANCELLED: subscriptions_pb2.SUBSCRIPTION_STATUS_CANCELLED,
    SubscriptionStatus.EXPIRED: subscriptions_pb2.SUBSCRIPTION_STATUS_EXPIRED,
    SubscriptionStatus.FAILED: subscriptions_pb2.SUBSCRIPTION_STATUS_FAILED,
}

Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]


def subscription_to_proto(subscription: Subscription) -> subscriptions_pb2.Subscription:
    """The wire form of a subscription."""
    created_at = Timestamp()
    created_at.FromDatetime(subscription.created_at)
    message = subscriptions_pb2.Subscription(
        subscription_id=subscription.subscription_id,
        business_id=subscription.business_id,
        mode=mode_to_proto(subscription.mode),
        customer_id=subscription.customer_id,
        product_id=subscription.product_id,
        status=_STATUS_TO_PROTO[subscription.status],
        recurring_pre_tax_amount=subscription.recurring_pre_tax_amount,
        currency=subscription.currency,
        created_at=created_at,
    )
    if subscription.next_billing_date is not None:
        message.next_billing_date.FromDatetime(subscription.next_billing_date)
    return message


class SubscriptionsServicer(subscriptions_pb2_grpc.SubscriptionsServiceServicer):
    """Implements billing.subscriptions.v1.SubscriptionsService."""

    def __init__(self, service: SubscriptionsService) -> None:
        self._service = service

    async def GetSubscription(
        self, request: subscriptions_pb2.GetSubscriptionRequest, context: Context
    ) -> subscriptions_pb2.Subscription:
        """One subscription of the calling customer."""
        scope = make_scope(request.business_id, mode_from_proto(request.mode), request.customer_id)
        found = await self._service.get_subscription(scope, request.subscription_id)
        return subscription_to_proto(found)

    async def ListSubscriptions(
        self, request: subscriptions_pb2.ListSubscriptionsRequest, context: Context
    ) -> subscriptions_pb2.ListSubscriptionsResponse:
        """A page of the calling customer's subscriptions, newest first."""
        scope = make_scope(request.business_id, mode_from_proto(request.mode), request.customer_id)
        page = make_page(request.page_size, request.page_number)
        found = await self._service.list_subscriptions(scope, page)
        return subscriptions_pb2.ListSubscriptionsResponse(
            subscriptions=[subscription_to_proto(s) for s in found]
        )
