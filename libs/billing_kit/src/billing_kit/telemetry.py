"""OpenTelemetry tracing from the standard ``OTEL_*`` variables.

No exporter is installed unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or
``OTEL_TRACES_EXPORTER=otlp``) is set, so development and tests pay nothing.
``BILLING_TRACES_FILE`` adds a second exporter that appends each finished
span as one JSON line to that file (the e2e stack uses it to check what
leaves a process in spans). Every exporter sees spans through
:class:`RedactingSpanExporter`: names, attributes and events (exception
messages and stack traces) have prefixed secrets redacted
(:mod:`billing_kit.redaction`), whatever instrumentation put them there.
Trace context travels as W3C ``traceparent``/``tracestate`` in gRPC metadata
and in AMQP message headers.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from billing_kit.redaction import redact_secrets

TRACES_FILE_ENV = "BILLING_TRACES_FILE"

_configured = False


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact_secrets(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_redact_value(v) for v in value)
    return value


def _redact_attributes(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    return {key: _redact_value(value) for key, value in (attributes or {}).items()}


def redacted_span(span: ReadableSpan) -> ReadableSpan:
    """A copy of ``span`` with prefixed secrets redacted from its name, attributes and events."""
    return ReadableSpan(
        name=redact_secrets(span.name),
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=_redact_attributes(span.attributes),
        events=[
            Event(
                redact_secrets(event.name),
                _redact_attributes(event.attributes),
                timestamp=event.timestamp,
            )
            for event in span.events
        ],
        links=span.links,
        kind=span.kind,
        status=span.status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class RedactingSpanExporter(SpanExporter):
    """Hands an exporter copies of the spans with every prefixed secret redacted."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Redact, then export."""
        return self.inner.export([redacted_span(span) for span in spans])

    def shutdown(self) -> None:
        """Shut the wrapped exporter down."""
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Flush the wrapped exporter."""
        return self.inner.force_flush(timeout_millis)


class JsonLinesSpanExporter(SpanExporter):
    """Appends each span as one JSON line to a file.

    It runs on the batch processor's worker thread, never on the event loop,
    so the blocking file write is harmless.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Append the spans; a failed write is reported, never raised."""
        lines = "".join(span.to_json(indent=None) + "\n" for span in spans)
        try:
            with self._lock, self.path.open("a", encoding="utf-8") as out:
                out.write(lines)
        except OSError:
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """Nothing is held open between exports."""

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Every export is written when it returns."""
        return True


def setup_tracing(service_name: str) -> None:
    """Install a tracer provider once per process (idempotent)."""
    global _configured
    if _configured:
        return
    _configured = True
    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return  # a test (or the host) installed its own provider
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", service_name)})
    provider = TracerProvider(resource=resource)
    wants_otlp = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    )
    if wants_otlp and os.environ.get("OTEL_TRACES_EXPORTER", "otlp") != "none":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(RedactingSpanExporter(OTLPSpanExporter())))
    traces_file = os.environ.get(TRACES_FILE_ENV)
    if traces_file:
        provider.add_span_processor(
            BatchSpanProcessor(RedactingSpanExporter(JsonLinesSpanExporter(Path(traces_file))))
        )
    trace.set_tracer_provider(provider)


def get_tracer(name: str) -> trace.Tracer:
    """A tracer for one module."""
    return trace.get_tracer(name)


def inject_trace_context() -> dict[str, str]:
    """The current trace context as W3C headers (empty when there is no span)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def extract_trace_context(headers: Mapping[str, object] | None) -> otel_context.Context:
    """A context whose parent is the span described by W3C headers."""
    carrier = {k.lower(): str(v) for k, v in (headers or {}).items()}
    return propagate.extract(carrier)


def current_trace_ids() -> tuple[str | None, str | None]:
    """(trace_id, span_id) of the active span as hex, for log lines."""
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None, None
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")
