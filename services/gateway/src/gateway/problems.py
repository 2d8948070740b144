"""HTTP problem details (RFC 9457) and the one place errors become responses.

Every 4xx/5xx the API returns is ``application/problem+json`` with ``type``,
``title``, ``status``, ``detail``, plus ``code`` and ``message`` — the two
fields the Dodo Payments API puts in its error bodies, so SDK users who read
``err.body["code"]`` see a stable, machine-readable value.

:data:`ERROR_TABLE` is the one domain-error -> HTTP table: for every shared
:class:`~billing_kit.errors.Reason` the status (the same for the JSON API and
the portal pages), the customer-facing message (translated by the portal's
catalogs), and whether a page sends the customer to sign in instead.
:func:`from_domain_error` serves the API and :func:`error_row` the pages.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import grpc
from aiohttp import web
from billing_kit.errors import DomainError, Reason
from pydantic import ValidationError

from gateway.web.i18n import N_

PROBLEM_CONTENT_TYPE = "application/problem+json"

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


class ApiProblem(Exception):
    """An error the API reports to the caller as a problem document."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        errors: list[dict[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.errors = errors
        self.headers = dict(headers or {})

    def to_dict(self) -> dict[str, Any]:
        """The JSON body."""
        body: dict[str, Any] = {
            "type": f"/problems/{self.code.lower().replace('_', '-')}",
            "title": _TITLES.get(self.status, "Error"),
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
            "message": self.detail,
        }
        if self.errors is not None:
            body["errors"] = self.errors
        return body

    def to_response(self) -> web.Response:
        """A complete problem response."""
        headers = dict(self.headers)
        # The SDK retries 409s and 5xx unless told otherwise; only an
        # unavailable backend is worth retrying.
        headers.setdefault("x-should-retry", "true" if self.status == 503 else "false")
        return web.Response(
            status=self.status,
            text=json.dumps(self.to_dict()),
            content_type=PROBLEM_CONTENT_TYPE,
            headers=headers,
        )


def unauthorized(detail: str) -> ApiProblem:
    """401 with the RFC 6750 challenge."""
    return ApiProblem(
        401, "UNAUTHORIZED", detail, headers={"WWW-Authenticate": 'Bearer realm="api"'}
    )


def resource_not_found(kind: str) -> ApiProblem:
    """404 that says nothing about whether the id exists elsewhere."""
    return ApiProblem(404, "NOT_FOUND", f"{kind} not found")


def field_errors(exc: ValidationError, *, prefix: Iterable[str] = ()) -> list[dict[str, str]]:
    """Per-field errors from pydantic, without echoing the submitted values."""
    out = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = [*prefix, *(str(p) for p in err["loc"])]
        # A rule's own ValueError says what is wrong; pydantic's "Value error, " adds nothing.
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "Unknown field"
        out.append({"field": ".".join(loc) or "body", "message": message, "type": err["type"]})
    return out


def validation_problem(exc: ValidationError, *, where: str) -> ApiProblem:
    """422 listing every invalid field of the body or query."""
    errors = field_errors(exc)
    # The detail says what is wrong with each field, so a merchant reading only the
    # message (the SDK shows it) can fix the request without reading ``errors``.
    fields = "; ".join(dict.fromkeys(f"{e['field']}: {e['message']}" for e in errors))
    code = "INVALID_REQUEST_BODY" if where == "body" else "INVALID_QUERY_PARAMETERS"
    return ApiProblem(422, code, f"Invalid {where}: {fields}", errors=errors)


def reason_errors(
    exc: DomainError, renamed: Mapping[str, str] | None = None
) -> list[dict[str, str]] | None:
    """``[{field, message, type}]`` for a backend error about one field (type = its reason)."""
    if not exc.field:
        return None
    field = (renamed or {}).get(exc.field, exc.field)
    # The backend's message starts with its own name for the field.
    message = exc.message.split(": ", 1)[-1]
    return [{"field": field, "message": message, "type": exc.reason}]


