"""Use cases of the payments ledger: charge a saved method, finish a 3-D Secure challenge, read.

A charge is idempotent by a unique index on (business_id, mode,
idempotency_key): the payment is inserted first, in state ``processing``, and
the loser of a race gets DuplicateKeyError and reads the winner's. Whoever
finds the payment still ``processing`` asks the processor (which is
idempotent by our payment id, so asking twice never charges twice) and
applies the answer with a conditional update: the one status change, its
outbox event and the method's ``last_used_at`` commit together, once.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from billing_kit.clock import Clock
from billing_kit.errors import FailedPrecondition, InvalidArgument, NotFound, Reason
from billing_kit.events import new_event
from billing_kit.field_rules import is_http_url
from billing_kit.scoping import CustomerScope, Mode, PageRequest
from pymongo.errors import DuplicateKeyError

from payments.charges.models import (
    MAX_LINES,
    PAYMENT_CANCELLED,
    PAYMENT_FAILED,
    PAYMENT_SUCCEEDED,
    BillingAddress,
    ChargeType,
    Payment,
    PaymentEventData,
    PaymentLine,
    PaymentStatus,
    StoredPayment,
)
from payments.charges.repository import PaymentFilter, PaymentsRepository
from payments.methods.service import PaymentMethodsService
from payments.processor.processor import ChargeOutcome, ChargeStatus, Processor
from payments.unit_of_work import Txn, UnitOfWork

SOURCE = "payments"
MAX_AMOUNT = 10**12
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_EVENT_OF_STATUS = {
    PaymentStatus.SUCCEEDED: PAYMENT_SUCCEEDED,
    PaymentStatus.FAILED: PAYMENT_FAILED,
    PaymentStatus.CANCELLED: PAYMENT_CANCELLED,
}


@dataclass(frozen=True)
class ChargeInput:
    """What a caller asks to charge."""

    scope: CustomerScope
    payment_method_id: str
    amount: int
    currency: str
    idempotency_key: str
    charge_type: ChargeType
    customer_present: bool
    subscription_id: str = ""
    return_url: str = ""
    description: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    session_id: str = ""
    lines: list[PaymentLine] = field(default_factory=list)
    billing: BillingAddress | None = None
    tax_id: str = ""

    def validate(self) -> None:
        """Each bad field is an INVALID_ARGUMENT naming it."""
        if not self.payment_method_id:
            raise InvalidArgument("payment_method_id is required", field="payment_method_id")
        if not 0 < self.amount <= MAX_AMOUNT:
            raise InvalidArgument("amount must be a positive number of minor units", field="amount")
        if not _CURRENCY.match(self.currency):
            raise InvalidArgument("currency must be an ISO 4217 code such as USD", field="currency")
        if not 0 < len(self.idempotency_key) <= 255:
            raise InvalidArgument(
                "idempotency_key is required (1-255 characters)", field="idempotency_key"
            )
        if self.return_url and not is_http_url(self.return_url):
            raise InvalidArgument("return_url must be an http(s) URL", field="return_url")
        if len(self.description) > 500:
            raise InvalidArgument("description is too long (500 at most)", field="description")
        if len(self.metadata) > 50:
            raise InvalidArgument("at most 50 metadata keys", field="metadata")
        check_lines(self.lines, self.amount)
        if len(self.tax_id) > 64:
            raise InvalidArgument("tax_id is too long (64 at most)", field="tax_id")


def check_lines(lines: list[PaymentLine], amount: int) -> None:
    """Lines, when given, must add up to the amount: an invoice prints them as the total."""
    if len(lines) > MAX_LINES:
        raise InvalidArgument(f"at most {MAX_LINES} lines", field="lines")
    if lines and sum(line.unit_amount * line.quantity for line in lines) != amount:
        raise InvalidArgument(
            "lines must add up to amount (sum of quantity x unit_amount)", field="lines"
        )


def payment_not_found() -> NotFound:
    """The one answer for a missing or someone else's payment."""
    return NotFound("payment not found", reason=Reason.PAYMENT_NOT_FOUND, field="payment_id")


