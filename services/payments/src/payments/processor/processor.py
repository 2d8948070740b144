"""What payments needs from a card processor, and the deterministic test-mode processor.

The processor is the only holder of card numbers in a real deployment (it
returns a token); here :class:`TestProcessor` plays that role for test mode
and encodes the behaviour of the documented test cards in the token it hands
out, so it keeps no card number anywhere, not even in memory after
:meth:`TestProcessor.tokenize` returns.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from payments.processor.cards import CardInput, card_brand


class ChargeStatus(StrEnum):
    """What a processor answered to a charge."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    # The bank wants a 3-D Secure challenge before it answers.
    REQUIRES_ACTION = "requires_action"


@dataclass(frozen=True)
class ChargeOutcome:
    """A processor's answer; a decline carries a code and plain words for the customer."""

    status: ChargeStatus
    error_code: str = ""
    error_message: str = ""


@dataclass(frozen=True)
class TokenizedCard:
    """What may be stored about a card: a token and what identifies it to its owner."""

    token: str
    brand: str
    last4: str
    expiry_month: int
    expiry_year: int
    fingerprint: str


SUCCEEDED = ChargeOutcome(ChargeStatus.SUCCEEDED)
CARD_DECLINED = ChargeOutcome(ChargeStatus.FAILED, "card_declined", "Your card was declined.")
INSUFFICIENT_FUNDS = ChargeOutcome(
    ChargeStatus.FAILED, "insufficient_funds", "Your card has insufficient funds."
)
EXPIRED_CARD = ChargeOutcome(ChargeStatus.FAILED, "expired_card", "Your card has expired.")
NEEDS_CHALLENGE = ChargeOutcome(ChargeStatus.REQUIRES_ACTION)
UNATTENDED_CHALLENGE = ChargeOutcome(
    ChargeStatus.FAILED,
    "requires_customer_action",
    "Your bank asks you to confirm this payment. Please pay from your customer portal.",
)
CHALLENGE_FAILED = ChargeOutcome(
    ChargeStatus.FAILED,
    "authentication_failed",
    "The payment was not confirmed with your bank.",
)


class Processor(Protocol):
    """A card processor as payments uses it."""

    def tokenize(self, card: CardInput, *, business_id: str) -> TokenizedCard:
        """Exchange a typed card for a token (the number is not kept)."""
        ...

    async def verify(self, token: str) -> ChargeOutcome:
        """A zero-amount check before a card is saved: may decline it."""
        ...

    async def charge(
        self,
        token: str,
        *,
        amount: int,
        currency: str,
        customer_present: bool,
        reference: str,
        first_purchase: bool = False,
    ) -> ChargeOutcome:
        """Charge ``amount``; the same ``reference`` (our payment id) never charges twice.

        ``first_purchase`` is the purchase the card is entered for (a new
        subscription or checkout), as opposed to a later renewal or dues charge.
        """
        ...

    async def complete_challenge(
        self, token: str, *, reference: str, approved: bool
    ) -> ChargeOutcome:
        """The answer to a charge once its 3-D Secure challenge was passed or failed."""
        ...


class CardProfile(StrEnum):
    """How a test card behaves; the test processor's token carries it."""

    OK = "ok"
    DECLINED = "declined"
    INSUFFICIENT_FUNDS = "nofunds"
    EXPIRED = "expired"
    DECLINE_AFTER_SAVE = "laterdecline"
    CHALLENGE_WHEN_PRESENT = "3dspresent"
    CHALLENGE_ALWAYS = "3dsalways"


# The documented test cards (README "Test cards"); any other valid number behaves as OK.
TEST_CARDS: dict[str, CardProfile] = {
    "4242424242424242": CardProfile.OK,
    "4000000000000002": CardProfile.DECLINED,
    "4000000000009995": CardProfile.INSUFFICIENT_FUNDS,
    "4000000000000069": CardProfile.EXPIRED,
    "4000000000000341": CardProfile.DECLINE_AFTER_SAVE,
    "4000002500003155": CardProfile.CHALLENGE_WHEN_PRESENT,
    "4000002760003184": CardProfile.CHALLENGE_ALWAYS,
}
_REFUSED_AT_SAVE = {
    CardProfile.DECLINED: CARD_DECLINED,
    CardProfile.INSUFFICIENT_FUNDS: INSUFFICIENT_FUNDS,
    CardProfile.EXPIRED: EXPIRED_CARD,
}
_TOKEN_PREFIX = "tok_test_"  # noqa: S105 (a prefix, not a secret)


def card_fingerprint(secret: bytes, *, business_id: str, number: str) -> str:
    """HMAC-SHA256 of the number under the service secret: stable per card, never reversible."""
    digest = hmac.new(secret, f"{business_id}:{number}".encode(), hashlib.sha256).hexdigest()
    return f"fp_{digest[:40]}"


def _profile(token: str) -> CardProfile:
    if not token.startswith(_TOKEN_PREFIX):
        raise ValueError("not a test processor token")
    return CardProfile(token[len(_TOKEN_PREFIX) :].split("_", 1)[0])


class TestProcessor:
    """Deterministic test-mode processor: outcomes follow the documented test cards."""

    __test__ = False  # not a pytest class

    def __init__(self, fingerprint_secret: bytes) -> None:
        self._secret = fingerprint_secret

    def tokenize(self, card: CardInput, *, business_id: str) -> TokenizedCard:
        """A token naming the card's test behaviour plus a random part."""
        profile = TEST_CARDS.get(card.number, CardProfile.OK)
        return TokenizedCard(
            token=f"{_TOKEN_PREFIX}{profile.value}_{secrets.token_hex(12)}",
            brand=card_brand(card.number),
            last4=card.number[-4:],
            expiry_month=card.expiry_month,
            expiry_year=card.expiry_year,
            fingerprint=card_fingerprint(self._secret, business_id=business_id, number=card.number),
        )

    async def verify(self, token: str) -> ChargeOutcome:
        """Declined, no-funds and expired test cards are refused before they are saved."""
        return _REFUSED_AT_SAVE.get(_profile(token), SUCCEEDED)

    async def charge(
        self,
        token: str,
        *,
        amount: int,
        currency: str,
        customer_present: bool,
        reference: str,
        first_purchase: bool = False,
    ) -> ChargeOutcome:
        """The test card's outcome; a pure function of its inputs, so retries agree."""
        profile = _profile(token)
        if profile in _REFUSED_AT_SAVE:
            return _REFUSED_AT_SAVE[profile]
        if profile is CardProfile.DECLINE_AFTER_SAVE:
            # The purchase that saves the card goes through; renewals, dues and
            # on-demand charges on it later are declined (an account closed since).
            return SUCCEEDED if first_purchase else CARD_DECLINED
        if profile is CardProfile.CHALLENGE_WHEN_PRESENT:
            return NEEDS_CHALLENGE if customer_present else SUCCEEDED
        if profile is CardProfile.CHALLENGE_ALWAYS:
            return NEEDS_CHALLENGE if customer_present else UNATTENDED_CHALLENGE
        return SUCCEEDED

    async def complete_challenge(
        self, token: str, *, reference: str, approved: bool
    ) -> ChargeOutcome:
        """Passing the challenge approves the charge; failing it declines."""
        _profile(token)
        return SUCCEEDED if approved else CHALLENGE_FAILED
