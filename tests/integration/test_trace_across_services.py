"""One trace follows a merchant request from the gateway into the consumer it causes.

Gateway HTTP span -> gRPC client/server spans into auth -> outbox (the
context is stored with the event) -> relay PRODUCER span -> RabbitMQ headers
-> notifications' CONSUMER span. Everything runs in this process so an
in-memory exporter sees every span.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from auth.app import create_app as create_auth
from auth.config import AuthSettings
from billing.auth.v1 import auth_pb2, auth_pb2_grpc
from billing.common.v1 import common_pb2
from billing_kit.grpc_client import create_channel
from billing_kit.telemetry import setup_tracing
from billing_kit.testing import BrokerNamespace, eventually, unique_name
from gateway.app import GatewayRuntime
from gateway.config import GatewaySettings
from notifications.app import create_app as create_notifications
from notifications.config import NotificationsSettings
from notifications.models import RecipientKey
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def exporter() -> InMemorySpanExporter:
    setup_tracing("tests")
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    spans = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    return spans


@pytest.fixture(scope="module")
async def stack(
    mongo_url: str, broker_namespace: BrokerNamespace, exporter: InMemorySpanExporter
) -> AsyncIterator[dict[str, Any]]:
    common: dict[str, Any] = {
        "mongodb_url": mongo_url,
        "amqp_url": broker_namespace.amqp_url,
        "events_exchange": broker_namespace.exchange,
        "queue_prefix": broker_namespace.queue_prefix,
        "grpc_port": 0,
        "ops_port": 0,
        "shutdown_grace_seconds": 2,
        "outbox_poll_seconds": 0.2,
    }
    auth = create_auth(AuthSettings(mongodb_database=unique_name("tr_auth"), **common))
    notifications = create_notifications(
        NotificationsSettings(mongodb_database=unique_name("tr_notif"), **common)
    )
    await auth.start()
    await notifications.start()
    gateway = GatewayRuntime(
        GatewaySettings(
            auth_target=f"127.0.0.1:{auth.grpc_port}",
            http_port=0,
            ops_port=0,
            shutdown_grace_seconds=2,
        )
    )
    await gateway.start()
    channel = create_channel(f"127.0.0.1:{auth.grpc_port}")
    try:
        yield {
            "gateway": f"http://127.0.0.1:{gateway.http_port}",
            "auth": auth_pb2_grpc.AuthServiceStub(channel),
            "notifications": notifications,
        }
    finally:
        await channel.close()
        await gateway.stop()
        await notifications.stop()
        await auth.stop()


def _consumer_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.kind == SpanKind.CONSUMER]


async def test_a_customer_created_at_the_gateway_is_one_trace_to_the_consumer(
    stack: dict[str, Any], exporter: InMemorySpanExporter
) -> None:
    business = await stack["auth"].CreateBusiness(auth_pb2.CreateBusinessRequest(name="Trace Co"))
    key = await stack["auth"].CreateApiKey(
        auth_pb2.CreateApiKeyRequest(business_id=business.business_id, mode=common_pb2.MODE_TEST)
    )
    exporter.clear()
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{stack['gateway']}/customers",
            json={"email": "tracy@example.com", "name": "Tracy"},
            headers={"Authorization": f"Bearer {key.secret}"},
        ) as resp:
            assert resp.status == 200, await resp.text()
            customer_id = (await resp.json())["customer_id"]

    server_spans = [
        s
        for s in exporter.get_finished_spans()
        if s.kind == SpanKind.SERVER and s.name == "POST /customers"
    ]
    assert server_spans, [s.name for s in exporter.get_finished_spans()]
    trace_id = server_spans[0].context.trace_id

    await eventually(
        lambda: _consumer_spans(exporter), within=10, message="no consumer span was recorded"
    )
    key_of = RecipientKey(business_id=business.business_id, mode="test", customer_id=customer_id)
    assert await stack["notifications"].repository.get_recipient(key_of) is not None

    spans = exporter.get_finished_spans()
    in_trace = {s.kind for s in spans if s.context.trace_id == trace_id}
    # The gateway's HTTP span, the gRPC call into auth, the relay's publish and
    # notifications' handling all share the trace id of the original request.
    assert {SpanKind.SERVER, SpanKind.CLIENT, SpanKind.PRODUCER, SpanKind.CONSUMER} <= in_trace
    consumer = [s for s in _consumer_spans(exporter) if s.context.trace_id == trace_id]
    assert consumer and consumer[0].parent is not None
