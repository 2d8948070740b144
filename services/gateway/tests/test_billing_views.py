"""The billing pages' view models and forms: proto messages in, what the customer reads out."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from billing.payments.v1 import payments_pb2
from billing.subscriptions.v1 import subscriptions_pb2 as subs
from gateway.web import billing_views as views
from gateway.web import i18n
from gateway.web.billing_forms import (
    CancelChoice,
    dues_fingerprint,
    parse_cancel,
    parse_method_choice,
)
from google.protobuf.timestamp_pb2 import Timestamp

LINKS = views.Links(detail="/d", cancel="/c", payment_method="/pm")


@pytest.fixture(autouse=True)
def english() -> Any:
    catalogs = i18n.compile_catalogs()
    i18n.activate(catalogs, "en")
    yield catalogs
    i18n.activate(catalogs, "en")


def ts(year: int, month: int, day: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(datetime(year, month, day, 12, tzinfo=UTC))
    return stamp


def subscription(**fields: Any) -> subs.Subscription:
    values: dict[str, Any] = {
        "subscription_id": "sub_1",
        "product_id": "pdt_1",
        "product_name": "Pro plan",
        "status": subs.SUBSCRIPTION_STATUS_ACTIVE,
        "recurring_pre_tax_amount": 1999,
        "currency": "EUR",
        "payment_frequency_count": 1,
        "payment_frequency_interval": subs.TIME_INTERVAL_MONTH,
        "next_billing_date": ts(2026, 12, 7),
        "payment_method_id": "pm_1",
    }
    values.update(fields)
    return subs.Subscription(**values)


CARD = payments_pb2.PaymentMethod(
    payment_method_id="pm_1", brand="visa", last4="4242", expiry_month=3, expiry_year=2030
)


class TestSubscriptionView:
    def test_active_shows_price_interval_renewal_and_card_with_edit(self) -> None:
        view = views.subscription_view(subscription(), {"pm_1": CARD}, LINKS)
        assert view.price == "€19.99 per month"
        assert view.status == {"label": "Active", "tone": "success", "status": "active"}
        assert (view.date_label, view.date) == ("Renews on", "Dec 7, 2026")
        assert view.card == "Visa •••• 4242"
        assert view.can_cancel and not view.is_past and not view.needs_payment

    def test_italian_formats_money_dates_and_words_in_italian(self, english: Any) -> None:
        i18n.activate(english, "it")
        view = views.subscription_view(
            subscription(payment_frequency_count=3), {"pm_1": CARD}, LINKS
        )
        assert view.price == "19,99\xa0€ ogni 3 mesi"
        assert (view.date_label, view.date) == ("Si rinnova il", "7 dic 2026")
        assert view.status["label"] == "Attiva"

    def test_zero_decimal_currency_is_not_divided_by_a_hundred(self) -> None:
        view = views.subscription_view(
            subscription(recurring_pre_tax_amount=1500, currency="JPY"), {}, LINKS
        )
        assert view.price.startswith("¥1,500")

    def test_on_hold_says_what_is_due_and_since_when(self) -> None:
        view = views.subscription_view(
            subscription(status=subs.SUBSCRIPTION_STATUS_ON_HOLD, amount_due=1999),
            {"pm_1": CARD},
            LINKS,
        )
        assert view.needs_payment and view.amount_due == "€19.99"
        assert view.date_label == "Payment due since"
        assert view.status["tone"] == "warning"

    def test_scheduled_cancel_shows_the_end_date_and_offers_no_second_cancel(self) -> None:
        view = views.subscription_view(subscription(cancel_at_next_billing_date=True), {}, LINKS)
        assert view.cancel_scheduled and not view.can_cancel
        assert (view.date_label, view.date) == ("Ends on", "Dec 7, 2026")

    def test_cancelled_is_past_with_its_end_date_reason_and_comment(self) -> None:
        view = views.subscription_view(
            subscription(
                status=subs.SUBSCRIPTION_STATUS_CANCELLED,
                cancelled_at=ts(2026, 11, 20),
                cancellation_feedback=subs.CANCELLATION_FEEDBACK_TOO_EXPENSIVE,
                cancellation_comment="Cheaper elsewhere",
            ),
            {"pm_1": CARD},
            LINKS,
        )
        assert view.is_past and not view.can_cancel and not view.cancel_scheduled
        assert (view.date_label, view.date) == ("Ended on", "Nov 20, 2026")
        assert view.cancellation == {
            "reason": "It is too expensive",
            "comment": "Cheaper elsewhere",
        }

    def test_a_card_that_is_not_among_the_saved_ones_shows_no_card(self) -> None:
        view = views.subscription_view(subscription(payment_method_id="pm_gone"), {}, LINKS)
        assert view.card == ""

    def test_current_and_past_split_puts_on_hold_first(self) -> None:
        statuses = {
            "a": subs.SUBSCRIPTION_STATUS_ACTIVE,
            "b": subs.SUBSCRIPTION_STATUS_EXPIRED,
            "c": subs.SUBSCRIPTION_STATUS_ON_HOLD,
        }
        rows = [
            views.subscription_view(subscription(subscription_id=i, status=s), {}, LINKS)
            for i, s in statuses.items()
        ]
        current, past = views.split_current_and_past(rows)
        assert [v.subscription_id for v in current] == ["c", "a"]
        assert [v.subscription_id for v in past] == ["b"]


class TestPaymentsAndMethods:
    def test_failed_payment_reads_its_reason_in_plain_words(self) -> None:
        payment = payments_pb2.Payment(
            payment_id="pay_1",
            total_amount=1999,
            currency="EUR",
            status=payments_pb2.PAYMENT_STATUS_FAILED,
            charge_type=payments_pb2.CHARGE_TYPE_RENEWAL,
            card_brand="visa",
            card_last_four="0002",
            error_code="insufficient_funds",
            created_at=ts(2026, 11, 7),
        )
        view = views.payment_view(payment)
        assert view.error == "Your card has insufficient funds. Try another card."
        assert (view.amount, view.kind, view.date) == ("€19.99", "Renewal", "Nov 7, 2026")
        assert view.status["label"] == "Failed" and view.card == "Visa •••• 0002"

    def test_unknown_decline_code_still_says_something_useful(self) -> None:
        payment = payments_pb2.Payment(status=payments_pb2.PAYMENT_STATUS_FAILED, error_code="x")
        assert views.decline_message(payment) == "The payment did not go through. Try another card."

    def test_a_card_used_by_a_current_subscription_is_not_removable(self) -> None:
        used = views.methods_in_use(
            [
                subscription(),
                subscription(
                    subscription_id="old",
                    product_name="Old plan",
                    status=subs.SUBSCRIPTION_STATUS_CANCELLED,
                    payment_method_id="pm_2",
                ),
            ]
        )
        assert used == {"pm_1": ["Pro plan"]}
        view = views.method_view(CARD, default_id="pm_1", used_by=used["pm_1"])
        assert not view.removable and view.is_default and view.expiry == "03/30"
        other = payments_pb2.PaymentMethod(payment_method_id="pm_2", brand="mastercard", last4="1")
        assert views.method_view(other, default_id="pm_1", used_by=[]).removable


class TestForms:
    def test_cancel_needs_when_and_the_confirmation_box(self) -> None:
        assert set(parse_cancel({})) == {"when", "confirm"}  # type: ignore[arg-type]

    def test_cancel_refuses_a_reason_that_is_not_dodos(self) -> None:
        errors = parse_cancel({"when": "now", "confirm": "yes", "feedback": "bored"})
        assert isinstance(errors, dict) and set(errors) == {"feedback"}

    def test_cancel_keeps_reason_and_folds_the_comment(self) -> None:
        choice = parse_cancel(
            {"when": "period_end", "confirm": "yes", "feedback": "unused", "comment": "  a \n b "}
        )
        assert choice == CancelChoice(when="period_end", feedback="unused", comment="a b")

    def test_cancel_refuses_a_very_long_comment(self) -> None:
        errors = parse_cancel({"when": "now", "confirm": "yes", "comment": "x" * 1001})
        assert isinstance(errors, dict) and set(errors) == {"comment"}

    def test_method_choice_only_among_the_customers_own_cards(self) -> None:
        assert parse_method_choice({"payment_method_id": "pm_1"}, {"pm_1"}) == "pm_1"
        assert parse_method_choice({"payment_method_id": "new"}, set()) == "new"
        refused = parse_method_choice({"payment_method_id": "pm_other"}, {"pm_1"})
        assert isinstance(refused, dict) and "payment_method_id" in refused
        assert isinstance(parse_method_choice({}, {"pm_1"}), dict)

    def test_dues_fingerprint_is_what_is_charged_not_when_the_new_period_starts(self) -> None:
        first = subs.Dues(amount=1999, currency="EUR", period_start=ts(2026, 11, 7))
        a_second_later = subs.Dues(amount=1999, currency="EUR", period_start=ts(2026, 11, 8))
        more = subs.Dues(amount=3998, currency="EUR", period_start=ts(2026, 11, 7))
        other_currency = subs.Dues(amount=1999, currency="USD", period_start=ts(2026, 11, 7))
        assert dues_fingerprint(first) == dues_fingerprint(a_second_later)
        assert dues_fingerprint(first) != dues_fingerprint(more)
        assert dues_fingerprint(first) != dues_fingerprint(other_currency)
