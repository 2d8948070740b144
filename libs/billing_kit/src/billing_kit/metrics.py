"""Prometheus metrics shared by every service.

Labels are few and fixed (service, method/handler, outcome): never ids,
emails or anything unbounded.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RPC_LATENCY = Histogram(
    "rpc_server_duration_seconds",
    "Time to answer one gRPC call.",
    ["service", "method", "code"],
)
RPC_CLIENT_LATENCY = Histogram(
    "rpc_client_duration_seconds",
    "Time an outgoing gRPC call took, as the caller saw it.",
    ["service", "method", "code"],
)
HTTP_LATENCY = Histogram(
    "http_server_duration_seconds",
    "Time to answer one HTTP request.",
    ["service", "route", "method", "status"],
)
EVENTS_PUBLISHED = Counter(
    "events_published_total",
    "Events the outbox relay published and the broker confirmed.",
    ["service", "type"],
)
EVENTS_HANDLED = Counter(
    "events_handled_total",
    "Events a consumer finished, by outcome: handled, duplicate, failed, dead_lettered.",
    ["service", "handler", "outcome"],
)
OUTBOX_BACKLOG = Gauge(
    "outbox_backlog_events",
    "Events written to the outbox and not yet confirmed by the broker.",
    ["service"],
)
OUTBOX_OLDEST_AGE = Gauge(
    "outbox_oldest_pending_age_seconds",
    "Age of the oldest unpublished outbox event (0 when empty).",
    ["service"],
)
