"""The renewal scheduler: a background task of the service runtime.

A pass claims due subscriptions one at a time with an atomic lease
(``find_one_and_update`` on ``next_billing_date <= the business's now`` and an
expired lease), so two replicas never work on the same one. For each claim:

* ``cancel_at_next_billing_date`` -> cancelled at the period end;
* the period end reached ``expires_at`` -> expired;
* otherwise the next period is charged unattended (``customer_present=false``)
  with the key ``(subscription, period start)``: success -> renewed (period
  advanced, ``subscription.renewed``); failure -> on_hold with ``amount_due``
  (``subscription.on_hold``).

The outcome is written only while this scheduler still holds the lease, in
one transaction with its event, and the lease is released with it. A process
that dies after charging leaves the lease to expire; the next claim charges
with the same key, payments returns the same payment, and it is applied once.
A subscription several periods behind (downtime, a clock advance) is claimed
again right after each renewal: one charge per missed period, oldest first.
The pass runs every ``poll_seconds`` and at once when a test clock moves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from datetime import timedelta

import grpc
from billing_kit.clock import Clock, SystemClock
from billing_kit.errors import DomainError
from billing_kit.scoping import Mode

from subscriptions.subscriptions import models as m
from subscriptions.subscriptions.models import Subscription
from subscriptions.subscriptions.payments_client import (
    ChargeRequest,
    ChargeResult,
    ChargeStatus,
    ChargeType,
    PaymentsPort,
    subscription_lines,
)
from subscriptions.subscriptions.periods import after_renewal, renewal_key
from subscriptions.subscriptions.plan_changes import scheduled_renewal, switched
from subscriptions.subscriptions.reminders import RenewalReminders
from subscriptions.subscriptions.repository import SubscriptionsRepository
from subscriptions.subscriptions.state_machine import Transition, transition
from subscriptions.subscriptions.test_clock import BusinessClocks
from subscriptions.subscriptions.unit_of_work import Txn, UnitOfWork

log = logging.getLogger(__name__)

# Due subscriptions read per query; each is then claimed on its own, by id.
BATCH = 100


def renewal_outcome(
    sub: Subscription, result: ChargeResult | None
) -> tuple[Subscription, str] | None:
    """The subscription after a due date is processed, and its event; None = try later.

    ``result`` is None when no charge was made (scheduled cancel or expiry).
    """
    period_end = sub.next_billing_date
    if sub.cancel_at_next_billing_date:
        status = transition(Transition.CANCEL_AT_PERIOD_END, sub.status)
        return sub.model_copy(
            update={
                "status": status,
                "cancelled_at": period_end,
                "next_billing_date": None,
                "scheduled_change": None,
            }
        ), m.SUBSCRIPTION_CANCELLED
    if sub.expires_at is not None and period_end is not None and period_end >= sub.expires_at:
        status = transition(Transition.EXPIRE, sub.status)
        return sub.model_copy(
            update={"status": status, "next_billing_date": None, "scheduled_change": None}
        ), m.SUBSCRIPTION_EXPIRED
    if result is None or result.status is ChargeStatus.PROCESSING:
        return None
    if result.status is ChargeStatus.SUCCEEDED:
        transition(Transition.RENEWAL_SUCCEEDED, sub.status)
        return sub.model_copy(update=after_renewal(sub)), m.SUBSCRIPTION_RENEWED
    status = transition(Transition.RENEWAL_FAILED, sub.status)
    return sub.model_copy(
        update={"status": status, "amount_due": sub.recurring_pre_tax_amount, "dues_attempts": 0}
    ), m.SUBSCRIPTION_ON_HOLD


def needs_charge(sub: Subscription) -> bool:
    """False when the due date ends the subscription instead of renewing it."""
    if sub.cancel_at_next_billing_date:
        return False
    end = sub.next_billing_date
    return not (sub.expires_at is not None and end is not None and end >= sub.expires_at)


class RenewalScheduler:
    """Claims due subscriptions and renews, holds, cancels or expires them."""

    def __init__(
        self,
        repository: SubscriptionsRepository,
        uow: UnitOfWork,
        clocks: BusinessClocks,
        payments: PaymentsPort,
        *,
        poll_seconds: float = 30.0,
        lease_seconds: float = 120.0,
        clock: Clock | None = None,
        reminders: RenewalReminders | None = None,
    ) -> None:
        self.repository = repository
        self.uow = uow
        self.clocks = clocks
        self.payments = payments
        self.poll_seconds = poll_seconds
        self.lease = timedelta(seconds=lease_seconds)
        self.real: Clock = clock or SystemClock()
        self.owner = uuid.uuid4().hex
        self.reminders = reminders
        self._wake = asyncio.Event()
        self._backfilled = False
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """Run a pass now (a test clock moved)."""
        self._wake.set()

    async def start(self) -> None:
        """Start the background loop."""
        self._task = asyncio.create_task(self._run(), name="renewal-scheduler")

    async def stop(self) -> None:
        """Stop the loop; a half-processed claim is left to its lease."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("renewal pass failed; retrying at the next poll")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_seconds)
            self._wake.clear()

    async def run_once(self) -> int:
        """Process everything due now; returns how many due dates were handled."""
        if not self._backfilled:
            # Documents written before every insert carried a lease would never match.
            await self.repository.backfill_leases()
            self._backfilled = True
        handled = 0
        clocked = await self.clocks.clocked_businesses()
        for business_id, offset in clocked:
            handled += await self._drain((business_id, "test"), offset)
        handled += await self._drain(None, 0)
        if self.reminders is not None:
            # After the renewals: a clock that jumped past a renewal renews, not reminds.
            await self.remind(clocked)
        return handled

    async def remind(self, clocked: list[tuple[str, int]] | None = None) -> int:
        """Emit the renewal reminders due now (each business on its own clock)."""
        if self.reminders is None:
            return 0
        if clocked is None:
            clocked = await self.clocks.clocked_businesses()
        real_now = self.real.now()
        sent = 0
        for business_id, offset in clocked:
            sent += await self.reminders.run(
                real_now + timedelta(seconds=offset), business=(business_id, "test")
            )
        return sent + await self.reminders.run(
            real_now, business=None, skip=[business_id for business_id, _ in clocked]
        )

    async def _drain(self, business: tuple[str, Mode] | None, offset: int) -> int:
        handled = 0
        while True:
            real_now = self.real.now()
            due_by = real_now + timedelta(seconds=offset)
            candidates = list(
                await self.repository.due_ids(
                    due_by=due_by, real_now=real_now, business=business, limit=BATCH
                )
            )
            if not candidates:
                return handled
            # Replicas reading the same batch start at different places, so they
            # mostly claim different subscriptions instead of racing for each one.
            random.shuffle(candidates)
            for subscription_id in candidates:
                real_now = self.real.now()
                sub = await self.repository.claim(
                    subscription_id,
                    due_by=due_by,
                    real_now=real_now,
                    lease_until=real_now + self.lease,
                    owner=self.owner,
                )
                if sub is None:
                    continue  # another replica claimed it (or it changed) meanwhile
                if await self.process(sub):
                    handled += 1
                else:
                    # Payments could not answer: leave it to the lease and stop this pass.
                    return handled

    async def process(self, sub: Subscription) -> bool:
        """Handle one claimed subscription; False when it must wait for its lease."""
        result: ChargeResult | None = None
        if needs_charge(sub):
            try:
                result = await self.payments.charge(self._renewal_charge(sub))
            except DomainError as exc:
                # No usable method (deleted, another customer's): the renewal fails.
                result = ChargeResult(
                    "", ChargeStatus.FAILED, 0, sub.currency, exc.reason.value, exc.message
                )
            except grpc.aio.AioRpcError as exc:
                log.warning("payments unavailable for a renewal: %s", exc.code().name)
                return False
        events: list[str]
        if needs_charge(sub) and sub.scheduled_change is not None:
            # The renewal at the new plan's price applies the scheduled change.
            scheduled = scheduled_renewal(sub, result)
            if scheduled is None:
                return False
            updated, events = scheduled
        else:
            outcome = renewal_outcome(sub, result)
            if outcome is None:
                return False
            updated, event = outcome
            events = [event]
        payment_id = result.payment_id if result is not None else None

        async def apply(txn: Txn) -> None:
            if not await self.repository.holds_lease(sub.subscription_id, self.owner, txn):
                return  # the lease expired and another replica took over
            now = await self.clocks.now(sub.business_id, sub.mode)
            final = updated.model_copy(update={"updated_at": now})
            await self.repository.save(final, txn)
            await self.repository.release(sub.subscription_id, self.owner, txn)
            for event in events:
                await self.uow.emit(event, final, txn, payment_id=payment_id or None, previous=sub)

        await self.uow.run(apply)
        return True

    def _renewal_charge(self, sub: Subscription) -> ChargeRequest:
        change = sub.scheduled_change
        if change is not None:
            # The new plan's first period: its price, its line, a key of its own.
            amount = change.recurring_pre_tax_amount
            on_new = switched(sub, change)  # its lines: the new plan and its add-ons
            return ChargeRequest(
                business_id=sub.business_id,
                mode=sub.mode,
                customer_id=sub.customer_id,
                payment_method_id=sub.payment_method_id or "",
                amount=amount,
                currency=sub.currency,
                idempotency_key=f"{renewal_key(sub)}:plan:{change.id}",
                charge_type=ChargeType.RENEWAL,
                subscription_id=sub.subscription_id,
                customer_present=False,
                description=change.product_name,
                lines=subscription_lines(on_new, amount),
                billing=sub.billing,
                tax_id=sub.tax_id,
            )
        return ChargeRequest(
            business_id=sub.business_id,
            mode=sub.mode,
            customer_id=sub.customer_id,
            payment_method_id=sub.payment_method_id or "",
            amount=sub.recurring_pre_tax_amount,
            currency=sub.currency,
            idempotency_key=renewal_key(sub),
            charge_type=ChargeType.RENEWAL,
            subscription_id=sub.subscription_id,
            customer_present=False,
            description=sub.product_name,
            lines=subscription_lines(sub, sub.recurring_pre_tax_amount),
            billing=sub.billing,
            tax_id=sub.tax_id,
        )
