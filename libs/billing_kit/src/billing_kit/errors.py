"""Domain errors: one base class, one subclass per meaning.

Services raise these; the gRPC server maps them to a status code with a
machine-readable ``reason`` (google.rpc.ErrorInfo), and the gRPC client helpers
turn such a status back into the same class, so the gateway can map it to an
HTTP problem without string matching.
"""

from __future__ import annotations

from typing import ClassVar

import grpc
from pydantic import ValidationError


class DomainError(Exception):
    """An expected failure of a use case, never a 500."""

    code: ClassVar[grpc.StatusCode] = grpc.StatusCode.UNKNOWN
    default_reason: ClassVar[str] = "ERROR"

    def __init__(
        self, message: str, *, reason: str | None = None, field: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        # The request field the error is about (``return_url``, ``phone_number``…), so a
        # caller can put a translated message next to that field without parsing text.
        self.field = field


class InvalidArgument(DomainError):
    code = grpc.StatusCode.INVALID_ARGUMENT
    default_reason = "INVALID_ARGUMENT"


class NotFound(DomainError):
    code = grpc.StatusCode.NOT_FOUND
    default_reason = "NOT_FOUND"


class AlreadyExists(DomainError):
    code = grpc.StatusCode.ALREADY_EXISTS
    default_reason = "ALREADY_EXISTS"


class FailedPrecondition(DomainError):
    code = grpc.StatusCode.FAILED_PRECONDITION
    default_reason = "FAILED_PRECONDITION"


class PermissionDenied(DomainError):
    code = grpc.StatusCode.PERMISSION_DENIED
    default_reason = "PERMISSION_DENIED"


class Unauthenticated(DomainError):
    code = grpc.StatusCode.UNAUTHENTICATED
    default_reason = "UNAUTHENTICATED"


class Unavailable(DomainError):
    """A dependency (e.g. the SMTP relay) failed for now: the caller may retry.

    Left out of the client-side mapping below on purpose: clients already treat
    a raw UNAVAILABLE status (server down, relay down) as "retry later".
    """

    code = grpc.StatusCode.UNAVAILABLE
    default_reason = "UNAVAILABLE"


class RateLimited(DomainError):
    """Too many requests for one key (an email, a client) in the current window: retry later."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    default_reason = "RATE_LIMITED"


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
