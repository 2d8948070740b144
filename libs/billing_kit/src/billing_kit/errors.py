"""Domain errors: one base class, one subclass per gRPC status, one shared :class:`Reason`.

Services raise these; the gRPC server maps them to a status code with a
machine-readable ``reason`` (google.rpc.ErrorInfo), and the kit's client
interceptor turns such a status back into the same class, so the gateway maps
it to an HTTP problem or a page by its reason (``gateway.problems``) without
string matching.

Every reason any service raises is a member of :class:`Reason` (a contract
test in ``tests/contracts`` scans the services for strays, and checks that the
gateway has an HTTP status and an English and Italian message for each).
Add a member here before raising a new reason.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

import grpc
from pydantic import ValidationError


class Reason(StrEnum):
    """Why a use case refused: the one vocabulary every service raises and every client reads.

    The value travels as ``google.rpc.ErrorInfo.reason``; it equals the name.
    """

    # One per status, for refusals that need no finer reason.
    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    NOT_FOUND = "NOT_FOUND"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    FAILED_PRECONDITION = "FAILED_PRECONDITION"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    UNAVAILABLE = "UNAVAILABLE"
    RATE_LIMITED = "RATE_LIMITED"
    # Request scoping (every service).
    INVALID_MODE = "INVALID_MODE"
    INVALID_SCOPE = "INVALID_SCOPE"
    INVALID_PAGE = "INVALID_PAGE"
    # Businesses, API keys, customers (auth).
    BUSINESS_NOT_FOUND = "BUSINESS_NOT_FOUND"
    API_KEY_NOT_FOUND = "API_KEY_NOT_FOUND"
    INVALID_API_KEY = "INVALID_API_KEY"
    CUSTOMER_NOT_FOUND = "CUSTOMER_NOT_FOUND"
    CUSTOMER_EXISTS = "CUSTOMER_EXISTS"
    EMAIL_TAKEN = "EMAIL_TAKEN"
    EMAIL_UNCHANGED = "EMAIL_UNCHANGED"
    INVALID_NAME = "INVALID_NAME"
    INVALID_EMAIL = "INVALID_EMAIL"
    INVALID_PHONE_NUMBER = "INVALID_PHONE_NUMBER"
    INVALID_METADATA = "INVALID_METADATA"
    INVALID_PREFERRED_LOCALE = "INVALID_PREFERRED_LOCALE"
    # Portal links and sessions (auth).
    TOKEN_UNKNOWN = "TOKEN_UNKNOWN"  # noqa: S105 (a reason, not a secret)
    TOKEN_USED = "TOKEN_USED"  # noqa: S105
    TOKEN_EXPIRED = "TOKEN_EXPIRED"  # noqa: S105
    SESSION_INVALID = "SESSION_INVALID"
    INVALID_NEXT_PATH = "INVALID_NEXT_PATH"
    INVALID_RETURN_URL = "INVALID_RETURN_URL"
    # Emails (auth as the sender, notifications as the service).
    EMAIL_SERVICE_UNAVAILABLE = "EMAIL_SERVICE_UNAVAILABLE"
    EMAIL_NOT_SENT = "EMAIL_NOT_SENT"
    EMAIL_TEMPLATE_REQUIRED = "EMAIL_TEMPLATE_REQUIRED"
    INVALID_EMAIL_REQUEST = "INVALID_EMAIL_REQUEST"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
    EMAIL_SEND_IN_PROGRESS = "EMAIL_SEND_IN_PROGRESS"
    EMAIL_RECIPIENT_REJECTED = "EMAIL_RECIPIENT_REJECTED"
    SMTP_UNAVAILABLE = "SMTP_UNAVAILABLE"
    INVALID_RECIPIENT_KEY = "INVALID_RECIPIENT_KEY"
    RECIPIENT_NOT_FOUND = "RECIPIENT_NOT_FOUND"
    # Subscriptions and invoices.
    INVALID_SUBSCRIPTION_ID = "INVALID_SUBSCRIPTION_ID"
    SUBSCRIPTION_NOT_FOUND = "SUBSCRIPTION_NOT_FOUND"
    INVALID_INVOICE_ID = "INVALID_INVOICE_ID"
    INVOICE_NOT_FOUND = "INVOICE_NOT_FOUND"
    INVOICE_PDF_NOT_READY = "INVOICE_PDF_NOT_READY"
    # Products (subscriptions).
    PRODUCT_NOT_FOUND = "PRODUCT_NOT_FOUND"
    INVALID_PRODUCT = "INVALID_PRODUCT"
    # Add-ons (subscriptions).
    ADDON_NOT_FOUND = "ADDON_NOT_FOUND"
    INVALID_ADDON = "INVALID_ADDON"
    # A product names an add-on it cannot offer (unknown, another business's, archived,
    # another currency).
    ADDON_UNAVAILABLE = "ADDON_UNAVAILABLE"
    # Subscriptions lifecycle.
    SUBSCRIPTION_STATE_CONFLICT = "SUBSCRIPTION_STATE_CONFLICT"
    # A plan change names a product that cannot be this subscription's plan now (one-time,
    # archived, another currency, more seats than it allows).
    PLAN_UNAVAILABLE = "PLAN_UNAVAILABLE"
    INVALID_SUBSCRIPTION_REQUEST = "INVALID_SUBSCRIPTION_REQUEST"
    TEST_CLOCK_LIVE_MODE = "TEST_CLOCK_LIVE_MODE"
    TEST_CLOCK_BACKWARDS = "TEST_CLOCK_BACKWARDS"
    TEST_CLOCK_TOO_FAR = "TEST_CLOCK_TOO_FAR"
    PRODUCT_NOT_SUBSCRIBABLE = "PRODUCT_NOT_SUBSCRIBABLE"
    # Payments.
    PAYMENT_METHOD_NOT_FOUND = "PAYMENT_METHOD_NOT_FOUND"
    PAYMENT_NOT_FOUND = "PAYMENT_NOT_FOUND"
    PAYMENT_SESSION_NOT_FOUND = "PAYMENT_SESSION_NOT_FOUND"
    # Checkout sessions (subscriptions).
    INVALID_CHECKOUT_REQUEST = "INVALID_CHECKOUT_REQUEST"
    CHECKOUT_NOT_FOUND = "CHECKOUT_NOT_FOUND"
    CHECKOUT_CART_UNAVAILABLE = "CHECKOUT_CART_UNAVAILABLE"
    # License keys (subscriptions).
    LICENSE_KEY_INVALID = "LICENSE_KEY_INVALID"
    LICENSE_KEY_NOT_FOUND = "LICENSE_KEY_NOT_FOUND"
    LICENSE_KEY_INSTANCE_NOT_FOUND = "LICENSE_KEY_INSTANCE_NOT_FOUND"
    LICENSE_KEY_ACTIVATION_LIMIT = "LICENSE_KEY_ACTIVATION_LIMIT"
    LICENSE_KEY_EXISTS = "LICENSE_KEY_EXISTS"
    INVALID_LICENSE_KEY_REQUEST = "INVALID_LICENSE_KEY_REQUEST"
    LICENSE_RATE_LIMITED = "LICENSE_RATE_LIMITED"
    # Merchant webhooks (notifications).
    WEBHOOK_NOT_FOUND = "WEBHOOK_NOT_FOUND"
    INVALID_WEBHOOK = "INVALID_WEBHOOK"

    @classmethod
    def parse(cls, value: str) -> Reason | None:
        """The member spelled ``value`` (as read off the wire), None for one we do not know."""
        try:
            return cls(value)
        except ValueError:
            return None


class DomainError(Exception):
    """An expected failure of a use case, never a 500."""

    code: ClassVar[grpc.StatusCode] = grpc.StatusCode.UNKNOWN
    default_reason: ClassVar[Reason] = Reason.FAILED_PRECONDITION

    def __init__(
        self, message: str, *, reason: Reason | None = None, field: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason: Reason = reason or self.default_reason
        # The request field the error is about (``return_url``, ``phone_number``…), so a
        # caller can put a translated message next to that field without parsing text.
        self.field = field


class InvalidArgument(DomainError):
    code = grpc.StatusCode.INVALID_ARGUMENT
    default_reason = Reason.INVALID_ARGUMENT


class NotFound(DomainError):
    code = grpc.StatusCode.NOT_FOUND
    default_reason = Reason.NOT_FOUND


class AlreadyExists(DomainError):
    code = grpc.StatusCode.ALREADY_EXISTS
    default_reason = Reason.ALREADY_EXISTS


class FailedPrecondition(DomainError):
    code = grpc.StatusCode.FAILED_PRECONDITION
    default_reason = Reason.FAILED_PRECONDITION


class PermissionDenied(DomainError):
    code = grpc.StatusCode.PERMISSION_DENIED
    default_reason = Reason.PERMISSION_DENIED


class Unauthenticated(DomainError):
    code = grpc.StatusCode.UNAUTHENTICATED
    default_reason = Reason.UNAUTHENTICATED


class Unavailable(DomainError):
    """A dependency (e.g. the SMTP relay) failed for now: the caller may retry.

    Left out of the client-side mapping below on purpose: clients already treat
    a raw UNAVAILABLE status (server down, relay down) as "retry later".
    """

    code = grpc.StatusCode.UNAVAILABLE
    default_reason = Reason.UNAVAILABLE


class RateLimited(DomainError):
    """Too many requests for one key (an email, a client) in the current window: retry later."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    default_reason = Reason.RATE_LIMITED


ERROR_DOMAIN = "billing"

_BY_CODE: dict[grpc.StatusCode, type[DomainError]] = {
    cls.code: cls
    for cls in (
        InvalidArgument,
        NotFound,
        AlreadyExists,
        FailedPrecondition,
        PermissionDenied,
        Unauthenticated,
        RateLimited,
    )
}


def error_class_for(code: grpc.StatusCode) -> type[DomainError] | None:
    """The domain error class a gRPC status code stands for, if any."""
    return _BY_CODE.get(code)


def describe_validation_error(exc: ValidationError) -> str:
    """Name each bad field and what is wrong, never the submitted value (it may be personal)."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'request'}: {e['msg']}" for e in exc.errors()
    )
