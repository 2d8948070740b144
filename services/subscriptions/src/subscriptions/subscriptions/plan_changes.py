"""Plan changes (Dodo's change-plan): preview, change, scheduled changes and plan options.

The preview and the change compute with the same function (:func:`plan_change`) at the
business's clock, so a change charges exactly what a preview of the same request at the
same instant answered. Rules (also in the service README):

* **Immediately**: the immediate amount (:mod:`.proration`) is charged through payments
  (charge type ``plan_change``) with the key of the request: the caller's idempotency key,
  else one derived from (subscription, period, its state version, target product,
  quantity, mode), so retried or concurrent identical requests charge once and apply once
  (``last_plan_change_key``). Success (or nothing to charge) applies the new product
  snapshot in a transaction that re-reads the subscription; the cycle restarts at the
  change except for ``prorated_immediately_keep_cycle`` and ``do_not_bill``.
* **Declined**: ``prevent_change`` changes nothing. ``apply_change`` applies the new plan
  and puts the subscription ``on_hold`` as a failed renewal of the new plan does:
  ``amount_due`` = one period of the new plan; the existing reactivation (update payment
  method) collects it and starts a fresh period at the payment. The unpaid plan-change
  amount itself is not collected separately.
* **3-D Secure** (customer present): the change waits on the subscription
  (``pending_plan_change`` + ``pending_payment_id``) and is applied (or, on failure, dropped
  / applied on hold as above) when ``payment.succeeded``/``payment.failed`` arrives.
* **Next billing date**: stored as ``scheduled_change`` (nothing charged now); the renewal
  at that date charges the new plan's price and switches the plan. If that charge fails,
  ``prevent_change`` drops the change and the subscription goes on hold on its current
  plan; ``apply_change`` switches and goes on hold on the new plan.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from billing_kit.errors import DomainError, FailedPrecondition, InvalidArgument, NotFound, Reason
from billing_kit.scoping import Mode

from subscriptions.addons.models import Addon
from subscriptions.products.models import Product, RecurringPrice
from subscriptions.subscriptions import addon_choices
from subscriptions.subscriptions import models as m
from subscriptions.subscriptions.models import (
    PendingPlanChange,
    PlanTarget,
    ScheduledPlanChange,
    Subscription,
    SubscriptionAddon,
    SubscriptionStatus,
    TimeInterval,
)
from subscriptions.subscriptions.payments_client import (
    ChargeRequest,
    ChargeResult,
    ChargeStatus,
    ChargeType,
    PaymentLine,
    PaymentsPort,
)
from subscriptions.subscriptions.periods import add_intervals, after_renewal, boundary
from subscriptions.subscriptions.proration import (
    AddonSide,
    PlanSide,
    ProratedLine,
    ProrationMode,
    compute,
    seconds_between,
)
from subscriptions.subscriptions.repository import SubscriptionsRepository
from subscriptions.subscriptions.state_machine import Transition, transition
from subscriptions.subscriptions.test_clock import BusinessClocks
from subscriptions.subscriptions.unit_of_work import Txn, UnitOfWork

log = logging.getLogger(__name__)

APPLY_CHANGE = "apply_change"
# How long a charging change holds the subscription (real time; a dead request's claim lapses).
CLAIM_LEASE = timedelta(seconds=60)
PREVENT_CHANGE = "prevent_change"
# Nominal days of an interval: only to tell an upgrade from a downgrade across frequencies.
_NOMINAL_DAYS = {"Day": 1, "Week": 7, "Month": 30, "Year": 365}


class EffectiveAt(StrEnum):
    """Dodo's change-plan ``effective_at``."""

    IMMEDIATELY = "immediately"
    NEXT_BILLING_DATE = "next_billing_date"


class PlanCatalogue(Protocol):
    """The in-process products API this module reads."""

    async def get_product(self, business_id: str, mode: Mode, product_id: str) -> Product: ...

    async def list_plan_group(
        self, business_id: str, mode: Mode, plan_group: str
    ) -> list[Product]: ...

    async def get_addons(
        self, business_id: str, mode: Mode, addon_ids: Sequence[str]
    ) -> Mapping[str, Addon]: ...


