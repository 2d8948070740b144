"""Use cases of checkout sessions: price a cart, open its hosted page, finish on payment.

Subscriptions owns checkout sessions because it owns what a cart is made of
(products, their prices) and what a paid cart becomes (subscriptions);
payments only takes the money on its hosted page. The cart is paid as one
payment (key ``checkout:<session>``); when its ``payment.succeeded`` event
arrives, each subscription product becomes an active subscription on the
card saved on the page, created with a per-line key in the consumer's
transaction, so a redelivered event or a double submit starts nothing twice.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field

from billing_kit.errors import FailedPrecondition, InvalidArgument, NotFound, Reason
from billing_kit.events import CloudEvent
from billing_kit.field_rules import is_http_url
from billing_kit.scoping import Mode
from pydantic import ValidationError

from subscriptions.checkouts.models import (
    CHECKOUT_PREFIX,
    MAX_CART_ITEMS,
    MAX_QUANTITY,
    CartLine,
    Checkout,
    payment_key,
    subscription_key,
)
from subscriptions.checkouts.repository import CheckoutsRepository
from subscriptions.products.models import OneTimePrice, Product, RecurringPrice
from subscriptions.subscriptions import models as m
from subscriptions.subscriptions.billing import PAYMENT_EVENTS, PaymentOutcomeData
from subscriptions.subscriptions.models import BillingAddress, SubscriptionStatus
from subscriptions.subscriptions.payments_client import (
    ChargeType,
    PaymentLine,
    PayPageRequest,
    PayPagesPort,
)
from subscriptions.subscriptions.repository import SubscriptionsRepository
from subscriptions.subscriptions.service import (
    MAX_TAX_ID,
    NewSubscription,
    ProductReader,
    check_metadata,
    new_subscription,
    recurring_terms,
)
from subscriptions.subscriptions.state_machine import Transition, transition
from subscriptions.subscriptions.test_clock import BusinessClocks
from subscriptions.subscriptions.unit_of_work import Txn, UnitOfWork

log = logging.getLogger(__name__)
CHECKOUT_KEY = "checkout_session_id"
# The cart's payment outcome (queue "checkout-payments"; data read as PaymentOutcomeData).
CHECKOUT_PAYMENT_EVENTS = PAYMENT_EVENTS


def _bad(message: str, field_name: str) -> InvalidArgument:
    return InvalidArgument(message, reason=Reason.INVALID_CHECKOUT_REQUEST, field=field_name)


def _unavailable(message: str, field_name: str) -> FailedPrecondition:
    # The request is well formed; the products' state (archived, prices) refuses it: 409.
    return FailedPrecondition(message, reason=Reason.CHECKOUT_CART_UNAVAILABLE, field=field_name)


def _not_found() -> NotFound:
    return NotFound("checkout session not found", reason=Reason.CHECKOUT_NOT_FOUND)


@dataclass(frozen=True)
class NewCheckout:
    """A create request (Dodo's ``POST /checkouts``, customer already resolved)."""

    business_id: str
    mode: Mode
    customer_id: str
    cart: list[tuple[str, int]]
    return_url: str
    billing: BillingAddress | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    customer_email: str = ""
    tax_id: str = ""
    customer_name: str = ""


def price_line(product: Product, quantity: int, where: str) -> CartLine:
    """One cart line priced from its product (archived products are refused)."""
    if product.archived:
        raise _unavailable("the product is archived", f"{where}.product_id")
    price = product.price
    if isinstance(price, RecurringPrice):
        terms = recurring_terms(product).model_copy(update={"trial_period_days": 0})
        return CartLine(
            product_id=product.product_id,
            product_name=product.name,
            quantity=quantity,
            amount=terms.unit_price * quantity,
            currency=price.currency,
            terms=terms,
        )
    assert isinstance(price, OneTimePrice)
    unit = price.price * (10_000 - price.discount_bps) // 10_000
    return CartLine(
        product_id=product.product_id,
        product_name=product.name,
        quantity=quantity,
        amount=unit * quantity,
        currency=price.currency,
    )


class CheckoutsService:
    """Checkout sessions of every business; one instance per process."""

    def __init__(
        self,
        repository: CheckoutsRepository,
        subscriptions: SubscriptionsRepository,
        uow: UnitOfWork,
        clocks: BusinessClocks,
        products: ProductReader,
        pages: PayPagesPort,
    ) -> None:
        self.repository = repository
        self.subscriptions = subscriptions
        self.uow = uow
        self.clocks = clocks
        self.products = products
        self.pages = pages

    async def price_cart(self, request: NewCheckout) -> tuple[list[CartLine], int, str]:
        """The cart's priced lines, total and currency; writes nothing.

        A bad line names itself (``product_cart[i].product_id`` / ``.quantity``).
        """
        if not request.cart:
            raise _bad("product_cart needs at least one product", "product_cart")
        if len(request.cart) > MAX_CART_ITEMS:
            raise _bad(f"product_cart holds at most {MAX_CART_ITEMS} products", "product_cart")
        if not is_http_url(request.return_url):
            raise _bad("return_url is required: an http(s) URL", "return_url")
        check_metadata(request.metadata)
        if len(request.tax_id) > MAX_TAX_ID:
            raise _bad(f"tax_id is at most {MAX_TAX_ID} characters", "tax_id")
        lines: list[CartLine] = []
        for index, (product_id, quantity) in enumerate(request.cart):
            where = f"product_cart[{index}]"
            if not 1 <= quantity <= MAX_QUANTITY:
                raise _bad(f"quantity must be 1..{MAX_QUANTITY}", f"{where}.quantity")
            if not 0 < len(product_id) <= 128:
                raise _bad("product_id is required", f"{where}.product_id")
            try:
                product = await self.products.get_product(
                    request.business_id, request.mode, product_id
                )
            except NotFound:
                # Unknown, or another business's or mode's: the same 404, naming the line.
                raise NotFound(
                    "no such product", reason=Reason.PRODUCT_NOT_FOUND, field=f"{where}.product_id"
                ) from None
            lines.append(price_line(product, quantity, where))
        currencies = {line.currency for line in lines}
        if len(currencies) != 1:
            raise _unavailable("every product of the cart must have one currency", "product_cart")
        total = sum(line.amount for line in lines)
        if total <= 0:
            raise _unavailable("the cart total must be positive", "product_cart")
        [currency] = currencies
        return lines, total, currency

    async def create_checkout(self, request: NewCheckout) -> Checkout:
        """Price the cart, open the hosted page for its total, store the session.

        Every check runs before anything is written.
        """
        lines, total, currency = await self.price_cart(request)
        session_id = CHECKOUT_PREFIX + secrets.token_hex(12)
        url = await self.pages.pay_page(
            PayPageRequest(
                business_id=request.business_id,
                mode=request.mode,
                customer_id=request.customer_id,
                amount=total,
                currency=currency,
                idempotency_key=payment_key(session_id),
                charge_type=ChargeType.NEW,
                return_url=request.return_url,
                description=f"Checkout {session_id}",
                metadata={CHECKOUT_KEY: session_id},
                lines=tuple(
                    PaymentLine(
                        product_id=line.product_id,
                        product_name=line.product_name,
                        quantity=line.quantity,
                        unit_amount=line.amount // line.quantity,
                    )
                    for line in lines
                ),
                billing=request.billing,
                tax_id=request.tax_id,
            )
        )
        checkout = Checkout(
            session_id=session_id,
            business_id=request.business_id,
            mode=request.mode,
            customer_id=request.customer_id,
            customer_email=request.customer_email,
            customer_name=request.customer_name,
            lines=lines,
            total_amount=total,
            currency=currency,
            billing=request.billing,
            tax_id=request.tax_id,
            return_url=request.return_url,
            metadata=request.metadata,
            checkout_url=url,
            created_at=await self.clocks.now(request.business_id, request.mode),
        )
        await self.repository.insert(checkout)
        return checkout

    async def get_checkout(self, business_id: str, mode: Mode, session_id: str) -> Checkout:
        """The business's session (another business's id is NOT_FOUND)."""
        found = await self.repository.get(business_id, mode, session_id) if session_id else None
        if found is None:
            raise _not_found()
        return found

    async def on_payment_event(self, event: CloudEvent, txn: Txn) -> None:
        """Finish the session its payment belongs to (in the consumer's transaction)."""
        try:
            data = PaymentOutcomeData.model_validate(event.data)
        except ValidationError:
            log.warning("payment event without a payment id ignored", extra={"event_id": event.id})
            return
        session_id = data.metadata.get(CHECKOUT_KEY, "")
        if not session_id or data.idempotency_key != payment_key(session_id):
            return
        checkout = await self.repository.get(data.business_id, data.mode, session_id, txn)
        if checkout is None or checkout.payment_status == "succeeded":
            return
        if event.type != "payment.succeeded":
            await self.repository.record_payment(
                session_id, {"payment_id": data.payment_id, "payment_status": "failed"}, txn
            )
            return
        now = await self.clocks.now(checkout.business_id, checkout.mode)
        started: list[str] = []
        for index, line in enumerate(checkout.lines):
            if line.terms is None:
                continue
            request = NewSubscription(
                business_id=checkout.business_id,
                mode=checkout.mode,
                customer_id=checkout.customer_id,
                product_id=line.product_id,
                quantity=line.quantity,
                billing=checkout.billing,
                tax_id=checkout.tax_id,
                metadata=checkout.metadata,
                payment_method_id=data.payment_method_id,
                trial_period_days=0,
            )
            sub = new_subscription(
                request, line.terms, now, m.SUBSCRIPTION_PREFIX + secrets.token_hex(12)
            )
            sub = sub.model_copy(
                update={"status": transition(Transition.FIRST_PAYMENT_SUCCEEDED, sub.status)}
            )
            assert sub.status is SubscriptionStatus.ACTIVE
            await self.subscriptions.insert(
                sub, idempotency_key=subscription_key(session_id, index), txn=txn
            )
            await self.uow.emit(m.SUBSCRIPTION_ACTIVE, sub, txn, payment_id=data.payment_id)
            started.append(sub.subscription_id)
        await self.repository.record_payment(
            session_id,
            {
                "payment_id": data.payment_id,
                "payment_status": "succeeded",
                "subscription_ids": started,
            },
            txn,
        )
