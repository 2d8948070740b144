"""gRPC adapter: proto <-> models. Domain errors become statuses in the kit's interceptor."""

from __future__ import annotations

from datetime import UTC
from typing import Any, TypeAlias

import grpc
from billing.payments.v1 import payments_pb2, payments_pb2_grpc
from billing_kit.errors import InvalidArgument, Reason
from billing_kit.scoping import Mode, list_business, make_page, make_scope, mode_from_proto

from payments.charges.models import ChargeType
from payments.charges.repository import PaymentFilter
from payments.charges.service import ChargeInput, ChargesService
from payments.convert import (
    CHARGE_TYPE_FROM_PROTO,
    PURPOSE_FROM_PROTO,
    STATUS_FROM_PROTO,
    billing_from_proto,
    lines_from_proto,
    payment_method_to_proto,
    payment_to_proto,
    session_to_proto,
)
from payments.hosted.models import Branding
from payments.hosted.service import HostedPageService, NewSession
from payments.methods.service import PaymentMethodsService

Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]


def _business(business_id: str, mode: int) -> tuple[str, Mode]:
    resolved = mode_from_proto(mode)
    if not 0 < len(business_id) <= 128:
        raise InvalidArgument(
            "business_id is required", reason=Reason.INVALID_SCOPE, field="business_id"
        )
    return business_id, resolved


