"""Unit tests of what the hosted page accepts as a card, and of the test processor's cards."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from payments.processor.cards import (
    CardInput,
    CardProblem,
    card_brand,
    luhn_valid,
    parse_expiry,
    read_card,
)
from payments.processor.processor import ChargeStatus, TestProcessor, card_fingerprint

NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
SECRET = b"unit-test-secret"


class TestLuhn:
    @pytest.mark.parametrize(
        "number", ["4242424242424242", "4000000000000002", "5555555555554444", "378282246310005"]
    )
    def test_real_test_numbers_pass(self, number: str) -> None:
        assert luhn_valid(number)

    @pytest.mark.parametrize("number", ["4242424242424241", "1234567812345678", "42424242x4242424"])
    def test_a_mistyped_number_fails(self, number: str) -> None:
        assert not luhn_valid(number)

    def test_spaces_are_what_people_type(self) -> None:
        card = read_card(
            number="4242 4242 4242 4242", expiry="12/34", cvc="123", holder_name="", now=NOW
        )
        assert isinstance(card, CardInput) and card.number == "4242424242424242"


class TestExpiry:
    def test_this_month_is_still_valid(self) -> None:
        assert parse_expiry("12/26", NOW) == (12, 2026)

    def test_last_month_has_expired(self) -> None:
        assert parse_expiry("11/26", NOW) is CardProblem.EXPIRY_PAST

    def test_four_digit_years_are_read(self) -> None:
        assert parse_expiry("01/2030", NOW) == (1, 2030)

    @pytest.mark.parametrize("raw", ["13/30", "00/30", "1230", "ab/cd", "12/99999"])
    def test_nonsense_is_refused(self, raw: str) -> None:
        assert parse_expiry(raw, NOW) is CardProblem.EXPIRY_INVALID

    def test_empty_is_missing(self) -> None:
        assert parse_expiry(" ", NOW) is CardProblem.EXPIRY_MISSING


class TestReadCard:
    def test_every_bad_field_is_named(self) -> None:
        problems = read_card(
            number="4242 4242 4242 4241", expiry="01/20", cvc="12", holder_name="", now=NOW
        )
        assert problems == {
            "cc-number": CardProblem.NUMBER_INVALID,
            "cc-exp": CardProblem.EXPIRY_PAST,
            "cc-csc": CardProblem.CVC_INVALID,
        }

    def test_amex_wants_four_cvc_digits(self) -> None:
        problems = read_card(
            number="378282246310005", expiry="01/30", cvc="123", holder_name="", now=NOW
        )
        assert problems == {"cc-csc": CardProblem.CVC_INVALID}

    def test_the_card_never_prints_its_number_or_cvc(self) -> None:
        card = read_card(
            number="4242424242424242", expiry="01/30", cvc="987", holder_name="A", now=NOW
        )
        assert isinstance(card, CardInput)
        assert "4242424242424242" not in repr(card) and "987" not in str(card)
        assert "4242" in repr(card)

    def test_brand_comes_from_the_prefix(self) -> None:
        assert [card_brand(n) for n in ("4242", "5555", "2221", "3782", "6011")] == [
            "visa",
            "mastercard",
            "mastercard",
            "amex",
            "discover",
        ]


def _card(number: str) -> CardInput:
    card = read_card(number=number, expiry="12/30", cvc="123", holder_name="Ada", now=NOW)
    assert isinstance(card, CardInput)
    return card


class TestTestProcessor:
    async def _charge(self, number: str, *, present: bool) -> tuple[ChargeStatus, str]:
        processor = TestProcessor(SECRET)
        token = processor.tokenize(_card(number), business_id="bus_1").token
        outcome = await processor.charge(
            token, amount=1000, currency="USD", customer_present=present, reference="pay_1"
        )
        return outcome.status, outcome.error_code

    @pytest.mark.parametrize(
        ("number", "present", "expected"),
        [
            ("4242424242424242", False, (ChargeStatus.SUCCEEDED, "")),
            ("4000000000000341", True, (ChargeStatus.FAILED, "card_declined")),
            ("4000002500003155", True, (ChargeStatus.REQUIRES_ACTION, "")),
            ("4000002500003155", False, (ChargeStatus.SUCCEEDED, "")),
            ("4000002760003184", True, (ChargeStatus.REQUIRES_ACTION, "")),
            ("4000002760003184", False, (ChargeStatus.FAILED, "requires_customer_action")),
            ("4000000000009995", False, (ChargeStatus.FAILED, "insufficient_funds")),
        ],
    )
    async def test_each_test_card_behaves_as_documented(
        self, number: str, present: bool, expected: tuple[ChargeStatus, str]
    ) -> None:
        assert await self._charge(number, present=present) == expected

    @pytest.mark.parametrize(
        ("number", "code"),
        [
            ("4000000000000002", "card_declined"),
            ("4000000000009995", "insufficient_funds"),
            ("4000000000000069", "expired_card"),
        ],
    )
    async def test_refused_cards_are_not_saved(self, number: str, code: str) -> None:
        processor = TestProcessor(SECRET)
        outcome = await processor.verify(processor.tokenize(_card(number), business_id="b").token)
        assert (outcome.status, outcome.error_code) == (ChargeStatus.FAILED, code)

    async def test_a_card_that_declines_later_is_saved(self) -> None:
        processor = TestProcessor(SECRET)
        token = processor.tokenize(_card("4000000000000341"), business_id="b").token
        assert (await processor.verify(token)).status is ChargeStatus.SUCCEEDED

    def test_the_token_and_fingerprint_do_not_carry_the_number(self) -> None:
        tokenized = TestProcessor(SECRET).tokenize(_card("4242424242424242"), business_id="b")
        assert "4242424242424242" not in tokenized.token + tokenized.fingerprint
        assert (tokenized.brand, tokenized.last4) == ("visa", "4242")

    def test_the_fingerprint_is_stable_per_business_and_keyed(self) -> None:
        one = card_fingerprint(SECRET, business_id="b", number="4242424242424242")
        assert one == card_fingerprint(SECRET, business_id="b", number="4242424242424242")
        assert one != card_fingerprint(SECRET, business_id="c", number="4242424242424242")
        assert one != card_fingerprint(b"other", business_id="b", number="4242424242424242")