def invalid_query(exc: DomainError, *, renamed: Mapping[str, str] | None = None) -> ApiProblem:
    """422 for a query parameter the backend refused, named as the API names it."""
    errors = reason_errors(exc, renamed)
    fields = ", ".join(e["field"] for e in errors or [])
    return ApiProblem(
        422, "INVALID_QUERY_PARAMETERS", f"Invalid query: {fields or exc.reason}", errors=errors
    )


@dataclass(frozen=True)
class ErrorRow:
    """How one reason reaches a person: HTTP status, message, where a page sends them."""

    status: int
    message: str  # English msgid; pages show it translated
    sign_in: bool = False  # a page redirects to the sign-in page instead of showing an error
    retry_after: int | None = None


def _invalid(message: str) -> ErrorRow:
    return ErrorRow(422, message)


def _not_found(message: str) -> ErrorRow:
    return ErrorRow(404, message)


def _conflict(message: str) -> ErrorRow:
    return ErrorRow(409, message)


def _unavailable(message: str) -> ErrorRow:
    return ErrorRow(503, message, retry_after=1)


_SIGN_IN_AGAIN = N_("Please sign in again.")
_NOT_FOUND = N_("This page does not exist, or you do not have access to it.")
_TRY_LATER = N_("We could not complete your request right now. Please try again in a moment.")
_CHECK_VALUE = N_("Check this value and try again.")

