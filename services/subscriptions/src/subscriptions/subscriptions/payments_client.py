"""The subscriptions service's one door to payments: ``ChargePaymentMethod`` over gRPC.

One channel per process (opened with the runtime, closed with it); every call
carries the channel's deadline (the kit's interceptor). Declines are not
errors: they come back as a :class:`ChargeResult` with ``status="failed"``.
Unit tests use an in-process fake with the same :class:`PaymentsPort` shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

import grpc
from billing.payments.v1 import payments_pb2, payments_pb2_grpc
from billing_kit.grpc_client import create_channel
from billing_kit.scoping import Mode, mode_to_proto

from subscriptions.subscriptions.models import BillingAddress, Subscription

CHARGE_DEADLINE_SECONDS = 10.0


class ChargeStatus(StrEnum):
    """The outcomes a charge can have, as this service acts on them."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REQUIRES_CUSTOMER_ACTION = "requires_customer_action"
    PROCESSING = "processing"


class ChargeType(StrEnum):
    """Why the charge is made (payments' ChargeType)."""

    NEW = "new"
    RENEWAL = "renewal"
    ON_DEMAND = "on_demand"
    PLAN_CHANGE = "plan_change"


@dataclass(frozen=True)
class PaymentLine:
    """One line of what a charge pays for; payments stores it and invoices print it."""

    product_id: str
    product_name: str
    quantity: int
    unit_amount: int


def subscription_lines(sub: Subscription, amount: int) -> tuple[PaymentLine, ...]:
    """The lines of a subscription charge of ``amount`` (a period, or the periods owed).

    With add-ons and an ``amount`` of whole periods (``k`` of them): one line of the plan
    and one per add-on (``product_id`` = the add-on's id), each unit priced for ``k``
    periods, so the invoice prints every add-on. Otherwise the quantity is the
    subscription's when ``amount`` divides evenly by it, else one line of the whole
    amount: lines always add up to ``amount``.
    """
    period = sub.recurring_pre_tax_amount
    if sub.addons and period > 0 and amount > 0 and amount % period == 0:
        periods = amount // period
        plan_quantity = max(1, sub.quantity)
        plan_unit, rest = divmod(sub.plan_amount * periods, plan_quantity)
        if rest == 0:
            return (
                PaymentLine(
                    product_id=sub.product_id,
                    product_name=sub.product_name,
                    quantity=plan_quantity,
                    unit_amount=plan_unit,
                ),
                *(
                    PaymentLine(
                        product_id=addon.addon_id,
                        product_name=addon.name,
                        quantity=addon.quantity,
                        unit_amount=addon.unit_price * periods,
                    )
                    for addon in sub.addons
                ),
            )
    quantity = sub.quantity if sub.quantity > 0 and amount % sub.quantity == 0 else 1
    return (
        PaymentLine(
            product_id=sub.product_id,
            product_name=sub.product_name,
            quantity=quantity,
            unit_amount=amount // quantity,
        ),
    )


def _lines_to_proto(lines: tuple[PaymentLine, ...]) -> list[payments_pb2.PaymentLine]:
    return [
        payments_pb2.PaymentLine(
            product_id=line.product_id,
            product_name=line.product_name,
            quantity=line.quantity,
            unit_amount=line.unit_amount,
        )
        for line in lines
    ]


def _billing_to_proto(billing: BillingAddress | None) -> payments_pb2.BillingAddress | None:
    if billing is None:
        return None
    return payments_pb2.BillingAddress(
        country=billing.country,
        city=billing.city or "",
        state=billing.state or "",
        street=billing.street or "",
        zipcode=billing.zipcode or "",
    )


@dataclass(frozen=True)
class ChargeRequest:
    """One charge of a saved method; ``idempotency_key`` makes retries safe."""

    business_id: str
    mode: Mode
    customer_id: str
    payment_method_id: str
    amount: int
    currency: str
    idempotency_key: str
    charge_type: ChargeType
    subscription_id: str
    customer_present: bool
    return_url: str = ""
    description: str = ""
    # What is paid for and who the buyer is, as the invoice prints them.
    lines: tuple[PaymentLine, ...] = ()
    billing: BillingAddress | None = None
    tax_id: str = ""


@dataclass(frozen=True)
class ChargeResult:
    """What payments answered (no card data)."""

    payment_id: str
    status: ChargeStatus
    amount: int
    currency: str
    error_code: str = ""
    error_message: str = ""
    challenge_url: str = ""


class PaymentsPort(Protocol):
    """What the use cases need from payments."""

    async def charge(self, request: ChargeRequest) -> ChargeResult:
        """Charge (or return the earlier payment of the same idempotency key)."""
        ...


_STATUS = {
    payments_pb2.PAYMENT_STATUS_SUCCEEDED: ChargeStatus.SUCCEEDED,
    payments_pb2.PAYMENT_STATUS_FAILED: ChargeStatus.FAILED,
    payments_pb2.PAYMENT_STATUS_CANCELLED: ChargeStatus.FAILED,
    payments_pb2.PAYMENT_STATUS_REQUIRES_CUSTOMER_ACTION: ChargeStatus.REQUIRES_CUSTOMER_ACTION,
    payments_pb2.PAYMENT_STATUS_PROCESSING: ChargeStatus.PROCESSING,
}
_CHARGE_TYPE = {
    ChargeType.NEW: payments_pb2.CHARGE_TYPE_NEW,
    ChargeType.RENEWAL: payments_pb2.CHARGE_TYPE_RENEWAL,
    ChargeType.ON_DEMAND: payments_pb2.CHARGE_TYPE_ON_DEMAND,
    ChargeType.PLAN_CHANGE: payments_pb2.CHARGE_TYPE_PLAN_CHANGE,
}


