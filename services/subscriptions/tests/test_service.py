"""Unit tests for the subscriptions read rules: scope, page bounds, scoped lookup."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from billing.subscriptions.v1 import subscriptions_pb2
from billing_kit.errors import InvalidArgument, NotFound
from billing_kit.scoping import CustomerScope, PageRequest, make_page, make_scope
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
    """A stand-in for the repository; the real one is covered by the integration tests."""

    def __init__(self, *subs: Subscription) -> None:
        self.subs = list(subs)

    async def get_subscription(self, scope: CustomerScope, sid: str) -> Subscription | None:
        return next(
            (
                s
                for s in self.subs
                if s.subscription_id == sid
                and (s.business_id, s.mode, s.customer_id)
                == (scope.business_id, scope.mode, scope.customer_id)
            ),
            None,
        )

    async def list_subscriptions(
        self, scope: CustomerScope, page: PageRequest
    ) -> list[Subscription]:
        return []


class TestMakePage:
    def test_zero_size_means_default_of_ten(self) -> None:
        assert make_page(0, 0) == PageRequest(page_size=10, page_number=0)

    def test_skip_is_size_times_number(self) -> None:
        assert make_page(25, 3).skip == 75

    @pytest.mark.parametrize(("size", "number"), [(101, 0), (-1, 0), (10, -1), (10, 10_001)])
    def test_out_of_bounds_is_invalid_argument(self, size: int, number: int) -> None:
        with pytest.raises(InvalidArgument) as err:
            make_page(size, number)
        assert err.value.reason == "INVALID_PAGE"

    def test_largest_allowed_page(self) -> None:
        assert make_page(100, 10_000).page_size == 100


class TestMakeScope:
    @pytest.mark.parametrize(
        ("business_id", "mode", "customer_id"),
        [("", "test", "cus_1"), ("bus_1", "prod", "cus_1"), ("bus_1", "live", "")],
    )
    def test_incomplete_or_bad_scope_is_invalid_argument(
        self, business_id: str, mode: str, customer_id: str
    ) -> None:
        with pytest.raises(InvalidArgument) as err:
            make_scope(business_id, mode, customer_id)
        assert err.value.reason == "INVALID_SCOPE"


class TestGetSubscription:
    async def test_another_customers_subscription_is_not_found(self) -> None:
        service = SubscriptionsService(InMemoryReader(_subscription("sub_1", customer_id="cus_2")))
        with pytest.raises(NotFound):
            await service.get_subscription(make_scope("bus_1", "test", "cus_1"), "sub_1")

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
