"""Domain errors of customers; the kit's interceptor maps them to gRPC statuses."""

from __future__ import annotations

from billing_kit.errors import AlreadyExists, InvalidArgument, NotFound, Reason


class CustomerNotFound(NotFound):
    default_reason = Reason.CUSTOMER_NOT_FOUND


class EmailTaken(AlreadyExists):
    default_reason = Reason.EMAIL_TAKEN


class EmailUnchanged(InvalidArgument):
    default_reason = Reason.EMAIL_UNCHANGED