def result_from_payment(payment: payments_pb2.Payment) -> ChargeResult:
    """A payments ``Payment`` as the result this service reads."""
    return ChargeResult(
        payment_id=payment.payment_id,
        status=_STATUS.get(payment.status, ChargeStatus.PROCESSING),
        amount=payment.total_amount,
        currency=payment.currency,
        error_code=payment.error_code,
        error_message=payment.error_message,
        challenge_url=payment.challenge_url,
    )


class PaymentsClient:
    """gRPC client of billing.payments.v1.PaymentsService (one per process)."""

    def __init__(self, target: str, *, timeout: float = CHARGE_DEADLINE_SECONDS) -> None:
        self._target = target
        self._timeout = timeout
        self._channel: grpc.aio.Channel | None = None
        self._stub: payments_pb2_grpc.PaymentsServiceStub | None = None

    async def start(self) -> None:
        """Open the channel (lazy: nothing is dialled until the first call)."""
        self._channel = create_channel(self._target, name="payments", timeout=self._timeout)
        self._stub = payments_pb2_grpc.PaymentsServiceStub(self._channel)

    async def stop(self) -> None:
        """Close the channel."""
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
            self._stub = None

    async def charge(self, request: ChargeRequest) -> ChargeResult:
        """Charge a saved method; a decline is a FAILED result, a missing method a NotFound."""
        if self._stub is None:
            await self.start()
        assert self._stub is not None
        payment = await self._stub.ChargePaymentMethod(
            payments_pb2.ChargeRequest(
                business_id=request.business_id,
                mode=mode_to_proto(request.mode),
                customer_id=request.customer_id,
                payment_method_id=request.payment_method_id,
                amount=request.amount,
                currency=request.currency,
                idempotency_key=request.idempotency_key,
                charge_type=_CHARGE_TYPE[request.charge_type],
                subscription_id=request.subscription_id,
                customer_present=request.customer_present,
                return_url=request.return_url,
                description=request.description,
                lines=_lines_to_proto(request.lines),
                billing=_billing_to_proto(request.billing),
                tax_id=request.tax_id,
            )
        )
        return result_from_payment(payment)

    async def pay_page(self, request: PayPageRequest) -> str:
        """A hosted PAY page (payments' CreatePaymentSession); its URL."""
        if self._stub is None:
            await self.start()
        assert self._stub is not None
        session = await self._stub.CreatePaymentSession(
            payments_pb2.CreatePaymentSessionRequest(
                business_id=request.business_id,
                mode=mode_to_proto(request.mode),
                customer_id=request.customer_id,
                purpose=payments_pb2.PAYMENT_SESSION_PURPOSE_PAY,
                return_url=request.return_url,
                amount=request.amount,
                currency=request.currency,
                idempotency_key=request.idempotency_key,
                charge_type=_CHARGE_TYPE[request.charge_type],
                subscription_id=request.subscription_id,
                description=request.description,
                metadata=request.metadata,
                lines=_lines_to_proto(request.lines),
                billing=_billing_to_proto(request.billing),
                tax_id=request.tax_id,
            )
        )
        return str(session.url)

    async def save_page(self, request: SavePageRequest) -> str:
        """A hosted SAVE_METHOD page naming the subscription; its URL."""
        if self._stub is None:
            await self.start()
        assert self._stub is not None
        session = await self._stub.CreatePaymentSession(
            payments_pb2.CreatePaymentSessionRequest(
                business_id=request.business_id,
                mode=mode_to_proto(request.mode),
                customer_id=request.customer_id,
                purpose=payments_pb2.PAYMENT_SESSION_PURPOSE_SAVE_METHOD,
                return_url=request.return_url,
                subscription_id=request.subscription_id,
            )
        )
        return str(session.url)


@dataclass(frozen=True)
class SavePageRequest:
    """A hosted page that only saves a card for a subscription (payment_method.saved follows)."""

    business_id: str
    mode: Mode
    customer_id: str
    subscription_id: str
    return_url: str


@dataclass(frozen=True)
class PayPageRequest:
    """A hosted page that saves a card and charges it once (its key makes it once)."""

    business_id: str
    mode: Mode
    customer_id: str
    amount: int
    currency: str
    idempotency_key: str
    charge_type: ChargeType
    return_url: str
    subscription_id: str = ""
    description: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    lines: tuple[PaymentLine, ...] = ()
    billing: BillingAddress | None = None
    tax_id: str = ""


class PayPagesPort(Protocol):
    """The hosted pay page of payments (the customer types the card there)."""

    async def pay_page(self, request: PayPageRequest) -> str:
        """Open a PAY session; the URL to send the customer to."""
        ...

    async def save_page(self, request: SavePageRequest) -> str:
        """Open a SAVE_METHOD session for a subscription; the URL."""
        ...