class ChargesService:
    """Charges saved methods and keeps the ledger."""

    def __init__(
        self,
        uow: UnitOfWork,
        repository: PaymentsRepository,
        methods: PaymentMethodsService,
        processor: Processor,
        clock: Clock,
        challenge_url: Callable[[str], str],
        challenge_ttl: timedelta,
    ) -> None:
        self._uow = uow
        self._repository = repository
        self._methods = methods
        self._processor = processor
        self._clock = clock
        self._challenge_url = challenge_url
        self._challenge_ttl = challenge_ttl

    async def charge(self, request: ChargeInput) -> Payment:
        """Charge once per idempotency key; declines are a FAILED payment, not an error."""
        request.validate()
        method = await self._methods.get_stored(request.scope, request.payment_method_id)
        now = self._clock.now()
        fresh = StoredPayment(
            payment_id=f"pay_{secrets.token_urlsafe(18)}",
            business_id=request.scope.business_id,
            mode=request.scope.mode,
            customer_id=request.scope.customer_id,
            subscription_id=request.subscription_id,
            total_amount=request.amount,
            currency=request.currency,
            status=PaymentStatus.PROCESSING,
            charge_type=request.charge_type,
            payment_method_id=method.payment_method_id,
            card_brand=method.brand,
            card_last_four=method.last4,
            idempotency_key=request.idempotency_key,
            description=request.description,
            metadata=request.metadata,
            lines=request.lines,
            billing=request.billing,
            tax_id=request.tax_id,
            created_at=now,
            updated_at=now,
            processor_token=method.processor_token,
            return_url=request.return_url,
            session_id=request.session_id,
        )

        async def insert(txn: Txn) -> None:
            await self._repository.insert(fresh, txn)

        try:
            await self._uow.run(insert)
            payment = fresh
        except DuplicateKeyError:
            existing = await self._repository.get_by_key(
                request.scope.business_id, request.scope.mode, request.idempotency_key
            )
            if existing is None:  # pragma: no cover - the unique index said it exists
                raise
            _same_request_or_refuse(existing, request)
            payment = existing
        if payment.status is PaymentStatus.PROCESSING:
            payment = await self._drive(payment, request.customer_present)
        elif self._challenge_expired(payment):
            payment = await self._cancel_expired(payment)
        return payment.public()

    def _challenge_expired(self, payment: StoredPayment) -> bool:
        expires = payment.challenge_expires_at
        return (
            payment.status is PaymentStatus.REQUIRES_CUSTOMER_ACTION
            and expires is not None
            and expires <= self._clock.now()
        )

    async def _cancel_expired(self, payment: StoredPayment) -> StoredPayment:
        # A challenge nobody answered in time: the payment ends cancelled (and says so
        # once, payment.cancelled), so a retry with its key sees a final state.
        changes = {
            "status": PaymentStatus.CANCELLED,
            "error_code": "challenge_expired",
            "error_message": "The payment was not confirmed in time.",
            "challenge_url": "",
            "updated_at": self._clock.now(),
        }
        return await self._apply(payment, PaymentStatus.REQUIRES_CUSTOMER_ACTION, changes)

    async def _drive(self, payment: StoredPayment, customer_present: bool) -> StoredPayment:
        outcome = await self._processor.charge(
            payment.processor_token,
            amount=payment.total_amount,
            currency=payment.currency,
            customer_present=customer_present,
            reference=payment.payment_id,
            first_purchase=payment.charge_type is ChargeType.NEW,
        )
        changes: dict[str, Any] = {"updated_at": self._clock.now()}
        if outcome.status is ChargeStatus.REQUIRES_ACTION:
            challenge_id = secrets.token_urlsafe(24)
            changes |= {
                "status": PaymentStatus.REQUIRES_CUSTOMER_ACTION,
                "challenge_id": challenge_id,
                "challenge_url": self._challenge_url(challenge_id),
                "challenge_expires_at": self._clock.now() + self._challenge_ttl,
            }
        else:
            changes |= _final_changes(outcome)
        return await self._apply(payment, PaymentStatus.PROCESSING, changes)

    async def _apply(
        self, payment: StoredPayment, from_status: PaymentStatus, changes: dict[str, Any]
    ) -> StoredPayment:
        scope = CustomerScope(
            business_id=payment.business_id, mode=payment.mode, customer_id=payment.customer_id
        )

        async def work(txn: Txn) -> StoredPayment | None:
            updated = await self._repository.transition(
                payment.payment_id, from_status, changes, txn
            )
            if updated is None:
                return None
            event_type = _EVENT_OF_STATUS.get(updated.status)
            if event_type is not None:
                data = PaymentEventData.model_validate(updated.public().model_dump())
                await self._uow.add_event(
                    new_event(event_type, SOURCE, data, subject=updated.payment_id), txn
                )
            if updated.status is PaymentStatus.SUCCEEDED:
                await self._methods.mark_used(scope, updated.payment_method_id, txn)
            return updated

        updated = await self._uow.run(work)
        if updated is not None:
            return updated
        # Another request applied the outcome first: it is the one that counts.
        current = await self._repository.get(payment.business_id, payment.mode, payment.payment_id)
        if current is None:  # pragma: no cover - payments are never deleted
            raise payment_not_found()
        return current

    async def challenge(self, challenge_id: str) -> StoredPayment:
        """The payment a 3-D Secure page is for (NOT_FOUND when unknown)."""
        payment = await self._repository.get_by_challenge(challenge_id)
        if payment is None:
            raise payment_not_found()
        return payment

    async def complete_challenge(self, challenge_id: str, *, approved: bool) -> StoredPayment:
        """Apply the customer's answer to the challenge, once; emits succeeded or failed.

        Past its expiry the payment is cancelled instead (``payment.cancelled``).
        """
        payment = await self.challenge(challenge_id)
        if payment.status is not PaymentStatus.REQUIRES_CUSTOMER_ACTION:
            return payment  # already answered (a double submit): show the outcome
        if self._challenge_expired(payment):
            await self._cancel_expired(payment)
            raise FailedPrecondition("this confirmation page has expired", field="challenge_id")
        outcome = await self._processor.complete_challenge(
            payment.processor_token, reference=payment.payment_id, approved=approved
        )
        changes = _final_changes(outcome) | {"updated_at": self._clock.now(), "challenge_url": ""}
        return await self._apply(payment, PaymentStatus.REQUIRES_CUSTOMER_ACTION, changes)

    async def get_payment(
        self, business_id: str, mode: Mode, payment_id: str, customer_id: str = ""
    ) -> Payment:
        """The business's payment (and the customer's, when named), NOT_FOUND otherwise."""
        if not payment_id:
            raise InvalidArgument("payment_id is required", field="payment_id")
        found = await self._repository.get(business_id, mode, payment_id)
        if found is None or (customer_id and found.customer_id != customer_id):
            raise payment_not_found()
        return found.public()

    async def list_payments(self, where: PaymentFilter, page: PageRequest) -> list[Payment]:
        """One page of the business's payments, newest first."""
        if len(where.customer_ids) > 100:
            raise InvalidArgument("at most 100 customer_ids", field="customer_ids")
        found = await self._repository.list(where, page, now=self._clock.now())
        return [p.public() for p in found]


def _final_changes(outcome: ChargeOutcome) -> dict[str, Any]:
    if outcome.status is ChargeStatus.SUCCEEDED:
        return {"status": PaymentStatus.SUCCEEDED, "error_code": "", "error_message": ""}
    return {
        "status": PaymentStatus.FAILED,
        "error_code": outcome.error_code,
        "error_message": outcome.error_message,
    }


def _same_request_or_refuse(existing: StoredPayment, request: ChargeInput) -> None:
    same = (
        existing.customer_id == request.scope.customer_id
        and existing.payment_method_id == request.payment_method_id
        and existing.total_amount == request.amount
        and existing.currency == request.currency
    )
    if not same:
        raise FailedPrecondition(
            "this idempotency_key was already used for a different charge",
            reason=Reason.IDEMPOTENCY_KEY_REUSED,
            field="idempotency_key",
        )