# Every Reason has a row (tests/contracts checks it, and that each message is translated).
# A foreign resource is reported exactly like a missing one (404), never 403.
ERROR_TABLE: dict[Reason, ErrorRow] = {
    Reason.INVALID_ARGUMENT: _invalid(_CHECK_VALUE),
    Reason.NOT_FOUND: _not_found(_NOT_FOUND),
    Reason.ALREADY_EXISTS: _conflict(N_("This already exists.")),
    Reason.FAILED_PRECONDITION: _conflict(N_("This cannot be done right now.")),
    Reason.PERMISSION_DENIED: _not_found(_NOT_FOUND),
    Reason.UNAUTHENTICATED: ErrorRow(401, _SIGN_IN_AGAIN, sign_in=True),
    Reason.UNAVAILABLE: _unavailable(_TRY_LATER),
    Reason.RATE_LIMITED: ErrorRow(
        429,
        N_(
            "You have asked for several links in a short time. "
            "Please wait a few minutes and try again."
        ),
        retry_after=60,
    ),
    Reason.INVALID_MODE: _invalid(N_("Choose test or live mode.")),
    Reason.INVALID_SCOPE: _invalid(_CHECK_VALUE),
    Reason.INVALID_PAGE: _invalid(N_("This page number or page size is not valid.")),
    Reason.BUSINESS_NOT_FOUND: _not_found(_NOT_FOUND),
    Reason.API_KEY_NOT_FOUND: _not_found(_NOT_FOUND),
    Reason.INVALID_API_KEY: ErrorRow(401, N_("Invalid API key."), sign_in=True),
    Reason.CUSTOMER_NOT_FOUND: _not_found(_NOT_FOUND),
    Reason.CUSTOMER_EXISTS: _conflict(N_("A customer with this email already exists.")),
    Reason.EMAIL_TAKEN: _conflict(N_("Another customer already uses this email.")),
    Reason.EMAIL_UNCHANGED: _invalid(N_("This is already your email address.")),
    Reason.INVALID_NAME: _invalid(
        N_("Enter your name, on one line and in at most 200 characters.")
    ),
    Reason.INVALID_EMAIL: _invalid(N_("Enter a valid email address.")),
    Reason.INVALID_PHONE_NUMBER: _invalid(
        N_(
            "Enter a phone number in international format, starting with + and the "
            "country code, e.g. +39 333 123 4567."
        )
    ),
    Reason.INVALID_METADATA: _invalid(N_("The metadata is not valid.")),
    Reason.INVALID_PREFERRED_LOCALE: _invalid(N_("Choose one of the languages offered.")),
    Reason.TOKEN_UNKNOWN: _not_found(N_("This link is not valid.")),
    Reason.TOKEN_USED: _conflict(N_("This link was already used.")),
    Reason.TOKEN_EXPIRED: _conflict(N_("This link has expired.")),
    Reason.SESSION_INVALID: ErrorRow(401, _SIGN_IN_AGAIN, sign_in=True),
    Reason.INVALID_NEXT_PATH: _invalid(
        N_(
            "This sign-in link pointed outside your portal, so that part was dropped. "
            "Ask for the link again."
        )
    ),
    Reason.INVALID_RETURN_URL: _invalid(N_("The return address is not a valid web address.")),
    Reason.EMAIL_SERVICE_UNAVAILABLE: _unavailable(_TRY_LATER),
    Reason.EMAIL_NOT_SENT: _unavailable(N_("We could not send the email. Please try again.")),
    Reason.EMAIL_TEMPLATE_REQUIRED: _invalid(_CHECK_VALUE),
    Reason.INVALID_EMAIL_REQUEST: _invalid(_CHECK_VALUE),
    Reason.IDEMPOTENCY_KEY_REUSED: _conflict(
        N_("This request was already made with different details.")
    ),
    Reason.EMAIL_SEND_IN_PROGRESS: _unavailable(_TRY_LATER),
    Reason.EMAIL_RECIPIENT_REJECTED: _invalid(N_("The mail server refused this address.")),
    Reason.SMTP_UNAVAILABLE: _unavailable(_TRY_LATER),
    Reason.INVALID_RECIPIENT_KEY: _invalid(_CHECK_VALUE),
    Reason.RECIPIENT_NOT_FOUND: _not_found(_NOT_FOUND),
    Reason.INVALID_SUBSCRIPTION_ID: _invalid(N_("This subscription id is not valid.")),
    Reason.SUBSCRIPTION_NOT_FOUND: _not_found(
        N_("This subscription does not exist, or you do not have access to it.")
    ),
    Reason.INVALID_INVOICE_ID: _invalid(N_("This invoice id is not valid.")),
    Reason.INVOICE_NOT_FOUND: _not_found(
        N_("This invoice does not exist, or you do not have access to it.")
    ),
    # The PDF of a just-issued invoice is still being rendered.
    Reason.INVOICE_PDF_NOT_READY: _not_found(_TRY_LATER),
    Reason.PRODUCT_NOT_FOUND: _not_found(_NOT_FOUND),
    Reason.WEBHOOK_NOT_FOUND: _not_found(_NOT_FOUND),
    Reason.INVALID_WEBHOOK: _invalid(_CHECK_VALUE),
    Reason.INVALID_PRODUCT: _invalid(_CHECK_VALUE),
    Reason.ADDON_NOT_FOUND: _not_found(_NOT_FOUND),
    Reason.INVALID_ADDON: _invalid(_CHECK_VALUE),
    Reason.ADDON_UNAVAILABLE: _conflict(N_("This cannot be done right now.")),
    Reason.SUBSCRIPTION_STATE_CONFLICT: _conflict(N_("This cannot be done right now.")),
    Reason.PLAN_UNAVAILABLE: _conflict(N_("This plan cannot be chosen right now.")),
    Reason.INVALID_SUBSCRIPTION_REQUEST: _invalid(_CHECK_VALUE),
    Reason.TEST_CLOCK_LIVE_MODE: _not_found(_NOT_FOUND),
    Reason.TEST_CLOCK_BACKWARDS: _conflict(N_("This cannot be done right now.")),
    Reason.TEST_CLOCK_TOO_FAR: _conflict(N_("This cannot be done right now.")),
    Reason.PRODUCT_NOT_SUBSCRIBABLE: _conflict(N_("This cannot be done right now.")),
    Reason.PAYMENT_METHOD_NOT_FOUND: _not_found(
        N_("This payment method does not exist, or you do not have access to it.")
    ),
    Reason.PAYMENT_NOT_FOUND: _not_found(
        N_("This payment does not exist, or you do not have access to it.")
    ),
    Reason.PAYMENT_SESSION_NOT_FOUND: _not_found(
        N_("This payment page does not exist or has expired.")
    ),
    Reason.INVALID_CHECKOUT_REQUEST: _invalid(_CHECK_VALUE),
    Reason.CHECKOUT_NOT_FOUND: _not_found(_NOT_FOUND),
    Reason.CHECKOUT_CART_UNAVAILABLE: _conflict(N_("This cannot be done right now.")),
    # An unknown, malformed or disabled key: one answer that says nothing more.
    Reason.LICENSE_KEY_INVALID: _not_found(_NOT_FOUND),
    Reason.LICENSE_KEY_NOT_FOUND: _not_found(_NOT_FOUND),
    Reason.LICENSE_KEY_INSTANCE_NOT_FOUND: _not_found(_NOT_FOUND),
    Reason.LICENSE_KEY_ACTIVATION_LIMIT: _conflict(
        N_("This license key has reached its activation limit.")
    ),
    Reason.LICENSE_KEY_EXISTS: _conflict(N_("This license key already exists.")),
    Reason.INVALID_LICENSE_KEY_REQUEST: _invalid(_CHECK_VALUE),
    Reason.LICENSE_RATE_LIMITED: ErrorRow(
        429, N_("Too many requests. Please wait a minute and try again."), retry_after=60
    ),
}


