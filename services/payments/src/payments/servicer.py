"""gRPC adapter: proto <-> models. Domain errors become statuses in the kit's interceptor."""

from __future__ import annotations

from typing import Any, TypeAlias

import grpc
from billing.payments.v1 import payments_pb2, payments_pb2_grpc
from billing_kit.scoping import make_page, make_scope, mode_from_proto, mode_to_proto
from google.protobuf.timestamp_pb2 import Timestamp

from payments.models import PaymentMethod
from payments.service import PaymentsService

Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]


def payment_method_to_proto(method: PaymentMethod) -> payments_pb2.PaymentMethod:
    """The wire form of a saved payment method."""
    created_at = Timestamp()
    created_at.FromDatetime(method.created_at)
    return payments_pb2.PaymentMethod(
        payment_method_id=method.payment_method_id,
        business_id=method.business_id,
        mode=mode_to_proto(method.mode),
        customer_id=method.customer_id,
        brand=method.brand,
        last4=method.last4,
        expiry_month=method.expiry_month,
        expiry_year=method.expiry_year,
        fingerprint=method.fingerprint,
        created_at=created_at,
    )


class PaymentsServicer(payments_pb2_grpc.PaymentsServiceServicer):
    """Implements billing.payments.v1.PaymentsService."""

    def __init__(self, service: PaymentsService) -> None:
        self._service = service

    async def ListPaymentMethods(
        self, request: payments_pb2.ListPaymentMethodsRequest, context: Context
    ) -> payments_pb2.ListPaymentMethodsResponse:
        """A page of the calling customer's saved methods, newest first."""
        scope = make_scope(request.business_id, mode_from_proto(request.mode), request.customer_id)
        page = make_page(request.page_size, request.page_number)
        found = await self._service.list_payment_methods(scope, page)
        return payments_pb2.ListPaymentMethodsResponse(
            payment_methods=[payment_method_to_proto(m) for m in found]
        )
