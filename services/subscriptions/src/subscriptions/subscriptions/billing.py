"""Use cases that take money outside the renewal cycle: a new payment method
(and, for an on_hold subscription, its dues), on-demand charges, and the
late outcome of a 3-D Secure challenge (``payment.succeeded``/``payment.failed``).

Dues are computed by :func:`~subscriptions.subscriptions.periods.dues_of`
(rules in that module and the README).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from billing_kit.errors import InvalidArgument, NotFound, Reason
from billing_kit.events import CloudEvent
from billing_kit.scoping import Mode
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from subscriptions.subscriptions import models as m
from subscriptions.subscriptions.models import Subscription, SubscriptionStatus
from subscriptions.subscriptions.payments_client import (
    ChargeRequest,
    ChargeResult,
    ChargeStatus,
    ChargeType,
    PaymentLine,
    PaymentsPort,
    subscription_lines,
)
from subscriptions.subscriptions.periods import Dues, after_paid_dues, dues_of
from subscriptions.subscriptions.repository import SubscriptionsRepository
from subscriptions.subscriptions.service import apply_first_payment
from subscriptions.subscriptions.state_machine import Transition, transition
from subscriptions.subscriptions.test_clock import BusinessClocks
from subscriptions.subscriptions.unit_of_work import Txn, UnitOfWork

log = logging.getLogger(__name__)
PAYMENT_EVENTS = ("payment.succeeded", "payment.failed")


class PaymentOutcomeData(BaseModel):
    """What this service reads of a ``payment.succeeded``/``payment.failed`` event."""

    model_config = ConfigDict(extra="ignore")

    payment_id: str = Field(min_length=1, description="the payment a subscription may wait for")
    total_amount: int = Field(default=0, description="minor units")
    currency: str = Field(default="", description="ISO 4217")
    error_code: str = Field(default="", description="why it failed")
    error_message: str = Field(default="", description="plain words for the customer")
    business_id: str = Field(default="", description="the merchant")
    mode: Mode = Field(default="test", description="test or live")
    subscription_id: str = Field(default="", description="the subscription a hosted page paid")
    idempotency_key: str = Field(default="", description="which charge of it")
    payment_method_id: str = Field(default="", description="the card saved on the page")
    metadata: dict[str, str] = Field(default_factory=dict, description="the caller's key-values")


class MethodResult(StrEnum):
    """What UpdatePaymentMethod did."""

    SWITCHED = "switched"
    CHARGED = "charged"


@dataclass(frozen=True)
class MethodUpdate:
    """The answer of UpdatePaymentMethod."""

    result: MethodResult
    subscription: Subscription
    payment: ChargeResult | None = None


def _not_found() -> NotFound:
    return NotFound("subscription not found", reason=Reason.SUBSCRIPTION_NOT_FOUND)


def settle_dues(
    sub: Subscription, dues: Dues, result: ChargeResult, method_id: str
) -> tuple[Subscription, str | None]:
    """An on_hold subscription after a dues charge, and the event to emit (if any).

    Success re-activates it for a fresh period starting at the payment;
    a decline keeps it on_hold (the next attempt gets a new key, since this
    one charged nothing); 3-D Secure keeps it on_hold waiting for the event.
    """
    if result.status is ChargeStatus.SUCCEEDED:
        status = transition(Transition.DUES_PAID, sub.status)
        fields = after_paid_dues(sub, dues)
        return sub.model_copy(
            update={
                **fields,
                "status": status,
                "payment_method_id": method_id,
                "pending_payment_id": None,
                "challenge_url": None,
            }
        ), m.SUBSCRIPTION_ACTIVE
    if result.status is ChargeStatus.FAILED:
        return sub.model_copy(
            update={
                "dues_attempts": sub.dues_attempts + 1,
                "pending_payment_id": None,
                "challenge_url": None,
            }
        ), None
    return sub.model_copy(
        update={
            "pending_payment_id": result.payment_id,
            "challenge_url": result.challenge_url or None,
            "payment_method_id": method_id,
        }
    ), None


class BillingService:
    """Payment-method updates, dues, on-demand charges and late 3-D Secure outcomes."""

    def __init__(
        self,
        repository: SubscriptionsRepository,
        uow: UnitOfWork,
        clocks: BusinessClocks,
        payments: PaymentsPort,
    ) -> None:
        self.repository = repository
        self.uow = uow
        self.clocks = clocks
        self.payments = payments
        # A payment no subscription waits for by id (hosted-page payments: pages.HostedPages).
        self.on_unmatched_payment: (
            Callable[[CloudEvent, PaymentOutcomeData, Txn], Awaitable[None]] | None
        ) = None
        # A plan change waiting for its 3-D Secure payment (plan_changes.PlanChangesService).
        self.on_plan_change_payment: (
            Callable[[Subscription, ChargeResult, datetime, Txn], Awaitable[None]] | None
        ) = None

    async def _get(
        self, business_id: str, mode: Mode, subscription_id: str, customer_id: str | None
    ) -> Subscription:
        sub = await self.repository.get(business_id, mode, subscription_id, customer_id=customer_id)
        if sub is None:
            raise _not_found()
        return sub

    async def preview_dues(
        self, business_id: str, mode: Mode, subscription_id: str, customer_id: str | None = None
    ) -> Dues | None:
        """What an on_hold subscription owes if paid now (None when nothing is owed)."""
        sub = await self._get(business_id, mode, subscription_id, customer_id)
        if sub.status is not SubscriptionStatus.ON_HOLD:
            return None
        return dues_of(sub, await self.clocks.now(business_id, mode))

    async def update_payment_method(
        self,
        business_id: str,
        mode: Mode,
        subscription_id: str,
        payment_method_id: str,
        *,
        customer_id: str | None = None,
        customer_present: bool = False,
        return_url: str = "",
    ) -> MethodUpdate:
        """Active/pending: switch the method. On hold: charge the dues with it.

        Payments answers NOT_FOUND for a method that is not this customer's.
        """
        if not payment_method_id:
            raise InvalidArgument(
                "payment_method_id is required",
                reason=Reason.INVALID_SUBSCRIPTION_REQUEST,
                field="payment_method_id",
            )
        sub = await self._get(business_id, mode, subscription_id, customer_id)
        if sub.status is not SubscriptionStatus.ON_HOLD:
            transition(Transition.SWITCH_PAYMENT_METHOD, sub.status)
            return MethodUpdate(MethodResult.SWITCHED, await self._switch(sub, payment_method_id))
        dues = dues_of(sub, await self.clocks.now(business_id, mode))
        result = await self.payments.charge(
            ChargeRequest(
                business_id=business_id,
                mode=mode,
                customer_id=sub.customer_id,
                payment_method_id=payment_method_id,
                amount=dues.amount,
                currency=dues.currency,
                idempotency_key=dues.idempotency_key,
                charge_type=ChargeType.RENEWAL,
                subscription_id=sub.subscription_id,
                customer_present=customer_present,
                return_url=return_url,
                description=sub.product_name,
                lines=subscription_lines(sub, dues.amount),
                billing=sub.billing,
                tax_id=sub.tax_id,
            )
        )
        updated = await self._apply_dues(sub, dues, result, payment_method_id)
        return MethodUpdate(MethodResult.CHARGED, updated, result)

    async def _switch(self, sub: Subscription, method_id: str) -> Subscription:
        async def work(txn: Txn) -> Subscription:
            current = await self.repository.get(
                sub.business_id, sub.mode, sub.subscription_id, txn=txn
            )
            if current is None:
                raise _not_found()
            transition(Transition.SWITCH_PAYMENT_METHOD, current.status)
            if current.payment_method_id == method_id:
                return current
            now = await self.clocks.now(sub.business_id, sub.mode)
            updated = current.model_copy(update={"payment_method_id": method_id, "updated_at": now})
            await self.repository.save(updated, txn)
            await self.uow.emit(m.SUBSCRIPTION_UPDATED, updated, txn, previous=current)
            return updated

        return await self.uow.run(work)

    async def _apply_dues(
        self, sub: Subscription, dues: Dues, result: ChargeResult, method_id: str
    ) -> Subscription:
        async def work(txn: Txn) -> Subscription:
            current = await self.repository.get(
                sub.business_id, sub.mode, sub.subscription_id, txn=txn
            )
            if (
                current is None
                or current.status is not SubscriptionStatus.ON_HOLD
                or current.dues_attempts != sub.dues_attempts
                or current.period != sub.period
            ):
                # Another request (or the payment event) already settled this attempt.
                return current or sub
            now = await self.clocks.now(sub.business_id, sub.mode)
            updated, event = settle_dues(current, dues, result, method_id)
            updated = updated.model_copy(update={"updated_at": now})
            await self.repository.save(updated, txn)
            if event is not None:
                await self.uow.emit(
                    event, updated, txn, payment_id=result.payment_id, previous=current
                )
            return updated

        return await self.uow.run(work)

    async def charge_on_demand(
        self,
        business_id: str,
        mode: Mode,
        subscription_id: str,
        amount: int,
        *,
        currency: str = "",
        description: str = "",
        idempotency_key: str = "",
    ) -> ChargeResult:
        """Charge an active subscription's method ``amount`` now (the merchant's call)."""
        if amount <= 0:
            raise InvalidArgument(
                "product_price must be positive",
                reason=Reason.INVALID_SUBSCRIPTION_REQUEST,
                field="product_price",
            )
        sub = await self._get(business_id, mode, subscription_id, None)
        transition(Transition.CHARGE_ON_DEMAND, sub.status)
        if currency and currency != sub.currency:
            raise InvalidArgument(
                "product_currency must be the subscription's currency",
                reason=Reason.INVALID_SUBSCRIPTION_REQUEST,
                field="product_currency",
            )
        if not sub.payment_method_id:
            transition(Transition.CHARGE_ON_DEMAND, SubscriptionStatus.PENDING)
        assert sub.payment_method_id is not None
        key = idempotency_key or uuid.uuid4().hex
        return await self.payments.charge(
            ChargeRequest(
                business_id=business_id,
                mode=mode,
                customer_id=sub.customer_id,
                payment_method_id=sub.payment_method_id,
                amount=amount,
                currency=sub.currency,
                idempotency_key=f"{sub.subscription_id}:on_demand:{key}",
                charge_type=ChargeType.ON_DEMAND,
                subscription_id=sub.subscription_id,
                customer_present=False,
                description=description or sub.product_name,
                # An on-demand amount is not a price per unit: one line of the whole.
                lines=(
                    PaymentLine(
                        product_id=sub.product_id,
                        product_name=description or sub.product_name,
                        quantity=1,
                        unit_amount=amount,
                    ),
                ),
                billing=sub.billing,
                tax_id=sub.tax_id,
            )
        )

    async def on_payment_event(self, event: CloudEvent, txn: Txn) -> None:
        """Finish a first payment or a reactivation that waited for 3-D Secure.

        Runs in the consumer's transaction (the kit records the event id in it,
        so a redelivered event changes nothing twice).
        """
        try:
            data = PaymentOutcomeData.model_validate(event.data)
        except ValidationError:
            log.warning("payment event without a payment id ignored", extra={"event_id": event.id})
            return
        payment_id = data.payment_id
        sub = await self.repository.get_by_pending_payment(payment_id, txn)
        if sub is None:
            if self.on_unmatched_payment is not None:
                await self.on_unmatched_payment(event, data, txn)
            return
        status = (
            ChargeStatus.SUCCEEDED if event.type == "payment.succeeded" else ChargeStatus.FAILED
        )
        result = ChargeResult(
            payment_id=payment_id,
            status=status,
            amount=data.total_amount,
            currency=data.currency or sub.currency,
            error_code=data.error_code,
            error_message=data.error_message,
        )
        now = await self.clocks.now(sub.business_id, sub.mode)
        if sub.pending_plan_change is not None and self.on_plan_change_payment is not None:
            await self.on_plan_change_payment(sub, result, now, txn)
            return
        event_type: str | None
        if sub.status is SubscriptionStatus.PENDING:
            updated, event_type = apply_first_payment(sub, result, now)
        elif sub.status is SubscriptionStatus.ON_HOLD:
            updated, event_type = settle_dues(
                sub, dues_of(sub, now), result, sub.payment_method_id or ""
            )
        else:
            log.info("payment event for a %s subscription ignored", sub.status.value)
            return
        updated = updated.model_copy(update={"updated_at": now})
        await self.repository.save(updated, txn)
        if event_type is not None:
            await self.uow.emit(event_type, updated, txn, payment_id=payment_id, previous=sub)
