"""gRPC adapter: proto <-> models. Domain errors become statuses in the kit's interceptor."""

from __future__ import annotations

from typing import Any, TypeAlias

import grpc
from billing.notifications.v1 import notifications_pb2, notifications_pb2_grpc
from billing_kit.scoping import mode_from_proto, mode_to_proto
from google.protobuf.timestamp_pb2 import Timestamp

from notifications.models import Recipient
from notifications.service import NotificationsService

Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]


def recipient_to_proto(recipient: Recipient) -> notifications_pb2.Recipient:
    """The wire form of a recipient."""
    updated_at = Timestamp()
    updated_at.FromDatetime(recipient.updated_at)
    return notifications_pb2.Recipient(
        business_id=recipient.business_id,
        mode=mode_to_proto(recipient.mode),
        customer_id=recipient.customer_id,
        email=recipient.email,
        name=recipient.name,
        locale=recipient.locale or "",
        last_event_id=recipient.last_event_id,
        updated_at=updated_at,
    )


class NotificationsServicer(notifications_pb2_grpc.NotificationsServiceServicer):
    """Implements billing.notifications.v1.NotificationsService."""

    def __init__(self, service: NotificationsService) -> None:
        self._service = service

    async def GetRecipient(
        self, request: notifications_pb2.GetRecipientRequest, context: Context
    ) -> notifications_pb2.Recipient:
        """The recipient built from a customer's events; NOT_FOUND when none was seen."""
        found = await self._service.get_recipient(
            request.business_id, mode_from_proto(request.mode), request.customer_id
        )
        return recipient_to_proto(found)