@dataclass(frozen=True)
class PlanChangeRequest:
    """A change-plan (or preview) request; ``customer_id`` scopes it to the portal's customer."""

    business_id: str
    mode: Mode
    subscription_id: str
    product_id: str
    quantity: int
    proration_mode: ProrationMode
    effective_at: EffectiveAt = EffectiveAt.IMMEDIATELY
    on_payment_failure: str = APPLY_CHANGE
    customer_id: str | None = None
    addons: tuple[tuple[str, int], ...] = ()
    cancel_scheduled: bool = False
    metadata: dict[str, str] = field(default_factory=dict)
    customer_present: bool = False
    return_url: str = ""
    idempotency_key: str = ""


@dataclass(frozen=True)
class PlanChangePreview:
    """What the change does now (or at effective_at when scheduled)."""

    effective_at: datetime
    lines: tuple[ProratedLine, ...]
    immediate_amount: int
    currency: str
    tax_inclusive: bool
    new_plan: Subscription
    scheduled: bool
    target: PlanTarget


@dataclass(frozen=True)
class PlanChangeOutcome:
    """What ChangePlan did."""

    subscription: Subscription
    payment: ChargeResult | None
    applied: PlanChangePreview


@dataclass(frozen=True)
class PlanOption:
    """A product the subscription may switch to (ListPlanOptions)."""

    product: Product
    unit_price: int
    current: bool
    upgrade: bool
    # The live add-ons the product offers in its currency, in the product's order.
    addons: tuple[Addon, ...] = ()


def _bad(message: str, field_name: str) -> InvalidArgument:
    return InvalidArgument(message, reason=Reason.INVALID_SUBSCRIPTION_REQUEST, field=field_name)


def _conflict(message: str, field_name: str = "product_id") -> FailedPrecondition:
    return FailedPrecondition(message, reason=Reason.SUBSCRIPTION_STATE_CONFLICT, field=field_name)


def _not_found() -> NotFound:
    return NotFound("subscription not found", reason=Reason.SUBSCRIPTION_NOT_FOUND)


def unit_price_of(price: RecurringPrice) -> int:
    """One unit per period after the product's discount (as a new subscription snapshots)."""
    return price.price * (10_000 - price.discount_bps) // 10_000


def _unavailable(message: str, field_name: str) -> FailedPrecondition:
    # The product's own state refuses it (kind, archive, currency, seat limit): a
    # well-formed request the merchant's catalogue rules out, so 409, not 422.
    return FailedPrecondition(message, reason=Reason.PLAN_UNAVAILABLE, field=field_name)


def target_of(
    sub: Subscription,
    product: Product,
    quantity: int,
    addons: tuple[SubscriptionAddon, ...] = (),
) -> PlanTarget:
    """The new plan's snapshot (with its already checked ``addons``), or FAILED_PRECONDITION
    ``PLAN_UNAVAILABLE`` naming the field."""
    price = product.price
    if not isinstance(price, RecurringPrice):
        raise _unavailable("product_id must be a subscription (recurring) product", "product_id")
    if product.archived:
        raise _unavailable("product_id is archived and no longer offered", "product_id")
    if price.currency != sub.currency:
        raise _unavailable(
            f"product_id is priced in {price.currency}, the subscription in {sub.currency}",
            "product_id",
        )
    if quantity < 1:
        raise _bad("quantity must be at least 1", "quantity")
    if product.max_quantity and quantity > product.max_quantity:
        raise _unavailable(
            f"quantity must be at most {product.max_quantity} for this plan", "quantity"
        )
    return PlanTarget(
        product_id=product.product_id,
        product_name=product.name,
        product_description=product.description,
        unit_price=unit_price_of(price),
        quantity=quantity,
        currency=price.currency,
        tax_inclusive=bool(price.tax_inclusive),
        payment_frequency_count=price.payment_frequency_count,
        payment_frequency_interval=price.payment_frequency_interval,
        addons=addons,
    )


def _period(sub: Subscription) -> tuple[datetime, datetime]:
    end = sub.next_billing_date or boundary(sub, sub.period + 1)
    start = sub.previous_billing_date or boundary(sub, sub.period)
    return start, end


def _same_frequency(sub: Subscription, target: PlanTarget) -> bool:
    return (sub.payment_frequency_count, sub.payment_frequency_interval.value) == (
        target.payment_frequency_count,
        target.payment_frequency_interval,
    )


