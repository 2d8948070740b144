"""Event handlers that issue license keys on a first purchase.

Two queues, each handled in the consumer's transaction (the kit records the
event id in it, so a redelivered event changes nothing twice):

* ``license-payments`` (``payment.succeeded``): a checkout's one-time lines. The
  cart is read from its checkout session (``metadata.checkout_session_id``);
  renewals and on-demand charges (charge_type other than ``new``) buy no keys.
* ``license-subscriptions`` (``subscription.active``, ``subscription.renewed``):
  the first of them that a successful payment is behind (``payment_id`` set)
  issues one key per unit, keyed by the subscription, so a later activation
  (dues paid after a hold) or renewal finds every unit issued and adds none. A
  trial that starts active without a payment gets its keys with the first paid
  renewal, never before.
"""

from __future__ import annotations

import logging

from billing_kit.errors import NotFound
from billing_kit.events import CloudEvent
from billing_kit.scoping import Mode
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from subscriptions.checkouts.repository import CheckoutsRepository
from subscriptions.checkouts.service import CHECKOUT_KEY
from subscriptions.licenses.service import LicensesService, Purchase, Txn
from subscriptions.products.models import Product
from subscriptions.subscriptions.models import (
    SUBSCRIPTION_ACTIVE,
    SUBSCRIPTION_RENEWED,
    SubscriptionStatus,
)
from subscriptions.subscriptions.repository import SubscriptionsRepository

log = logging.getLogger(__name__)
LICENSE_PAYMENT_EVENTS = ("payment.succeeded",)
LICENSE_SUBSCRIPTION_EVENTS = (SUBSCRIPTION_ACTIVE, SUBSCRIPTION_RENEWED)


class PaidData(BaseModel):
    """What key issuing reads of a ``payment.succeeded`` event."""

    model_config = ConfigDict(extra="ignore")

    payment_id: str = Field(min_length=1, description="the payment")
    business_id: str = Field(min_length=1, description="the merchant")
    mode: Mode = Field(description="test or live")
    charge_type: str = Field(default="new", description="new, renewal or on_demand")
    metadata: dict[str, str] = Field(default_factory=dict, description="the caller's key-values")


class ActivatedData(BaseModel):
    """What key issuing reads of a ``subscription.active``/``.renewed`` event."""

    model_config = ConfigDict(extra="ignore")

    subscription_id: str = Field(min_length=1)
    business_id: str = Field(min_length=1)
    mode: Mode
    payment_id: str | None = None


class LicenseIssuing:
    """Turns first purchases into keys."""

    def __init__(
        self,
        licenses: LicensesService,
        checkouts: CheckoutsRepository,
        subscriptions: SubscriptionsRepository,
    ) -> None:
        self.licenses = licenses
        self.checkouts = checkouts
        self.subscriptions = subscriptions

    async def on_payment_succeeded(self, event: CloudEvent, txn: Txn) -> None:
        """Issue the keys of a paid checkout's one-time products."""
        try:
            data = PaidData.model_validate(event.data)
        except ValidationError:
            log.warning("payment event without its ids ignored", extra={"event_id": event.id})
            return
        session_id = data.metadata.get(CHECKOUT_KEY, "")
        if data.charge_type != "new" or not session_id:
            return
        checkout = await self.checkouts.get(data.business_id, data.mode, session_id, txn)
        if checkout is None:
            return
        for line in checkout.lines:
            if line.terms is not None:
                continue  # a subscription line: issued on subscription.active
            product = await self._product(data.business_id, data.mode, line.product_id)
            if product is None:
                continue
            await self.licenses.issue(
                Purchase(
                    business_id=checkout.business_id,
                    mode=checkout.mode,
                    customer_id=checkout.customer_id,
                    product=product,
                    quantity=line.quantity,
                    purchase_id=data.payment_id,
                    payment_id=data.payment_id,
                ),
                txn,
            )

    async def on_subscription_active(self, event: CloudEvent, txn: Txn) -> None:
        """Issue a subscription's keys the first time a successful payment activates or
        renews it (a trial's activation without a payment issues nothing yet)."""
        try:
            data = ActivatedData.model_validate(event.data)
        except ValidationError:
            log.warning("subscription event without its ids ignored", extra={"event_id": event.id})
            return
        if not data.payment_id:
            return  # no payment behind this change (a trial starting, a resume)
        sub = await self.subscriptions.get(
            data.business_id, data.mode, data.subscription_id, txn=txn
        )
        if sub is None or sub.status is not SubscriptionStatus.ACTIVE:
            return
        product = await self._product(sub.business_id, sub.mode, sub.product_id)
        if product is None:
            return
        await self.licenses.issue(
            Purchase(
                business_id=sub.business_id,
                mode=sub.mode,
                customer_id=sub.customer_id,
                product=product,
                quantity=sub.quantity,
                purchase_id=sub.subscription_id,
                payment_id=data.payment_id or "",
                subscription_id=sub.subscription_id,
            ),
            txn,
        )

    async def _product(self, business_id: str, mode: Mode, product_id: str) -> Product | None:
        try:
            return await self.licenses.products.get_product(business_id, mode, product_id)
        except NotFound:
            return None
