"""The hosted payment page as subscriptions uses it: pages it asks payments for, and
what their outcomes do to a subscription.

A page's charge carries a key this service chose (the first-charge key of a
pending subscription, the dues key of an on_hold one), so only those payments
count, once; a page that only saves a card (``payment_method.saved``, naming
the subscription) switches an active or pending subscription to that card.
Every handler runs in the event consumer's transaction (one effect per event id).
"""

from __future__ import annotations

import logging

from billing_kit.errors import InvalidArgument, NotFound, Reason
from billing_kit.events import CloudEvent
from billing_kit.scoping import Mode
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from subscriptions.subscriptions import models as m
from subscriptions.subscriptions.billing import PaymentOutcomeData, settle_dues
from subscriptions.subscriptions.models import Subscription, SubscriptionStatus
from subscriptions.subscriptions.payments_client import (
    ChargeResult,
    ChargeStatus,
    ChargeType,
    PayPageRequest,
    PayPagesPort,
    SavePageRequest,
    subscription_lines,
)
from subscriptions.subscriptions.periods import dues_of, first_charge_key
from subscriptions.subscriptions.repository import SubscriptionsRepository
from subscriptions.subscriptions.service import apply_first_payment
from subscriptions.subscriptions.state_machine import Transition, transition
from subscriptions.subscriptions.test_clock import BusinessClocks
from subscriptions.subscriptions.unit_of_work import Txn, UnitOfWork

log = logging.getLogger(__name__)
METHOD_SAVED_EVENTS = ("payment_method.saved",)


class MethodSavedData(BaseModel):
    """What this service reads of ``payment_method.saved``."""

    model_config = ConfigDict(extra="ignore")

    payment_method_id: str = Field(min_length=1, description="the card saved on the page")
    business_id: str = Field(min_length=1, description="the merchant")
    mode: Mode = Field(description="test or live")
    customer_id: str = Field(min_length=1, description="whose card")
    subscription_id: str = Field(default="", description="the subscription the page was for")


class HostedPages:
    """Pages for subscriptions and the events that finish them."""

    def __init__(
        self,
        repository: SubscriptionsRepository,
        uow: UnitOfWork,
        clocks: BusinessClocks,
        pages: PayPagesPort,
    ) -> None:
        self.repository = repository
        self.uow = uow
        self.clocks = clocks
        self.pages = pages

    async def on_page_payment(self, event: CloudEvent, data: PaymentOutcomeData, txn: Txn) -> None:
        """A payment made on the hosted page for a subscription that did not know its id.

        Only the charges this service asked the page for count: the first
        period of a pending subscription (its first-charge key) and the
        current dues of an on_hold one (the dues key). The card saved on the
        page becomes the subscription's method.
        """
        if not data.subscription_id or not data.business_id:
            return
        sub = await self.repository.get(data.business_id, data.mode, data.subscription_id, txn=txn)
        if sub is None:
            return
        succeeded = event.type == "payment.succeeded"
        result = ChargeResult(
            payment_id=data.payment_id,
            status=ChargeStatus.SUCCEEDED if succeeded else ChargeStatus.FAILED,
            amount=data.total_amount,
            currency=data.currency or sub.currency,
            error_code=data.error_code,
            error_message=data.error_message,
        )
        now = await self.clocks.now(sub.business_id, sub.mode)
        event_type: str | None
        if sub.status is SubscriptionStatus.PENDING and data.idempotency_key == first_charge_key(
            sub.subscription_id
        ):
            updated, event_type = apply_first_payment(sub, result, now)
            if succeeded:
                updated = updated.model_copy(update={"payment_method_id": data.payment_method_id})
        elif sub.status is SubscriptionStatus.ON_HOLD:
            dues = dues_of(sub, now)
            if data.idempotency_key != dues.idempotency_key:
                return
            updated, event_type = settle_dues(sub, dues, result, data.payment_method_id)
        else:
            return
        updated = updated.model_copy(update={"updated_at": now})
        await self.repository.save(updated, txn)
        if event_type is not None:
            await self.uow.emit(event_type, updated, txn, payment_id=data.payment_id)

    async def new_method_page(
        self,
        business_id: str,
        mode: Mode,
        subscription_id: str,
        return_url: str,
        customer_id: str | None = None,
    ) -> tuple[Subscription, str]:
        """The hosted page where the subscription's customer gives a new card.

        Active or pending: a page that only saves the card; the
        ``payment_method.saved`` event switches the subscription to it.
        On hold: the page's charge carries the dues key (the same rule as an existing
        method), so double submits and a second page charge once; the
        ``payment.succeeded`` event reactivates the subscription on that card.
        """
        if not return_url:
            raise InvalidArgument(
                "return_url is required for a new payment method",
                reason=Reason.INVALID_SUBSCRIPTION_REQUEST,
                field="return_url",
            )
        sub = await self.repository.get(business_id, mode, subscription_id, customer_id=customer_id)
        if sub is None:
            raise NotFound("subscription not found", reason=Reason.SUBSCRIPTION_NOT_FOUND)
        if sub.status is not SubscriptionStatus.ON_HOLD:
            # Active or pending: the page only saves the card; its payment_method.saved switches.
            transition(Transition.SWITCH_PAYMENT_METHOD, sub.status)
            url = await self.pages.save_page(
                SavePageRequest(
                    business_id=business_id,
                    mode=mode,
                    customer_id=sub.customer_id,
                    subscription_id=sub.subscription_id,
                    return_url=return_url,
                )
            )
            return sub, url
        dues = dues_of(sub, await self.clocks.now(business_id, mode))
        url = await self.pages.pay_page(
            PayPageRequest(
                business_id=business_id,
                mode=mode,
                customer_id=sub.customer_id,
                amount=dues.amount,
                currency=dues.currency,
                idempotency_key=dues.idempotency_key,
                charge_type=ChargeType.RENEWAL,
                return_url=return_url,
                subscription_id=sub.subscription_id,
                description=sub.product_name,
                lines=subscription_lines(sub, dues.amount),
                billing=sub.billing,
                tax_id=sub.tax_id,
            )
        )
        return sub, url

    async def on_method_saved(self, event: CloudEvent, txn: Txn) -> None:
        """Switch the subscription a save-only page was for to the card saved there."""
        try:
            data = MethodSavedData.model_validate(event.data)
        except ValidationError:
            log.warning(
                "payment_method.saved without its fields ignored", extra={"event_id": event.id}
            )
            return
        if not data.subscription_id:
            return
        sub = await self.repository.get(
            data.business_id,
            data.mode,
            data.subscription_id,
            customer_id=data.customer_id,
            txn=txn,
        )
        if sub is None or sub.payment_method_id == data.payment_method_id:
            return
        if sub.status not in (SubscriptionStatus.ACTIVE, SubscriptionStatus.PENDING):
            # On hold pays its dues through a PAY page; ended subscriptions keep their method.
            log.info("saved card for a %s subscription not switched", sub.status.value)
            return
        now = await self.clocks.now(sub.business_id, sub.mode)
        updated = sub.model_copy(
            update={"payment_method_id": data.payment_method_id, "updated_at": now}
        )
        await self.repository.save(updated, txn)
        await self.uow.emit(m.SUBSCRIPTION_UPDATED, updated, txn)
