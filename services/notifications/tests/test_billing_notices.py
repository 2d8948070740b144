"""Which billing email an event asks for (pure rules, no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from billing_kit.events import CloudEvent
from notifications.billing.service import notice_for
from notifications.email.delivery import InvalidEmailRequest
from notifications.email.models import EmailTemplate

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def event(type: str, **data: Any) -> CloudEvent:
    payload: dict[str, Any] = {
        "subscription_id": "sub_1",
        "business_id": "bus_1",
        "mode": "live",
        "customer_id": "cus_1",
        "status": "active",
        "recurring_pre_tax_amount": 1999,
        "currency": "EUR",
        "next_billing_date": "2026-12-24T09:00:00+00:00",
        "amount_due": 0,
    }
    payload.update(data)
    return CloudEvent(id="evt_1", source="subscriptions", type=type, time=NOW, data=payload)


def test_on_hold_links_to_the_payment_method_page_and_shows_the_dues() -> None:
    notice = notice_for(event("subscription.on_hold", status="on_hold", amount_due=3998))
    assert notice is not None
    assert notice.template is EmailTemplate.SUBSCRIPTION_ON_HOLD
    assert notice.next_path == "/b/bus_1/subscriptions/sub_1/payment-method"
    assert notice.billing.amount == 3998


@pytest.mark.parametrize(
    ("previous", "expected"),
    [("on_hold", EmailTemplate.SUBSCRIPTION_REACTIVATED), ("pending", None), (None, None)],
)
def test_active_is_a_reactivation_only_after_on_hold(
    previous: str | None, expected: EmailTemplate | None
) -> None:
    notice = notice_for(event("subscription.active", previous_status=previous))
    assert (notice.template if notice else None) is expected


@pytest.mark.parametrize(
    ("before", "after", "emails"),
    [(False, True, True), (True, True, False), (None, True, False), (True, False, False)],
)
def test_only_the_update_that_schedules_the_cancel_is_emailed(
    before: bool | None, after: bool, emails: bool
) -> None:
    notice = notice_for(
        event(
            "subscription.updated",
            cancel_at_next_billing_date=after,
            previous_cancel_at_next_billing_date=before,
        )
    )
    assert (notice is not None) is emails
    if notice is not None:
        assert notice.template is EmailTemplate.CANCELLATION_SCHEDULED
        assert notice.next_path == "/b/bus_1/subscriptions/sub_1"


def test_credit_notes_get_no_receipt() -> None:
    data = {
        "invoice_id": "inv_1",
        "number": "INV-000002",
        "business_id": "bus_1",
        "mode": "live",
        "customer_id": "cus_1",
        "total": 1999,
        "currency": "EUR",
    }
    receipt = CloudEvent(id="e", source="invoicing", type="invoice.created", time=NOW, data=data)
    notice = notice_for(receipt)
    assert notice is not None and notice.template is EmailTemplate.PAYMENT_RECEIPT
    assert notice.billing.invoice_number == "INV-000002"
    credit = receipt.model_copy(update={"data": {**data, "kind": "credit_note"}})
    assert notice_for(credit) is None


def test_bad_data_names_the_field_not_the_value() -> None:
    with pytest.raises(InvalidEmailRequest) as caught:
        notice_for(event("subscription.cancelled", customer_id="", currency="secret-value"))
    assert "customer_id" in str(caught.value) and "secret-value" not in str(caught.value)
