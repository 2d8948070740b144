"""gRPC client helpers: one channel per target per process, deadlines always.

The channel's interceptor is the one place a client call is dressed and
undressed: it puts the channel's default deadline on every call that has none
(callers pass no ``timeout`` of their own), sends W3C trace context, records
client latency, and raises a domain error status as the :class:`DomainError`
the server raised (with its :class:`~billing_kit.errors.Reason`). Callers
therefore ``await stub.Method(request)`` and catch domain errors by class; any
other failure (server down, deadline exceeded) stays a ``grpc.aio.AioRpcError``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from opentelemetry import trace

from billing_kit.errors import DomainError, Reason, error_class_for
from billing_kit.metrics import RPC_CLIENT_LATENCY
from billing_kit.telemetry import get_tracer, inject_trace_context

DEFAULT_TIMEOUT_SECONDS = 5.0
_tracer = get_tracer(__name__)


class _ClientInterceptor(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    def __init__(self, target_service: str, timeout: float, *, domain_errors: bool) -> None:
        self.target_service = target_service
        self.timeout = timeout
        self.domain_errors = domain_errors

    async def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Any],
        client_call_details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        method = client_call_details.method
        method_name = method.decode() if isinstance(method, bytes) else str(method)
        started = time.perf_counter()
        code = "OK"
        with _tracer.start_as_current_span(
            method_name.lstrip("/"),
            kind=trace.SpanKind.CLIENT,
            attributes={"rpc.system": "grpc", "rpc.method": method_name},
        ):
            metadata = list(client_call_details.metadata or [])
            metadata.extend(inject_trace_context().items())
            details = grpc.aio.ClientCallDetails(
                method=client_call_details.method,
                timeout=client_call_details.timeout
                if client_call_details.timeout is not None
                else self.timeout,
                metadata=grpc.aio.Metadata(*metadata),
                credentials=client_call_details.credentials,
                wait_for_ready=client_call_details.wait_for_ready,
            )
            try:
                call = await continuation(details, request)
                return await call
            except grpc.aio.AioRpcError as exc:
                code = exc.code().name
                domain_error = domain_error_from(exc) if self.domain_errors else None
                if domain_error is None:
                    raise
                # The status already said all there is; its traceback would only add noise.
                raise domain_error from None
            finally:
                RPC_CLIENT_LATENCY.labels(self.target_service, method_name, code).observe(
                    time.perf_counter() - started
                )


def create_channel(
    target: str,
    *,
    name: str | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    domain_errors: bool = True,
) -> grpc.aio.Channel:
    """An insecure channel to ``host:port`` with the kit's interceptor.

    Create it once per process (in a cleanup_ctx / start hook) and reuse it.
    ``domain_errors=False`` leaves error statuses as ``AioRpcError`` (for tests
    that assert what goes over the wire); services keep the default.
    """
    return grpc.aio.insecure_channel(
        target,
        interceptors=[_ClientInterceptor(name or target, timeout, domain_errors=domain_errors)],
        options=[
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.enable_retries", 1),
        ],
    )


def domain_error_from(exc: grpc.aio.AioRpcError) -> DomainError | None:
    """The DomainError a server raised, rebuilt from the status; None if it was not one."""
    cls = error_class_for(exc.code())
    if cls is None:
        return None
    reason = None
    field = None
    status = rpc_status.from_call(exc)  # type: ignore[arg-type]
    if status is not None:
        for detail in status.details:
            info = error_details_pb2.ErrorInfo()
            if detail.Unpack(info):
                # A reason this build does not know (a newer server) falls back to the class's.
                reason = Reason.parse(info.reason)
                field = info.metadata.get("field") or None
    return cls(exc.details() or "", reason=reason, field=field)
