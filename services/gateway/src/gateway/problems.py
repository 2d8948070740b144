"""HTTP problem details (RFC 9457) and the one place errors become responses.

Every 4xx/5xx the API returns is ``application/problem+json`` with ``type``,
``title``, ``status``, ``detail``, plus ``code`` and ``message`` — the two
fields the Dodo Payments API puts in its error bodies, so SDK users who read
``err.body["code"]`` see a stable, machine-readable value.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import grpc
from aiohttp import web
from billing_kit.errors import (
    AlreadyExists,
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    RateLimited,
    Unauthenticated,
)
from pydantic import ValidationError

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
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "Unknown field"
        out.append({"field": ".".join(loc) or "body", "message": message, "type": err["type"]})
    return out


def validation_problem(exc: ValidationError, *, where: str) -> ApiProblem:
    """422 listing every invalid field of the body or query."""
    errors = field_errors(exc)
    fields = ", ".join(dict.fromkeys(e["field"] for e in errors))
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


def from_domain_error(exc: DomainError) -> ApiProblem:
    """Map a backend's domain error to the HTTP status a caller expects."""
    if isinstance(exc, NotFound | PermissionDenied):
        # Another business's resource is reported exactly like a missing one.
        return ApiProblem(404, "NOT_FOUND", "Resource not found")
    if isinstance(exc, Unauthenticated):
        return unauthorized("Invalid API key")
    if isinstance(exc, InvalidArgument):
        return ApiProblem(422, exc.reason, exc.message, errors=reason_errors(exc))
    if isinstance(exc, RateLimited):
        return ApiProblem(429, "RATE_LIMITED", exc.message, headers={"Retry-After": "60"})
    if isinstance(exc, AlreadyExists | FailedPrecondition):
        return ApiProblem(409, exc.reason, exc.message)
    return ApiProblem(502, "BACKEND_ERROR", "A backend service failed to answer")


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
