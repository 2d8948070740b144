"""Unit tests for the payments read rules: what a stored card may hold, page bounds."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from payments.config import PaymentsSettings
from payments.convert import payment_method_to_proto
from payments.methods.models import PaymentMethod

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _method(**changes: object) -> PaymentMethod:
    fields: dict[str, object] = {
        "payment_method_id": "pm_1",
        "business_id": "bus_1",
        "mode": "test",
        "customer_id": "cus_1",
        "brand": "visa",
        "last4": "4242",
        "expiry_month": 12,
        "expiry_year": 2030,
        "fingerprint": "fp_abc",
        "created_at": NOW,
    }
    fields.update(changes)
    return PaymentMethod.model_validate(fields)


class TestPaymentMethodModel:
    def test_a_full_card_number_cannot_pass_as_last4(self) -> None:
        with pytest.raises(ValueError):
            _method(last4="4242424242424242")

    def test_extra_fields_such_as_a_card_number_are_refused(self) -> None:
        with pytest.raises(ValueError):
            _method(card_number="4242424242424242")

    @pytest.mark.parametrize("month", [0, 13])
    def test_expiry_month_is_a_calendar_month(self, month: int) -> None:
        with pytest.raises(ValueError):
            _method(expiry_month=month)

    def test_wire_form_carries_display_fields_only(self) -> None:
        message = payment_method_to_proto(_method())
        assert (message.brand, message.last4, message.expiry_month, message.expiry_year) == (
            "visa",
            "4242",
            12,
            2030,
        )
        assert "4242424242424242" not in str(message)


class TestSettings:
    PRODUCTION: dict[str, object] = {
        "environment": "production",
        "mongodb_url": "mongodb://db:27017/",
        "amqp_url": "amqp://mq:5672/",
    }

    def test_production_refuses_the_development_fingerprint_secret(self) -> None:
        with pytest.raises(ValueError, match="fingerprint_secret must be set"):
            PaymentsSettings(**self.PRODUCTION)  # type: ignore[arg-type]

    def test_production_refuses_a_short_secret(self) -> None:
        with pytest.raises(ValueError, match="at least 32"):
            PaymentsSettings(**self.PRODUCTION, fingerprint_secret="short")  # type: ignore[arg-type]

    def test_production_starts_with_a_long_secret(self) -> None:
        settings = PaymentsSettings(**self.PRODUCTION, fingerprint_secret="x" * 32)  # type: ignore[arg-type]
        assert settings.http_port == 8083