class PaymentsServicer(payments_pb2_grpc.PaymentsServiceServicer):
    """Implements billing.payments.v1.PaymentsService."""

    def __init__(
        self, methods: PaymentMethodsService, charges: ChargesService, hosted: HostedPageService
    ) -> None:
        self._methods = methods
        self._charges = charges
        self._hosted = hosted

    async def ListPaymentMethods(
        self, request: payments_pb2.ListPaymentMethodsRequest, context: Context
    ) -> payments_pb2.ListPaymentMethodsResponse:
        """A page of the customer's (or customers') saved methods, newest first."""
        business_id = list_business(request.business_id, request.customer_ids)
        mode = mode_from_proto(request.mode)
        customer_ids = list(request.customer_ids) or [request.customer_id]
        if business_id:
            for customer_id in customer_ids:
                make_scope(business_id, mode, customer_id)
        page = make_page(request.page_size, request.page_number)
        found = await self._methods.list_payment_methods(business_id, mode, customer_ids, page)
        return payments_pb2.ListPaymentMethodsResponse(
            payment_methods=[payment_method_to_proto(m) for m in found]
        )

    async def GetPaymentMethod(
        self, request: payments_pb2.GetPaymentMethodRequest, context: Context
    ) -> payments_pb2.PaymentMethod:
        """One of the customer's methods."""
        scope = make_scope(request.business_id, mode_from_proto(request.mode), request.customer_id)
        method = await self._methods.get_payment_method(
            scope, _required(request.payment_method_id, "payment_method_id")
        )
        return payment_method_to_proto(method)

    async def DeletePaymentMethod(
        self, request: payments_pb2.DeletePaymentMethodRequest, context: Context
    ) -> payments_pb2.DeletePaymentMethodResponse:
        """Forget one of the customer's methods."""
        scope = make_scope(request.business_id, mode_from_proto(request.mode), request.customer_id)
        await self._methods.delete_payment_method(
            scope, _required(request.payment_method_id, "payment_method_id")
        )
        return payments_pb2.DeletePaymentMethodResponse()

    async def SetDefaultPaymentMethod(
        self, request: payments_pb2.SetDefaultPaymentMethodRequest, context: Context
    ) -> payments_pb2.PaymentMethod:
        """Make one of the customer's methods the default."""
        scope = make_scope(request.business_id, mode_from_proto(request.mode), request.customer_id)
        method = await self._methods.set_default(
            scope, _required(request.payment_method_id, "payment_method_id")
        )
        return payment_method_to_proto(method)

    async def ChargePaymentMethod(
        self, request: payments_pb2.ChargeRequest, context: Context
    ) -> payments_pb2.Payment:
        """Charge a saved method once per idempotency key; a decline is a FAILED payment."""
        scope = make_scope(request.business_id, mode_from_proto(request.mode), request.customer_id)
        charge_type = CHARGE_TYPE_FROM_PROTO.get(request.charge_type)
        if charge_type is None:
            raise InvalidArgument(
                "charge_type is required: NEW, RENEWAL, ON_DEMAND or PLAN_CHANGE",
                field="charge_type",
            )
        payment = await self._charges.charge(
            ChargeInput(
                scope=scope,
                payment_method_id=request.payment_method_id,
                amount=request.amount,
                currency=request.currency,
                idempotency_key=request.idempotency_key,
                charge_type=charge_type,
                customer_present=request.customer_present,
                subscription_id=request.subscription_id,
                return_url=request.return_url,
                description=request.description,
                metadata=dict(request.metadata),
                lines=lines_from_proto(request.lines),
                billing=billing_from_proto(request),
                tax_id=request.tax_id,
            )
        )
        return payment_to_proto(payment)

    async def GetPayment(
        self, request: payments_pb2.GetPaymentRequest, context: Context
    ) -> payments_pb2.Payment:
        """One of the business's payments (of the customer, when named)."""
        business_id, mode = _business(request.business_id, request.mode)
        payment = await self._charges.get_payment(
            business_id, mode, request.payment_id, request.customer_id
        )
        return payment_to_proto(payment)

    async def ListPayments(
        self, request: payments_pb2.ListPaymentsRequest, context: Context
    ) -> payments_pb2.ListPaymentsResponse:
        """A filtered page of the business's payments, newest first."""
        business_id = list_business(request.business_id, request.customer_ids)
        mode = mode_from_proto(request.mode)
        status = None
        if request.status:
            status = STATUS_FROM_PROTO.get(request.status)
            if status is None:
                raise InvalidArgument("unknown status", field="status")
        where = PaymentFilter(
            business_id=business_id,
            mode=mode,
            customer_ids=[c for c in request.customer_ids if c],
            subscription_id=request.subscription_id,
            status=status,
            created_at_gte=(
                request.created_at_gte.ToDatetime(tzinfo=UTC)
                if request.HasField("created_at_gte")
                else None
            ),
            created_at_lte=(
                request.created_at_lte.ToDatetime(tzinfo=UTC)
                if request.HasField("created_at_lte")
                else None
            ),
        )
        page = make_page(request.page_size, request.page_number)
        found = await self._charges.list_payments(where, page)
        return payments_pb2.ListPaymentsResponse(payments=[payment_to_proto(p) for p in found])

    async def CreatePaymentSession(
        self, request: payments_pb2.CreatePaymentSessionRequest, context: Context
    ) -> payments_pb2.PaymentSession:
        """A single-use hosted page to save (or pay with) a card."""
        scope = make_scope(request.business_id, mode_from_proto(request.mode), request.customer_id)
        charge_type = CHARGE_TYPE_FROM_PROTO.get(request.charge_type)
        try:
            branding = Branding(
                business_name=request.branding.business_name,
                accent_color=request.branding.accent_color,
                logo_url=request.branding.logo_url,
            )
        except ValueError:
            raise InvalidArgument(
                "branding: accent_color must be #RRGGBB and logo_url an https URL", field="branding"
            ) from None
        session = await self._hosted.create_session(
            NewSession(
                scope=scope,
                purpose=PURPOSE_FROM_PROTO.get(request.purpose),
                return_url=request.return_url,
                locale=request.locale,
                branding=branding,
                amount=request.amount,
                currency=request.currency,
                idempotency_key=request.idempotency_key,
                charge_type=charge_type or ChargeType.NEW,
                subscription_id=request.subscription_id,
                description=request.description,
                metadata=dict(request.metadata),
                lines=lines_from_proto(request.lines),
                billing=billing_from_proto(request),
                tax_id=request.tax_id,
            )
        )
        return session_to_proto(session, self._hosted.page_url(session.session_id))

    async def GetPaymentSession(
        self, request: payments_pb2.GetPaymentSessionRequest, context: Context
    ) -> payments_pb2.PaymentSession:
        """A session and its outcome."""
        business_id, mode = _business(request.business_id, request.mode)
        session = await self._hosted.get_session(
            business_id, mode, _required(request.session_id, "session_id")
        )
        return session_to_proto(session, self._hosted.page_url(session.session_id))


def _required(value: str, field: str) -> str:
    if not value or len(value) > 128:
        raise InvalidArgument(f"{field} is required", field=field)
    return value
