"""gRPC server bootstrap: grpc.aio with health, reflection and one interceptor.

The interceptor gives every unary RPC a server span (parented by the caller's
W3C context), a latency histogram, one log line on failure, and turns
:class:`~billing_kit.errors.DomainError` into a status code plus a
``google.rpc.ErrorInfo`` whose ``reason`` clients can branch on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from grpc_status import rpc_status
from opentelemetry import trace
from pydantic import ValidationError

from billing_kit.errors import (
    ERROR_DOMAIN,
    DomainError,
    InvalidArgument,
    describe_validation_error,
)
from billing_kit.metrics import RPC_LATENCY
from billing_kit.telemetry import extract_trace_context, get_tracer

log = logging.getLogger(__name__)
_tracer = get_tracer(__name__)

Register = Callable[[grpc.aio.Server], None]


async def abort_with_domain_error(
    context: grpc.aio.ServicerContext[Any, Any], err: DomainError
) -> None:
    """Abort the call with the error's code, message and ``ErrorInfo`` (reason, field)."""
    info = error_details_pb2.ErrorInfo(reason=err.reason, domain=ERROR_DOMAIN)
    if err.field:
        info.metadata["field"] = err.field
    detail = any_pb2.Any()
    detail.Pack(info)
    status = rpc_status.to_status(
        status_pb2.Status(code=err.code.value[0], message=err.message, details=[detail])
    )
    await context.abort(status.code, status.details, status.trailing_metadata)


class _ObservabilityInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, service: str) -> None:
        self.service = service

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler  # streaming (health Watch, reflection) passes through untouched
        method = handler_call_details.method
        metadata = dict(handler_call_details.invocation_metadata or ())
        behavior = handler.unary_unary
        service = self.service

        async def observed(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            started = time.perf_counter()
            code = "OK"
            parent = extract_trace_context(metadata)
            with _tracer.start_as_current_span(
                method.lstrip("/"),
                context=parent,
                kind=trace.SpanKind.SERVER,
                attributes={"rpc.system": "grpc", "rpc.method": method},
            ) as span:
                try:
                    return await behavior(request, context)
                except DomainError as err:
                    code = err.code.name
                    span.set_attribute("rpc.grpc.status_code", err.code.value[0])
                    await abort_with_domain_error(context, err)
                except ValidationError as exc:
                    code = "INVALID_ARGUMENT"
                    await abort_with_domain_error(
                        context, InvalidArgument(describe_validation_error(exc))
                    )
                except grpc.aio.AbortError:
                    code = context.code().name if context.code() else "ABORTED"
                    raise
                except Exception:
                    code = "INTERNAL"
                    log.exception("unhandled error in %s", method)
                    span.set_status(trace.Status(trace.StatusCode.ERROR))
                    await context.abort(grpc.StatusCode.INTERNAL, "internal error")
                finally:
                    RPC_LATENCY.labels(service, method, code).observe(time.perf_counter() - started)

        return grpc.unary_unary_rpc_method_handler(
            observed,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


class GrpcServer:
    """A grpc.aio server with health and reflection, started and stopped by the runtime."""

    def __init__(self, *, service: str, host: str, port: int) -> None:
        self.service = service
        self.address = f"{host}:{port}"
        self.port = port
        self.health = health.aio.HealthServicer()
        self._names: list[str] = []
        self._server = grpc.aio.server(interceptors=[_ObservabilityInterceptor(service)])
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._server)

    def add_service(self, register: Register, full_name: str) -> None:
        """Register a servicer; ``full_name`` is e.g. ``billing.auth.v1.AuthService``."""
        register(self._server)
        self._names.append(full_name)

    async def start(self) -> int:
        """Bind, start, mark every service SERVING; returns the bound port."""
        reflection.enable_server_reflection(
            [*self._names, health.SERVICE_NAME, reflection.SERVICE_NAME], self._server
        )
        self.port = self._server.add_insecure_port(self.address)
        await self._server.start()
        for name in ["", *self._names]:
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        return self.port

    async def set_serving(self, serving: bool) -> None:
        """Report every service SERVING or NOT_SERVING (follows the dependencies)."""
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ["", *self._names]:
            await self.health.set(name, status)

    async def stop(self, grace: float) -> None:
        """Report NOT_SERVING, refuse new calls, let in-flight ones finish within ``grace``."""
        await self.health.enter_graceful_shutdown()
        await self._server.stop(grace)
