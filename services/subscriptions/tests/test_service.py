"""Unit tests for the subscriptions read rules: scope, page bounds, scoped lookup."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from billing.subscriptions.v1 import subscriptions_pb2
from billing_kit.errors import InvalidArgument, NotFound, Reason
from billing_kit.scoping import CustomerScope, PageRequest, make_scope
from subscriptions.models import Subscription, SubscriptionStatus
from subscriptions.service import SubscriptionsService
from subscriptions.servicer import subscription_to_proto

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _subscription(sid: str, customer_id: str = "cus_1", **changes: object) -> Subscription:
    fields: dict[str, object] = {
        "subscription_id": sid,
        "business_id": "bus_1",
        "mode": "test",
        "customer_id": customer_id,
        "product_id": "pdt_1",
        "status": SubscriptionStatus.ACTIVE,
        "recurring_pre_tax_amount": 1999,
        "currency": "EUR",
        "next_billing_date": NOW + timedelta(days=30),
        "created_at": NOW,
    }
    fields.update(changes)
    return Subscription.model_validate(fields)


class InMemoryReader:
    """A stand-in for the repository that finds by id only.

    Scoping (another customer's, business's or mode's subscription is not
    found) is the real repository's job; test_integration.py checks it against
    the database.
    """

    def __init__(self, *subs: Subscription) -> None:
        self.subs = list(subs)

    async def get_subscription(self, scope: CustomerScope, sid: str) -> Subscription | None:
        return next((s for s in self.subs if s.subscription_id == sid), None)

    async def list_subscriptions(
        self, scope: CustomerScope, page: PageRequest
    ) -> list[Subscription]:
        return []


class TestGetSubscription:
    async def test_a_subscription_the_repository_does_not_find_is_not_found(self) -> None:
        service = SubscriptionsService(InMemoryReader(_subscription("sub_1")))
        with pytest.raises(NotFound) as err:
            await service.get_subscription(make_scope("bus_1", "test", "cus_1"), "sub_2")
        assert err.value.reason is Reason.SUBSCRIPTION_NOT_FOUND

    async def test_own_subscription_is_returned(self) -> None:
        service = SubscriptionsService(InMemoryReader(_subscription("sub_1")))
        found = await service.get_subscription(make_scope("bus_1", "test", "cus_1"), "sub_1")
        assert found.subscription_id == "sub_1"

    async def test_empty_id_is_invalid_argument(self) -> None:
        with pytest.raises(InvalidArgument):
            await SubscriptionsService(InMemoryReader()).get_subscription(
                make_scope("bus_1", "test", "cus_1"), ""
            )


class TestSubscriptionModel:
    def test_money_is_non_negative_minor_units_with_iso_currency(self) -> None:
        with pytest.raises(ValueError):
            _subscription("sub_1", recurring_pre_tax_amount=-1)
        with pytest.raises(ValueError):
            _subscription("sub_1", currency="euro")

    def test_naive_datetimes_are_rejected(self) -> None:
        with pytest.raises(ValueError):
            _subscription("sub_1", created_at=datetime(2026, 1, 1))


class TestToProto:
    @pytest.mark.parametrize("status", list(SubscriptionStatus))
    def test_every_status_has_its_wire_value(self, status: SubscriptionStatus) -> None:
        message = subscription_to_proto(_subscription("sub_1", status=status))
        name = subscriptions_pb2.SubscriptionStatus.Name(message.status)
        assert name == f"SUBSCRIPTION_STATUS_{status.name}"

    def test_no_next_billing_date_stays_unset(self) -> None:
        message = subscription_to_proto(_subscription("sub_1", next_billing_date=None))
        assert not message.HasField("next_billing_date")
        assert message.created_at.ToDatetime(tzinfo=UTC) == NOW
