"""Use cases of the subscription lifecycle: create, read, update, cancel.

Each use case owns its transaction (:class:`UnitOfWork`) and queues its
events in it. Charges go to payments outside any transaction (a network call
must not hold one open); their outcome is applied in a second transaction
that re-reads the subscription, so a retried request applies it once.
Payment-method updates, dues and on-demand charges are in :mod:`.billing`.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from billing_kit.errors import DomainError, FailedPrecondition, InvalidArgument, NotFound, Reason
from billing_kit.scoping import Mode, PageRequest
from pymongo.errors import DuplicateKeyError

from subscriptions.addons.models import Addon
from subscriptions.products.models import Product, RecurringPrice
from subscriptions.subscriptions import addon_choices
from subscriptions.subscriptions import models as m
from subscriptions.subscriptions.changes import Changes, apply_changes
from subscriptions.subscriptions.models import (
    BillingAddress,
    Subscription,
    SubscriptionStatus,
    TimeInterval,
)
from subscriptions.subscriptions.payments_client import (
    ChargeRequest,
    ChargeResult,
    ChargeStatus,
    ChargeType,
    PaymentsPort,
    PayPageRequest,
    PayPagesPort,
    subscription_lines,
)
from subscriptions.subscriptions.periods import add_intervals, boundary, first_charge_key
from subscriptions.subscriptions.repository import SubscriptionFilter, SubscriptionsRepository
from subscriptions.subscriptions.state_machine import Transition, transition
from subscriptions.subscriptions.test_clock import BusinessClocks
from subscriptions.subscriptions.unit_of_work import Txn, UnitOfWork

MAX_METADATA_KEYS = 50


class ProductReader(Protocol):
    """The in-process products API (``ProductsService.get_product``)."""

    async def get_product(self, business_id: str, mode: Mode, product_id: str) -> Product: ...

    async def list_plan_group(
        self, business_id: str, mode: Mode, plan_group: str
    ) -> list[Product]: ...

    async def get_addons(
        self, business_id: str, mode: Mode, addon_ids: Sequence[str]
    ) -> Mapping[str, Addon]: ...


# Dodo's tax_id is free text; a VAT number is 15 at most, 64 leaves room for any scheme.
MAX_TAX_ID = 64


def _bad(message: str, field_name: str) -> InvalidArgument:
    return InvalidArgument(message, reason=Reason.INVALID_SUBSCRIPTION_REQUEST, field=field_name)


def _not_found() -> NotFound:
    return NotFound("subscription not found", reason=Reason.SUBSCRIPTION_NOT_FOUND)


def check_metadata(metadata: dict[str, str]) -> None:
    """At most 50 keys of 1-40 characters, values up to 500 (as customers' metadata)."""
    if len(metadata) > MAX_METADATA_KEYS:
        raise _bad("metadata has more than 50 keys", "metadata")
    for key, value in metadata.items():
        if not 1 <= len(key) <= 40 or len(value) > 500:
            raise _bad("metadata keys are 1-40 characters, values up to 500", "metadata")


@dataclass(frozen=True)
class NewSubscription:
    """A create request (Dodo's ``POST /subscriptions``, customer already resolved)."""

    business_id: str
    mode: Mode
    customer_id: str
    product_id: str
    quantity: int
    billing: BillingAddress | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    payment_method_id: str | None = None
    trial_period_days: int | None = None
    tax_id: str = ""
    return_url: str = ""
    idempotency_key: str = ""
    customer_present: bool = False
    # Dodo's addons: (addon_id, quantity) pairs, each offered by the product.
    addons: tuple[tuple[str, int], ...] = ()


def recurring_terms(product: Product) -> m.PriceTerms:
    """The price terms a new subscription snapshots from ``product``."""
    price = product.price
    if not isinstance(price, RecurringPrice) or product.archived:
        # The request is well formed; the product's kind or state refuses it.
        raise FailedPrecondition(
            "the product is not an active subscription product",
            reason=Reason.PRODUCT_NOT_SUBSCRIBABLE,
            field="product_id",
        )
    unit = price.price * (10_000 - price.discount_bps) // 10_000
    return m.PriceTerms(
        product_name=product.name,
        unit_price=unit,
        currency=price.currency,
        tax_inclusive=bool(price.tax_inclusive),
        payment_frequency_count=price.payment_frequency_count,
        payment_frequency_interval=TimeInterval(price.payment_frequency_interval),
        subscription_period_count=price.subscription_period_count,
        subscription_period_interval=TimeInterval(price.subscription_period_interval),
        trial_period_days=price.trial_period_days,
    )


def new_subscription(
    request: NewSubscription,
    terms: m.PriceTerms,
    now: datetime,
    subscription_id: str,
    addons: tuple[m.SubscriptionAddon, ...] = (),
) -> Subscription:
    """A pending subscription; period 0 starts now, or after the trial (period -1).

    Each period costs the plan (unit price x quantity) plus every add-on's period."""
    trial = (
        terms.trial_period_days if request.trial_period_days is None else request.trial_period_days
    )
    anchor = now + timedelta(days=trial)
    sub = Subscription(
        subscription_id=subscription_id,
        business_id=request.business_id,
        mode=request.mode,
        customer_id=request.customer_id,
        product_id=request.product_id,
        status=SubscriptionStatus.PENDING,
        recurring_pre_tax_amount=terms.unit_price * request.quantity + m.addons_amount(addons),
        addons=addons,
        currency=terms.currency,
        created_at=now,
        updated_at=now,
        product_name=terms.product_name,
        quantity=request.quantity,
        tax_inclusive=terms.tax_inclusive,
        payment_frequency_count=terms.payment_frequency_count,
        payment_frequency_interval=terms.payment_frequency_interval,
        subscription_period_count=terms.subscription_period_count,
        subscription_period_interval=terms.subscription_period_interval,
        trial_period_days=trial,
        expires_at=add_intervals(
            now, terms.subscription_period_count, terms.subscription_period_interval
        ),
        payment_method_id=request.payment_method_id or None,
        metadata=dict(request.metadata),
        billing=request.billing,
        tax_id=request.tax_id,
        billing_anchor=anchor,
        anchor_period=0,
        period=-1 if trial > 0 else 0,
        previous_billing_date=now,
    )
    return sub.model_copy(update={"next_billing_date": boundary(sub, sub.period + 1)})


def apply_first_payment(
    sub: Subscription, result: ChargeResult, now: datetime
) -> tuple[Subscription, str | None]:
    """The subscription after its first charge, and the event that says so (if any)."""
    if result.status is ChargeStatus.SUCCEEDED:
        status = transition(Transition.FIRST_PAYMENT_SUCCEEDED, sub.status)
        return sub.model_copy(
            update={
                "status": status,
                "pending_payment_id": None,
                "challenge_url": None,
                "updated_at": now,
            }
        ), m.SUBSCRIPTION_ACTIVE
    if result.status is ChargeStatus.FAILED:
        status = transition(Transition.FIRST_PAYMENT_FAILED, sub.status)
        return sub.model_copy(
            update={
                "status": status,
                "next_billing_date": None,
                "pending_payment_id": None,
                "challenge_url": None,
                "updated_at": now,
            }
        ), m.SUBSCRIPTION_FAILED
    status = transition(Transition.FIRST_PAYMENT_REQUIRES_ACTION, sub.status)
    return sub.model_copy(
        update={
            "status": status,
            "pending_payment_id": result.payment_id,
            "challenge_url": result.challenge_url or None,
            "updated_at": now,
        }
    ), None


class SubscriptionsService:
    """Create, read, update and cancel subscriptions; one instance per process."""

    def __init__(
        self,
        repository: SubscriptionsRepository,
        uow: UnitOfWork,
        clocks: BusinessClocks,
        products: ProductReader,
        payments: PaymentsPort,
        pages: PayPagesPort | None = None,
    ) -> None:
        self.repository = repository
        self.uow = uow
        self.clocks = clocks
        self.products = products
        self.payments = payments
        self.pages = pages

    async def get_subscription(
        self, business_id: str, mode: Mode, subscription_id: str, customer_id: str | None = None
    ) -> Subscription:
        """The subscription, or NotFound (also for another business's or customer's id)."""
        if not subscription_id:
            raise InvalidArgument(
                "subscription_id is required", reason=Reason.INVALID_SUBSCRIPTION_ID
            )
        found = await self.repository.get(
            business_id, mode, subscription_id, customer_id=customer_id
        )
        if found is None:
            raise _not_found()
        return found

    async def list_subscriptions(
        self, query: SubscriptionFilter, page: PageRequest
    ) -> list[Subscription]:
        """One page, newest first."""
        return await self.repository.list(query, page)

    async def create_subscription(
        self, request: NewSubscription
    ) -> tuple[Subscription, ChargeResult | None]:
        """Create; with a payment method (and no trial) charge the first period now.

        Success -> active; 3-D Secure needed -> pending with the challenge url
        (finished by the payment event); declined -> failed. The same
        ``idempotency_key`` returns the subscription made the first time.
        """
        if request.quantity < 1:
            raise _bad("quantity must be at least 1", "quantity")
        if request.trial_period_days is not None and not 0 <= request.trial_period_days <= 10_000:
            raise _bad("trial_period_days must be 0..10000", "trial_period_days")
        check_metadata(request.metadata)
        if len(request.tax_id) > MAX_TAX_ID:
            raise _bad(f"tax_id is at most {MAX_TAX_ID} characters", "tax_id")
        if request.idempotency_key:
            earlier = await self.repository.get_by_idempotency_key(
                request.business_id, request.mode, request.idempotency_key
            )
            if earlier is not None:
                return earlier, None
        product = await self.products.get_product(
            request.business_id, request.mode, request.product_id
        )
        terms = recurring_terms(product)
        addons = await addon_choices.choose(self.products, product, terms.currency, request.addons)
        now = await self.clocks.now(request.business_id, request.mode)
        sub = new_subscription(
            request, terms, now, m.SUBSCRIPTION_PREFIX + secrets.token_hex(12), addons
        )
        trial = sub.period < 0
        if trial and sub.payment_method_id:
            # A trial with a method on file starts at once; the first charge is the renewal.
            sub = sub.model_copy(
                update={"status": transition(Transition.FIRST_PAYMENT_SUCCEEDED, sub.status)}
            )

        async def insert(txn: Txn) -> None:
            await self.repository.insert(
                sub, idempotency_key=request.idempotency_key or None, txn=txn
            )
            if sub.status is SubscriptionStatus.ACTIVE:
                await self.uow.emit(m.SUBSCRIPTION_ACTIVE, sub, txn)

        try:
            await self.uow.run(insert)
        except DuplicateKeyError:
            # A concurrent create with the same key won the unique index: answer with its result.
            winner = await self.repository.get_by_idempotency_key(
                request.business_id, request.mode, request.idempotency_key
            )
            if winner is None:
                raise
            return winner, None
        if trial or not sub.payment_method_id:
            return sub, None
        try:
            result = await self.payments.charge(
                ChargeRequest(
                    business_id=sub.business_id,
                    mode=sub.mode,
                    customer_id=sub.customer_id,
                    payment_method_id=sub.payment_method_id,
                    amount=sub.recurring_pre_tax_amount,
                    currency=sub.currency,
                    idempotency_key=first_charge_key(sub.subscription_id),
                    charge_type=ChargeType.NEW,
                    subscription_id=sub.subscription_id,
                    customer_present=request.customer_present,
                    return_url=request.return_url,
                    description=sub.product_name,
                    lines=subscription_lines(sub, sub.recurring_pre_tax_amount),
                    billing=sub.billing,
                    tax_id=sub.tax_id,
                )
            )
        except DomainError as refused:
            # No such method for this customer: nothing was charged; the subscription fails.
            declined = ChargeResult("", ChargeStatus.FAILED, 0, sub.currency, refused.reason.value)
            await self.apply_first_payment_result(sub, declined)
            raise
        return await self.apply_first_payment_result(sub, result), result

    async def create_with_payment_link(self, request: NewSubscription) -> tuple[Subscription, str]:
        """Create a pending subscription whose first period is paid on the hosted page.

        The page's charge carries the subscription's first-charge key, so a
        retried create (same idempotency key) or a second page for it charges
        once; the ``payment.succeeded`` event activates it on the saved card.
        """
        if request.payment_method_id:
            raise _bad("payment_link and payment_method_id cannot go together", "payment_link")
        if not request.return_url:
            raise _bad("return_url is required with payment_link", "return_url")
        if request.trial_period_days:
            raise _bad("payment_link with a trial is not supported", "payment_link")
        if self.pages is None:  # pragma: no cover - wiring always gives one
            raise _bad("payment links are not available", "payment_link")
        product = await self.products.get_product(
            request.business_id, request.mode, request.product_id
        )
        if recurring_terms(product).trial_period_days and request.trial_period_days is None:
            raise _bad("payment_link with a trial is not supported", "payment_link")
        sub, _ = await self.create_subscription(request)
        if sub.status is not SubscriptionStatus.PENDING:
            return sub, ""
        url = await self.pages.pay_page(
            PayPageRequest(
                business_id=sub.business_id,
                mode=sub.mode,
                customer_id=sub.customer_id,
                amount=sub.recurring_pre_tax_amount,
                currency=sub.currency,
                idempotency_key=first_charge_key(sub.subscription_id),
                charge_type=ChargeType.NEW,
                return_url=request.return_url,
                subscription_id=sub.subscription_id,
                description=sub.product_name,
                lines=subscription_lines(sub, sub.recurring_pre_tax_amount),
                billing=sub.billing,
                tax_id=sub.tax_id,
            )
        )
        return sub, url

    async def apply_first_payment_result(
        self, sub: Subscription, result: ChargeResult
    ) -> Subscription:
        """Apply a first-period charge outcome once (a no-op if already applied)."""

        async def apply(txn: Txn) -> Subscription:
            current = await self.repository.get(
                sub.business_id, sub.mode, sub.subscription_id, txn=txn
            )
            if current is None or current.status is not SubscriptionStatus.PENDING:
                return current or sub
            now = await self.clocks.now(sub.business_id, sub.mode)
            updated, event = apply_first_payment(current, result, now)
            await self.repository.save(updated, txn)
            if event is not None:
                await self.uow.emit(
                    event, updated, txn, payment_id=result.payment_id, previous=current
                )
            return updated

        return await self.uow.run(apply)

    async def update_subscription(
        self,
        business_id: str,
        mode: Mode,
        subscription_id: str,
        changes: Changes,
        customer_id: str | None = None,
    ) -> Subscription:
        """PATCH: cancel now / at period end / undo, metadata, billing, next billing date;
        pause / resume (alone; rules in :mod:`.changes`)."""
        if changes.cancellation_comment is not None and len(changes.cancellation_comment) > 1000:
            raise _bad("cancellation_comment is at most 1000 characters", "cancellation_comment")
        if changes.metadata is not None:
            check_metadata(changes.metadata)

        async def work(txn: Txn) -> Subscription:
            sub = await self.repository.get(
                business_id, mode, subscription_id, customer_id=customer_id, txn=txn
            )
            if sub is None:
                raise _not_found()
            # Checked after the lookup: another business's id is a 404 whatever the body.
            # Feedback goes with a cancel: this request's, or one already scheduled. Without
            # one the request is well formed but the subscription's state refuses it (409).
            cancelling = (
                changes.cancel_now
                or changes.cancel_at_next_billing_date is True
                or (sub.cancel_at_next_billing_date and changes.cancel_at_next_billing_date is None)
            )
            if not cancelling and (changes.cancellation_feedback or changes.cancellation_comment):
                raise FailedPrecondition(
                    "cancellation feedback and comment go with a cancel",
                    reason=Reason.SUBSCRIPTION_STATE_CONFLICT,
                    field="cancellation_feedback",
                )
            if changes.pause and await self.repository.renewal_in_flight(
                sub.subscription_id, self.clocks.real.now(), txn
            ):
                # The scheduler would write its outcome over the pause: pause after it.
                raise FailedPrecondition(
                    "a renewal of this subscription is being processed; try again shortly",
                    reason=Reason.SUBSCRIPTION_STATE_CONFLICT,
                    field="status",
                )
            now = await self.clocks.now(business_id, mode)
            updated, event = apply_changes(sub, changes, now)
            if updated != sub:
                updated = updated.model_copy(update={"updated_at": now})
                await self.repository.save(updated, txn)
                await self.uow.emit(event, updated, txn, previous=sub)
            return updated

        return await self.uow.run(work)