def sides(sub: Subscription, target: PlanTarget) -> tuple[PlanSide, PlanSide]:
    """The old and new plans for :func:`proration.compute` (period lengths per its rules)."""
    start, end = _period(sub)
    period = seconds_between(start, end)
    if _same_frequency(sub, target):
        new_period = period
    else:
        new_end = add_intervals(
            start,
            target.payment_frequency_count,
            TimeInterval(target.payment_frequency_interval),
        )
        new_period = seconds_between(start, new_end)
    plan = sub.plan_amount
    unit = plan // sub.quantity if sub.quantity else 0
    old_addons = _addon_sides(sub.addons)
    old = PlanSide(sub.product_id, sub.product_name, sub.quantity, unit, period, old_addons)
    # The old side's amount must be exactly what a period costs now.
    if unit * sub.quantity != plan:
        old = PlanSide(sub.product_id, sub.product_name, 1, plan, period, old_addons)
    new = PlanSide(
        target.product_id,
        target.product_name,
        target.quantity,
        target.unit_price,
        new_period,
        _addon_sides(target.addons),
    )
    return old, new


def _addon_sides(addons: tuple[SubscriptionAddon, ...]) -> tuple[AddonSide, ...]:
    return tuple(
        AddonSide(a.addon_id, a.name, a.quantity, a.unit_price, a.tax_category) for a in addons
    )


def switched(sub: Subscription, target: PlanTarget) -> Subscription:
    """``sub`` on the new plan, dates untouched."""
    return sub.model_copy(
        update={
            "product_id": target.product_id,
            "product_name": target.product_name,
            "quantity": target.quantity,
            "addons": target.addons,
            "recurring_pre_tax_amount": target.recurring_pre_tax_amount,
            "tax_inclusive": target.tax_inclusive,
            "payment_frequency_count": target.payment_frequency_count,
            "payment_frequency_interval": TimeInterval(target.payment_frequency_interval),
        }
    )


def applied_now(
    sub: Subscription, target: PlanTarget, mode: ProrationMode, at: datetime
) -> Subscription:
    """``sub`` after an immediate change at ``at`` (the cycle restarts, or stays)."""
    new = switched(sub, target)
    if mode.restarts_cycle:
        end = add_intervals(
            at, target.payment_frequency_count, TimeInterval(target.payment_frequency_interval)
        )
        return new.model_copy(
            update={
                "billing_anchor": at,
                "anchor_period": sub.period + 1,
                "period": sub.period + 1,
                "previous_billing_date": at,
                "next_billing_date": end,
            }
        )
    # Same dates; later periods follow the new frequency from the next billing date.
    start, end = _period(sub)
    return new.model_copy(
        update={
            "billing_anchor": end,
            "anchor_period": sub.period + 1,
            "previous_billing_date": start,
            "next_billing_date": end,
        }
    )


def scheduled_from(sub: Subscription, change: ScheduledPlanChange) -> Subscription:
    """``sub`` on the scheduled plan from its next billing date (period not yet advanced)."""
    start, end = _period(sub)
    return switched(sub, change).model_copy(
        update={
            "billing_anchor": end,
            "anchor_period": sub.period + 1,
            "previous_billing_date": start,
            "next_billing_date": end,
            "scheduled_change": None,
        }
    )


def effective_mode(sub: Subscription, request: PlanChangeRequest) -> ProrationMode:
    """The request's mode; during a free trial (period -1) nothing is billed and the trial's
    end stays the first charge, which is then at the new plan's price (do_not_bill)."""
    if sub.period < 0:
        return ProrationMode.DO_NOT_BILL
    return request.proration_mode


def plan_change(
    sub: Subscription, target: PlanTarget, request: PlanChangeRequest, now: datetime
) -> PlanChangePreview:
    """The preview of ``request`` on ``sub`` at ``now`` (the change charges exactly this)."""
    if request.effective_at is EffectiveAt.NEXT_BILLING_DATE:
        _, end = _period(sub)
        change = ScheduledPlanChange(
            **target.model_dump(),
            id="spc_preview",
            effective_at=end,
            created_at=now,
            on_payment_failure=request.on_payment_failure,
        )
        after = scheduled_from(sub, change)
        return PlanChangePreview(
            effective_at=end,
            lines=(),
            immediate_amount=0,
            currency=sub.currency,
            tax_inclusive=target.tax_inclusive,
            new_plan=after,
            scheduled=True,
            target=target,
        )
    old, new = sides(sub, target)
    start, end = _period(sub)
    proration = compute(
        effective_mode(sub, request), old, new, period_start=start, period_end=end, at=now
    )
    return PlanChangePreview(
        effective_at=now,
        lines=proration.lines,
        immediate_amount=proration.immediate_amount,
        currency=sub.currency,
        tax_inclusive=target.tax_inclusive,
        new_plan=applied_now(sub, target, effective_mode(sub, request), now).model_copy(
            update={"scheduled_change": None if request.cancel_scheduled else sub.scheduled_change}
        ),
        scheduled=False,
        target=target,
    )