# A DomainError of no known kind (the bare base class) is a backend bug, not the caller's.
_BACKEND_FAILED = ErrorRow(502, N_("We could not complete your request. Please try again."))


def error_row(exc: DomainError) -> ErrorRow:
    """The row of a domain error's reason (the class's own reason if a row were missing)."""
    if type(exc).code == grpc.StatusCode.UNKNOWN:
        return _BACKEND_FAILED
    return ERROR_TABLE.get(exc.reason) or ERROR_TABLE[type(exc).default_reason]


def from_domain_error(exc: DomainError) -> ApiProblem:
    """Map a backend's domain error to the status of its row in :data:`ERROR_TABLE`."""
    row = error_row(exc)
    if row.status == 404:
        # Says nothing about whether the id exists elsewhere (another business's, say).
        return ApiProblem(404, "NOT_FOUND", "Resource not found")
    if row.status == 401:
        return unauthorized("Invalid API key")
    if row.status == 502:
        return ApiProblem(502, "BACKEND_ERROR", "A backend service failed to answer")
    headers = {"Retry-After": str(row.retry_after)} if row.retry_after is not None else {}
    if row.status == 503:
        # The backend's text may name its dependency; the caller only needs "retry".
        return ApiProblem(503, "SERVICE_UNAVAILABLE", row.message, headers=headers)
    return ApiProblem(
        row.status, exc.reason, exc.message, errors=reason_errors(exc), headers=headers
    )


_UNAVAILABLE = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.CANCELLED,
}


def from_rpc_error(exc: grpc.aio.AioRpcError) -> ApiProblem:
    """A gRPC failure that is not a domain error: the backend is down or slow."""
    if exc.code() in _UNAVAILABLE:
        return ApiProblem(
            503,
            "SERVICE_UNAVAILABLE",
            "A backend service is temporarily unavailable; retry shortly",
            headers={"Retry-After": "1"},
        )
    return ApiProblem(502, "BACKEND_ERROR", "A backend service failed to answer")


def from_http_exception(exc: web.HTTPException) -> ApiProblem:
    """aiohttp's own errors (unknown route, wrong method, body too large)."""
    status = exc.status
    codes = {
        404: ("NOT_FOUND", "No such route"),
        405: ("METHOD_NOT_ALLOWED", "Method not allowed on this route"),
        413: ("PAYLOAD_TOO_LARGE", "Request body too large"),
    }
    code, detail = codes.get(status, ("HTTP_ERROR", exc.reason))
    headers = {}
    if status == 405 and "Allow" in exc.headers:
        headers["Allow"] = exc.headers["Allow"]
    if status >= 500:
        return ApiProblem(500, "INTERNAL_ERROR", "Internal error")
    return ApiProblem(status, code, detail, headers=headers)
