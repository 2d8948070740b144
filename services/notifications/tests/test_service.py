"""Unit tests for the recipient directory's rules: event data validation and ordering."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from billing_kit.errors import InvalidArgument, NotFound
from billing_kit.events import CloudEvent
from notifications.models import Recipient, RecipientKey
from notifications.service import (
    InvalidCustomerEvent,
    NotificationsService,
    is_newer,
    recipient_from_event,
)

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def _event(
    *,
    event_id: str = "evt_1",
    type: str = "customer.created",
    time: datetime = T0,
    **data: Any,
) -> CloudEvent:
    payload: dict[str, Any] = {
        "customer_id": "cus_1",
        "business_id": "bus_1",
        "mode": "test",
        "email": "ada@example.com",
        "name": "Ada",
    }
    payload.update(data)
    return CloudEvent(id=event_id, source="auth", type=type, time=time, data=payload)


class InMemoryStore:
    """A stand-in for the repository; the real one is covered by the integration tests."""

    def __init__(self) -> None:
        self.rows: dict[RecipientKey, Recipient] = {}

    async def get_recipient(self, key: RecipientKey, *, session: Any = None) -> Recipient | None:
        return self.rows.get(key)

    async def save_recipient(self, recipient: Recipient, *, session: Any) -> None:
        self.rows[recipient.key] = recipient


class TestEventDataValidation:
    def test_snapshot_becomes_a_recipient(self) -> None:
        recipient = recipient_from_event(_event(locale="it", phone_number="+390000"))
        assert (recipient.email, recipient.name, recipient.locale) == (
            "ada@example.com",
            "Ada",
            "it",
        )
        assert (recipient.last_event_id, recipient.updated_at) == ("evt_1", T0)

    @pytest.mark.parametrize(
        "bad",
        [
            {"email": "not-an-email"},
            {"email": None},
            {"mode": "prod"},
            {"customer_id": ""},
            {"business_id": None},
        ],
    )
    def test_bad_payload_raises(self, bad: dict[str, Any]) -> None:
        with pytest.raises(InvalidCustomerEvent):
            recipient_from_event(_event(**bad))

    def test_missing_email_raises(self) -> None:
        event = _event()
        data = {k: v for k, v in event.data.items() if k != "email"}
        with pytest.raises(InvalidCustomerEvent):
            recipient_from_event(event.model_copy(update={"data": data}))

    def test_error_message_never_quotes_the_email(self) -> None:
        event = _event()
        data = {k: v for k, v in event.data.items() if k != "customer_id"}
        with pytest.raises(InvalidCustomerEvent) as err:
            recipient_from_event(event.model_copy(update={"data": data}))
        assert "customer_id" in str(err.value)
        assert "ada@" not in str(err.value)

    def test_missing_locale_is_none(self) -> None:
        assert recipient_from_event(_event()).locale is None


class TestOrderingRule:
    def _stored(self, time: datetime, event_id: str = "evt_m") -> Recipient:
        return recipient_from_event(_event(event_id=event_id, time=time))

    def test_first_event_always_applies(self) -> None:
        assert is_newer(T0, "evt_1", None)

    def test_older_event_does_not_apply(self) -> None:
        assert not is_newer(T0 - timedelta(seconds=1), "evt_z", self._stored(T0))

    def test_newer_event_applies(self) -> None:
        assert is_newer(T0 + timedelta(seconds=1), "evt_a", self._stored(T0))

    def test_sub_millisecond_order_is_kept(self) -> None:
        stored = self._stored(T0 + timedelta(microseconds=700))
        assert not is_newer(T0 + timedelta(microseconds=300), "evt_z", stored)
        assert is_newer(T0 + timedelta(microseconds=900), "evt_a", stored)

    def test_same_event_again_does_not_apply(self) -> None:
        assert not is_newer(T0, "evt_m", self._stored(T0, "evt_m"))

    def test_time_tie_is_broken_by_event_id(self) -> None:
        stored = self._stored(T0, "evt_m")
        assert is_newer(T0, "evt_n", stored) and not is_newer(T0, "evt_l", stored)


class TestApplyCustomerEvent:
    async def test_older_update_after_newer_keeps_newer_data(self) -> None:
        store = InMemoryStore()
        service = NotificationsService(store)
        newer = _event(event_id="e2", type="customer.updated", time=T0, name="Ada Lovelace")
        older = _event(event_id="e1", type="customer.updated", time=T0 - timedelta(minutes=1))
        assert await service.apply_customer_event(newer, session=None)  # type: ignore[arg-type]
        assert not await service.apply_customer_event(older, session=None)  # type: ignore[arg-type]
        found = await service.get_recipient("bus_1", "test", "cus_1")
        assert (found.name, found.last_event_id) == ("Ada Lovelace", "e2")

    async def test_unexpected_type_changes_nothing(self) -> None:
        store = InMemoryStore()
        applied = await NotificationsService(store).apply_customer_event(
            _event(type="payment.succeeded"),
            session=None,  # type: ignore[arg-type]
        )
        assert not applied and store.rows == {}

    async def test_bad_payload_writes_nothing(self) -> None:
        store = InMemoryStore()
        with pytest.raises(InvalidCustomerEvent):
            await NotificationsService(store).apply_customer_event(
                _event(email="nope"),
                session=None,  # type: ignore[arg-type]
            )
        assert store.rows == {}


class TestGetRecipient:
    async def test_unknown_is_not_found(self) -> None:
        with pytest.raises(NotFound):
            await NotificationsService(InMemoryStore()).get_recipient("bus_1", "test", "cus_x")

    async def test_incomplete_key_is_invalid_argument(self) -> None:
        with pytest.raises(InvalidArgument):
            await NotificationsService(InMemoryStore()).get_recipient("bus_1", "", "cus_1")