def change_key(sub: Subscription, request: PlanChangeRequest) -> str:
    """The charge's idempotency key: the caller's, else derived from what it pays for (the
    subscription's state version, card and declined attempts, so a retry after a decline, or
    after any other change, is a new charge; concurrent identical requests share it)."""
    if request.idempotency_key:
        return f"{sub.subscription_id}:plan_change:key:{request.idempotency_key}"
    version = (sub.updated_at or sub.created_at).isoformat()
    return (
        f"{sub.subscription_id}:plan_change:{sub.period}:{version}:{sub.payment_method_id}:"
        f"{request.product_id}:{request.quantity}:{request.proration_mode.value}:"
        f"{_addons_key(request.addons)}attempt:{sub.plan_change_declines}"
    )


def _addons_key(addons: tuple[tuple[str, int], ...]) -> str:
    # Part of the derived key only when add-ons are asked for, so keys of changes
    # without them stay what they were.
    if not addons:
        return ""
    return "addons=" + ",".join(f"{addon_id}*{quantity}" for addon_id, quantity in addons) + ":"


def same_plan(sub: Subscription, target: PlanTarget) -> bool:
    """Nothing would change: the same product, quantity and add-ons (ids and quantities)."""
    return (
        target.product_id == sub.product_id
        and target.quantity == sub.quantity
        and sorted((a.addon_id, a.quantity) for a in target.addons)
        == sorted((a.addon_id, a.quantity) for a in sub.addons)
    )


def charge_lines(preview: PlanChangePreview) -> tuple[PaymentLine, ...]:
    """One line of the new plan for the amount charged (lines add up to the amount)."""
    target = preview.target
    name = f"{target.product_name} (plan change)" if target.product_name else "Plan change"
    return (
        PaymentLine(
            product_id=target.product_id,
            product_name=name,
            quantity=1,
            unit_amount=preview.immediate_amount,
        ),
    )


def on_hold_unpaid(sub: Subscription) -> Subscription:
    """``sub`` (already on its new plan) on hold for one period of it, as a failed renewal."""
    status = transition(Transition.PLAN_CHANGE_UNPAID, sub.status)
    return sub.model_copy(
        update={"status": status, "amount_due": sub.recurring_pre_tax_amount, "dues_attempts": 0}
    )


def _per_day_key(unit_total: int, count: int, interval: str) -> float:
    return unit_total / (count * _NOMINAL_DAYS.get(interval, 30))


