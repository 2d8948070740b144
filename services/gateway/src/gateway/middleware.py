"""Request middleware: observability, security headers, errors as problems.

Order (outermost first): :func:`observe` times, traces and logs the final
response, so it sees the status the caller got; :func:`security_headers`
decorates every response, error bodies included; :func:`problems` turns any
exception into a problem document, so nothing escapes as a bare 500 or trace.
"""

from __future__ import annotations

import logging
import time

import grpc
from aiohttp import web
from aiohttp.typedefs import Handler
from billing_kit.errors import DomainError
from billing_kit.metrics import HTTP_LATENCY
from billing_kit.redaction import redact_secrets
from billing_kit.telemetry import extract_trace_context, get_tracer
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from gateway.problems import (
    ApiProblem,
    from_domain_error,
    from_http_exception,
    from_rpc_error,
)
from gateway.web.rendering import portal_error_page

SERVICE = "gateway"
UNMATCHED_ROUTE = "<unmatched>"

_access_log = logging.getLogger("gateway.access")
_log = logging.getLogger("gateway.errors")
_tracer = get_tracer("gateway.http")

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
# API responses are data, never documents: they may load nothing and be framed nowhere.
API_CSP = "default-src 'none'; frame-ancestors 'none'"


# Path parameters that carry a secret (one-time tokens); never logged or traced.
SECRET_PATH_PARAMETERS = frozenset({"token"})


def loggable_path(request: web.Request) -> str:
    """The request path as it may be logged: secret segments replaced by their name.

    ``/live/link/cpt_…`` becomes ``/live/link/{token}``; any other prefixed
    secret (a token pasted into a mistyped URL) is redacted by the kit. The
    query string is never part of it: queries can carry emails.
    """
    path = request.path
    for name in SECRET_PATH_PARAMETERS:
        value = request.match_info.get(name)
        if value:
            path = path.replace(value, "{" + name + "}")
    return redact_secrets(path)


def route_template(request: web.Request) -> str:
    """The matched route's template (``/customers/{customer_id}``), never the raw path.

    Raw paths carry ids; as a metric label they would grow without bound.
    """
    resource = request.match_info.route.resource
    if resource is None:
        return UNMATCHED_ROUTE
    return resource.canonical


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Server span (parented by incoming W3C headers), latency histogram, access log."""
    route = route_template(request)
    started = time.perf_counter()
    status = 500
    with _tracer.start_as_current_span(
        f"{request.method} {route}",
        context=extract_trace_context(request.headers),
        kind=SpanKind.SERVER,
        attributes={"http.request.method": request.method, "http.route": route},
    ) as span:
        try:
            response = await handler(request)
            status = response.status
            return response
        finally:
            elapsed = time.perf_counter() - started
            span.set_attribute("http.response.status_code", status)
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR))
            HTTP_LATENCY.labels(SERVICE, route, request.method, str(status)).observe(elapsed)
            # The route template and a path without tokens or query string.
            _access_log.info(
                "%s %s %s",
                request.method,
                route,
                status,
                extra={
                    "http_method": request.method,
                    "http_route": route,
                    "http_path": loggable_path(request),
                    "http_status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                    "remote": request.remote,
                    "user_agent": request.headers.get("User-Agent", ""),
                },
            )


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Headers that keep browsers from sniffing, framing or leaking referrers."""
    response = await handler(request)
    if "/static/" in request.path and response.status == 200:
        # Stylesheets and scripts carry no personal data; let browsers keep them.
        response.headers.setdefault("Cache-Control", "public, max-age=3600")
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    response.headers.setdefault("Content-Security-Policy", API_CSP)
    # aiohttp would announce its exact version; callers need not know it.
    response.headers["Server"] = "gateway"
    return response


@web.middleware
async def problems(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure becomes an ``application/problem+json`` response."""
    try:
        return await handler(request)
    except ApiProblem as problem:
        return problem.to_response()
    except DomainError as exc:
        return from_domain_error(exc).to_response()
    except grpc.aio.AioRpcError as exc:
        _log.warning(
            "backend call failed: %s", exc.code().name, extra={"grpc_code": exc.code().name}
        )
        return from_rpc_error(exc).to_response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise  # redirects and the like are not errors
        page = portal_error_page(request, exc.status)
        if page is not None:
            return page
        return from_http_exception(exc).to_response()
    except Exception:
        _log.exception("unhandled error answering %s %s", request.method, route_template(request))
        trace.get_current_span().set_status(Status(StatusCode.ERROR))
        return ApiProblem(500, "INTERNAL_ERROR", "Internal error").to_response()