class PlanChangesService:
    """Preview, change, cancel a scheduled change, list the plan options."""

    def __init__(
        self,
        repository: SubscriptionsRepository,
        uow: UnitOfWork,
        clocks: BusinessClocks,
        products: PlanCatalogue,
        payments: PaymentsPort,
    ) -> None:
        self.repository = repository
        self.uow = uow
        self.clocks = clocks
        self.products = products
        self.payments = payments

    async def _get(
        self, business_id: str, mode: Mode, sid: str, customer: str | None
    ) -> Subscription:
        if not sid:
            raise InvalidArgument(
                "subscription_id is required", reason=Reason.INVALID_SUBSCRIPTION_ID
            )
        sub = await self.repository.get(business_id, mode, sid, customer_id=customer)
        if sub is None:
            raise _not_found()
        return sub

    def _check_state(self, sub: Subscription, request: PlanChangeRequest) -> None:
        transition(Transition.CHANGE_PLAN, sub.status)
        if sub.pending_plan_change is not None or sub.pending_payment_id:
            raise _conflict("a plan change is waiting for its payment (3-D Secure)")
        if sub.scheduled_change is not None and not request.cancel_scheduled:
            raise _conflict(
                "a plan change is already scheduled: cancel it first, or send "
                "cancel_scheduled_change_plan",
                "cancel_scheduled_change_plan",
            )

    async def _prepare(
        self, request: PlanChangeRequest
    ) -> tuple[Subscription, PlanTarget, datetime]:
        """Read and check everything; nothing is written."""
        sub = await self._get(
            request.business_id, request.mode, request.subscription_id, request.customer_id
        )
        if request.on_payment_failure not in (APPLY_CHANGE, PREVENT_CHANGE):
            raise _bad(
                "on_payment_failure must be prevent_change or apply_change", "on_payment_failure"
            )
        if request.quantity < 1:
            raise _bad("quantity must be at least 1", "quantity")
        if not request.product_id:
            raise _bad("product_id is required", "product_id")
        product = await self.products.get_product(
            request.business_id, request.mode, request.product_id
        )
        target_of(sub, product, request.quantity)  # the plan's refusals come first
        addons = await addon_choices.choose(self.products, product, sub.currency, request.addons)
        target = target_of(sub, product, request.quantity, addons)
        self._check_state(sub, request)
        if same_plan(sub, target):
            raise _conflict("the subscription is already on this plan, quantity and add-ons")
        now = await self.clocks.now(request.business_id, request.mode)
        return sub, target, now

    async def preview(self, request: PlanChangeRequest) -> PlanChangePreview:
        """What ``change`` would charge and apply now (writes nothing)."""
        sub, target, now = await self._prepare(request)
        return plan_change(sub, target, request, now)

    async def change(self, request: PlanChangeRequest) -> PlanChangeOutcome:
        """Apply (or schedule) the change, charging what the preview computes."""
        if request.idempotency_key:
            earlier = await self._earlier(request)
            if earlier is not None:
                return earlier
        sub, target, now = await self._prepare(request)
        preview = plan_change(sub, target, request, now)
        if preview.scheduled:
            return PlanChangeOutcome(
                await self._schedule(sub, request, preview, now), None, preview
            )
        key = change_key(sub, request)
        if preview.immediate_amount == 0:
            updated = await self._apply(sub, request, preview, key, None, now)
            return PlanChangeOutcome(updated, None, preview)
        if not sub.payment_method_id:
            raise _conflict("the subscription has no payment method to charge", "payment_method_id")
        if not await self._claim(sub, key):
            return await self._already(sub, request, preview)
        try:
            result = await self._charge(sub, request, preview, key)
        except DomainError as refused:
            # Payments refused it (no such card...): nothing was charged. A key reused by a
            # concurrent identical request at another amount leaves that request's claim.
            if refused.reason is not Reason.IDEMPOTENCY_KEY_REUSED:
                await self._release(sub, key)
            raise
        if result.status is ChargeStatus.SUCCEEDED:
            updated = await self._apply(sub, request, preview, key, result, now)
        elif result.status is ChargeStatus.FAILED:
            if request.on_payment_failure == PREVENT_CHANGE:
                updated = await self._declined(sub)
            else:
                updated = await self._apply(sub, request, preview, key, result, now, unpaid=True)
        else:
            updated = await self._wait(sub, request, preview, key, result, now)
        return PlanChangeOutcome(updated, result, preview)

    async def _charge(
        self, sub: Subscription, request: PlanChangeRequest, preview: PlanChangePreview, key: str
    ) -> ChargeResult:
        assert sub.payment_method_id is not None
        target = preview.target
        return await self.payments.charge(
            ChargeRequest(
                business_id=sub.business_id,
                mode=sub.mode,
                customer_id=sub.customer_id,
                payment_method_id=sub.payment_method_id,
                amount=preview.immediate_amount,
                currency=sub.currency,
                idempotency_key=key,
                charge_type=ChargeType.PLAN_CHANGE,
                subscription_id=sub.subscription_id,
                customer_present=request.customer_present,
                return_url=request.return_url,
                description=f"{target.product_name} (plan change)",
                lines=charge_lines(preview),
                billing=sub.billing,
                tax_id=sub.tax_id,
            )
        )

    async def _release(self, sub: Subscription, key: str) -> None:
        """Give the claim back after a charge that could not be made (nothing was charged)."""

        async def work(txn: Txn) -> None:
            current = await self._reread(sub, txn)
            if current.plan_change_claim == key:
                await self.repository.save(
                    current.model_copy(
                        update={"plan_change_claim": None, "plan_change_claim_until": None}
                    ),
                    txn,
                )

        await self.uow.run(work)

    async def _claim(self, sub: Subscription, key: str) -> bool:
        """Hold the subscription for this charge (False: this very change is already applied).

        Requests with the same key share the claim (and, by the key, one payment); another
        key while it holds, or a subscription that changed since it was read, is a 409.
        """

        async def work(txn: Txn) -> bool:
            current = await self._reread(sub, txn)
            if current.last_plan_change_key == key:
                return False
            if current.updated_at != sub.updated_at or current.period != sub.period:
                raise _conflict("the subscription changed meanwhile; preview the change again")
            real_now = self.clocks.real.now()
            held = current.plan_change_claim_until
            if current.plan_change_claim not in (None, key) and held and held > real_now:
                raise _conflict("another plan change of this subscription is being charged")
            if current.plan_change_claim != key:
                claimed = current.model_copy(
                    update={
                        "plan_change_claim": key,
                        "plan_change_claim_until": real_now + CLAIM_LEASE,
                    }
                )
                await self.repository.save(claimed, txn)
            return True

        return await self.uow.run(work)

    async def _already(
        self, sub: Subscription, request: PlanChangeRequest, preview: PlanChangePreview
    ) -> PlanChangeOutcome:
        current = await self._get(
            sub.business_id, sub.mode, sub.subscription_id, request.customer_id
        )
        payment = None
        if current.last_plan_change_payment_id:
            payment = ChargeResult(
                current.last_plan_change_payment_id,
                ChargeStatus.SUCCEEDED,
                preview.immediate_amount,
                current.currency,
            )
        return PlanChangeOutcome(current, payment, preview)

    async def _earlier(self, request: PlanChangeRequest) -> PlanChangeOutcome | None:
        """The answer of an earlier change with the same caller key (already applied)."""
        sub = await self._get(
            request.business_id, request.mode, request.subscription_id, request.customer_id
        )
        if sub.last_plan_change_key != change_key(sub, request):
            return None
        preview = PlanChangePreview(
            effective_at=sub.previous_billing_date or sub.created_at,
            lines=(),
            immediate_amount=0,
            currency=sub.currency,
            tax_inclusive=sub.tax_inclusive,
            new_plan=sub,
            scheduled=False,
            target=PlanTarget(
                product_id=sub.product_id,
                product_name=sub.product_name,
                unit_price=sub.plan_amount // max(1, sub.quantity),
                quantity=sub.quantity,
                addons=sub.addons,
                currency=sub.currency,
                tax_inclusive=sub.tax_inclusive,
                payment_frequency_count=sub.payment_frequency_count,
                payment_frequency_interval=sub.payment_frequency_interval.value,
            ),
        )
        payment = None
        if sub.last_plan_change_payment_id:
            payment = ChargeResult(
                sub.last_plan_change_payment_id, ChargeStatus.SUCCEEDED, 0, sub.currency
            )
        return PlanChangeOutcome(sub, payment, preview)

    async def _reread(self, sub: Subscription, txn: Txn) -> Subscription:
        current = await self.repository.get(sub.business_id, sub.mode, sub.subscription_id, txn=txn)
        if current is None:
            raise _not_found()
        return current

    async def _apply(
        self,
        sub: Subscription,
        request: PlanChangeRequest,
        preview: PlanChangePreview,
        key: str,
        result: ChargeResult | None,
        at: datetime,
        *,
        unpaid: bool = False,
    ) -> Subscription:
        async def work(txn: Txn) -> Subscription:
            current = await self._reread(sub, txn)
            if current.last_plan_change_key == key:
                return current  # a concurrent identical request applied it
            self._check_state(current, request)
            updated = applied_now(current, preview.target, effective_mode(current, request), at)
            now = await self.clocks.now(sub.business_id, sub.mode)
            updated = updated.model_copy(
                update={
                    "scheduled_change": None
                    if request.cancel_scheduled
                    else current.scheduled_change,
                    "last_plan_change_key": key,
                    "last_plan_change_payment_id": result.payment_id if result else None,
                    "plan_change_declines": 0,
                    "plan_change_claim": None,
                    "plan_change_claim_until": None,
                    "updated_at": now,
                }
            )
            payment_id = result.payment_id if result is not None else None
            if unpaid:
                updated = on_hold_unpaid(updated)
            await self.repository.save(updated, txn)
            await self.uow.emit(
                m.SUBSCRIPTION_PLAN_CHANGED, updated, txn, payment_id=payment_id, previous=current
            )
            if unpaid:
                await self.uow.emit(
                    m.SUBSCRIPTION_ON_HOLD, updated, txn, payment_id=payment_id, previous=current
                )
            return updated

        return await self.uow.run(work)

    async def _declined(self, sub: Subscription) -> Subscription:
        """prevent_change: the plan stays; only the attempt count moves (the next try gets a
        new key, since this one charged nothing)."""

        async def work(txn: Txn) -> Subscription:
            current = await self._reread(sub, txn)
            if current.plan_change_declines != sub.plan_change_declines:
                return current  # a concurrent identical request counted this decline
            updated = current.model_copy(
                update={
                    "plan_change_declines": current.plan_change_declines + 1,
                    "plan_change_claim": None,
                    "plan_change_claim_until": None,
                }
            )
            await self.repository.save(updated, txn)
            return updated

        return await self.uow.run(work)

    async def _wait(
        self,
        sub: Subscription,
        request: PlanChangeRequest,
        preview: PlanChangePreview,
        key: str,
        result: ChargeResult,
        at: datetime,
    ) -> Subscription:
        async def work(txn: Txn) -> Subscription:
            current = await self._reread(sub, txn)
            if (
                current.last_plan_change_key == key
                or current.pending_payment_id == result.payment_id
            ):
                return current
            self._check_state(current, request)
            pending = PendingPlanChange(
                **preview.target.model_dump(),
                requested_at=at,
                proration_mode=effective_mode(current, request).value,
                on_payment_failure=request.on_payment_failure,
                idempotency_key=key,
                cancel_scheduled=request.cancel_scheduled,
            )
            updated = current.model_copy(
                update={
                    "pending_plan_change": pending,
                    "plan_change_claim": None,
                    "plan_change_claim_until": None,
                    "pending_payment_id": result.payment_id,
                    "challenge_url": result.challenge_url or None,
                    "updated_at": await self.clocks.now(sub.business_id, sub.mode),
                }
            )
            await self.repository.save(updated, txn)
            return updated

        return await self.uow.run(work)

    async def _schedule(
        self,
        sub: Subscription,
        request: PlanChangeRequest,
        preview: PlanChangePreview,
        now: datetime,
    ) -> Subscription:
        async def work(txn: Txn) -> Subscription:
            current = await self._reread(sub, txn)
            self._check_state(current, request)
            _, end = _period(current)
            change = ScheduledPlanChange(
                **preview.target.model_dump(),
                id=m.SCHEDULED_CHANGE_PREFIX + secrets.token_hex(12),
                effective_at=end,
                created_at=now,
                on_payment_failure=request.on_payment_failure,
            )
            updated = current.model_copy(update={"scheduled_change": change, "updated_at": now})
            await self.repository.save(updated, txn)
            await self.uow.emit(m.SUBSCRIPTION_UPDATED, updated, txn, previous=current)
            return updated

        return await self.uow.run(work)

    async def cancel_scheduled(
        self, business_id: str, mode: Mode, subscription_id: str, customer_id: str | None = None
    ) -> Subscription:
        """Drop the scheduled change (FAILED_PRECONDITION when none is scheduled)."""
        await self._get(business_id, mode, subscription_id, customer_id)

        async def work(txn: Txn) -> Subscription:
            current = await self.repository.get(
                business_id, mode, subscription_id, customer_id=customer_id, txn=txn
            )
            if current is None:
                raise _not_found()
            if current.scheduled_change is None:
                raise _conflict("no plan change is scheduled", "scheduled_change")
            now = await self.clocks.now(business_id, mode)
            updated = current.model_copy(update={"scheduled_change": None, "updated_at": now})
            await self.repository.save(updated, txn)
            await self.uow.emit(m.SUBSCRIPTION_UPDATED, updated, txn, previous=current)
            return updated

        return await self.uow.run(work)

    async def plan_options(
        self, business_id: str, mode: Mode, subscription_id: str, customer_id: str | None = None
    ) -> list[PlanOption]:
        """The products of the subscription's plan group it may switch to, cheapest first."""
        sub = await self._get(business_id, mode, subscription_id, customer_id)
        try:
            current = await self.products.get_product(business_id, mode, sub.product_id)
        except DomainError:
            return []
        group = [current]
        if current.plan_group:
            group = await self.products.list_plan_group(business_id, mode, current.plan_group)
        # One read of every add-on the group offers (not one per product).
        catalogue = await addon_choices.offered(self.products, group)
        options: list[PlanOption] = []
        sub_per_day = _per_day_key(
            sub.plan_amount,  # plans compare without their add-ons
            sub.payment_frequency_count,
            sub.payment_frequency_interval.value,
        )
        for product in group:
            price = product.price
            is_current = product.product_id == sub.product_id
            if not isinstance(price, RecurringPrice) or price.currency != sub.currency:
                continue
            if product.archived and not is_current:
                continue
            unit = unit_price_of(price)
            per_day = _per_day_key(
                unit * sub.quantity, price.payment_frequency_count, price.payment_frequency_interval
            )
            offered = addon_choices.offers(product, catalogue, sub.currency)
            options.append(PlanOption(product, unit, is_current, per_day > sub_per_day, offered))
        options.sort(
            key=lambda o: (
                _per_day_key(
                    o.unit_price,
                    o.product.price.payment_frequency_count,  # type: ignore[union-attr]
                    o.product.price.payment_frequency_interval,  # type: ignore[union-attr]
                ),
                o.product.name,
                o.product.product_id,
            )
        )
        return options

    async def on_plan_change_payment(
        self, sub: Subscription, result: ChargeResult, now: datetime, txn: Txn
    ) -> None:
        """A 3-D Secure plan-change charge finished: apply or drop the waiting change."""
        pending = sub.pending_plan_change
        if pending is None:
            return
        cleared = sub.model_copy(
            update={"pending_plan_change": None, "pending_payment_id": None, "challenge_url": None}
        )
        succeeded = result.status is ChargeStatus.SUCCEEDED
        if not succeeded and pending.on_payment_failure == PREVENT_CHANGE:
            await self.repository.save(cleared.model_copy(update={"updated_at": now}), txn)
            return
        if cleared.status is not SubscriptionStatus.ACTIVE:
            log.info("plan-change payment for a %s subscription ignored", sub.status.value)
            await self.repository.save(cleared.model_copy(update={"updated_at": now}), txn)
            return
        target = PlanTarget.model_validate(pending.model_dump(include=set(PlanTarget.model_fields)))
        updated = applied_now(
            cleared, target, ProrationMode(pending.proration_mode), pending.requested_at
        ).model_copy(
            update={
                "scheduled_change": None if pending.cancel_scheduled else sub.scheduled_change,
                "last_plan_change_key": pending.idempotency_key,
                "last_plan_change_payment_id": result.payment_id,
                "updated_at": now,
            }
        )
        if not succeeded:
            updated = on_hold_unpaid(updated)
        await self.repository.save(updated, txn)
        await self.uow.emit(
            m.SUBSCRIPTION_PLAN_CHANGED, updated, txn, payment_id=result.payment_id, previous=sub
        )
        if not succeeded:
            await self.uow.emit(
                m.SUBSCRIPTION_ON_HOLD, updated, txn, payment_id=result.payment_id, previous=sub
            )


def scheduled_renewal(
    sub: Subscription, result: ChargeResult | None
) -> tuple[Subscription, list[str]] | None:
    """A due subscription with a scheduled change after its renewal charge at the new price.

    None: try later (no outcome yet). Success: renewed on the new plan. Failure: on hold,
    on the new plan (apply_change) or the current one (prevent_change, change dropped).
    """
    change = sub.scheduled_change
    if change is None or result is None or result.status is ChargeStatus.PROCESSING:
        return None
    moved = scheduled_from(sub, change)
    if result.status is ChargeStatus.SUCCEEDED:
        transition(Transition.RENEWAL_SUCCEEDED, sub.status)
        return moved.model_copy(update=after_renewal(moved)), [
            m.SUBSCRIPTION_RENEWED,
            m.SUBSCRIPTION_PLAN_CHANGED,
        ]
    status = transition(Transition.RENEWAL_FAILED, sub.status)
    if change.on_payment_failure == PREVENT_CHANGE:
        return sub.model_copy(
            update={
                "status": status,
                "amount_due": sub.recurring_pre_tax_amount,
                "dues_attempts": 0,
                "scheduled_change": None,
            }
        ), [m.SUBSCRIPTION_ON_HOLD]
    return moved.model_copy(
        update={"status": status, "amount_due": moved.recurring_pre_tax_amount, "dues_attempts": 0}
    ), [m.SUBSCRIPTION_ON_HOLD, m.SUBSCRIPTION_PLAN_CHANGED]


def scheduled_renewal_amount(sub: Subscription) -> int:
    """What the renewal that applies the scheduled change charges (the new plan's period)."""
    assert sub.scheduled_change is not None
    return sub.scheduled_change.recurring_pre_tax_amount
