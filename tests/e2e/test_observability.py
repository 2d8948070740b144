"""What an operator sees: metrics on every service, JSON logs with trace ids, no emails."""

from __future__ import annotations

import json
import uuid

import aiohttp
import pytest
from billing_kit.testing import eventually
from devstack import Stack
from devstack.topology import ALL_SERVICES, BACKEND_SERVICES
from dodopayments import AsyncDodoPayments

pytestmark = pytest.mark.e2e


async def _metrics(stack: Stack, service: str, http: aiohttp.ClientSession) -> str:
    async with http.get(f"{stack.ops_url(service)}/metrics") as resp:  # type: ignore[arg-type]
        assert resp.status == 200
        return await resp.text()


async def test_metrics_logs_and_traces_follow_a_customer_creation(
    stack: Stack, sdk: AsyncDodoPayments
) -> None:
    email = f"grace-{uuid.uuid4().hex[:10]}@example.com"
    await sdk.customers.create(email=email, name="Grace Hopper")
    handled = (
        'events_handled_total{handler="customer-directory",outcome="handled",'
        'service="notifications"}'
    )
    async with aiohttp.ClientSession() as http:

        async def notifications_handled_it() -> bool:
            return handled in await _metrics(stack, "notifications", http)

        await eventually(
            notifications_handled_it,
            within=20,
            interval=0.25,
            message="notifications never handled customer.created",
        )
        scraped = {name: await _metrics(stack, name, http) for name in ALL_SERVICES}

    for name in BACKEND_SERVICES:
        assert "# TYPE rpc_server_duration_seconds histogram" in scraped[name], name
    gateway = scraped["gateway"]
    assert 'http_server_duration_seconds_count{method="POST",route="/customers"' in gateway
    assert "rpc_client_duration_seconds_count{" in gateway
    assert 'method="/billing.auth.v1.AuthService/CreateCustomer"' in scraped["auth"]
    assert 'events_published_total{service="auth",type="customer.created"}' in scraped["auth"]
    assert "outbox_backlog_events{" in scraped["auth"]
    assert "outbox_oldest_pending_age_seconds{" in scraped["auth"]

    # Logs: one JSON object per line, trace ids on request lines, and the
    # customer's email never written in full anywhere.
    traced = 0
    for name in ALL_SERVICES:
        text = (stack.log_dir / f"{name}.log").read_text(errors="replace")
        assert email not in text, f"{name} logged a full customer email"
        for line in text.splitlines():
            if not line.startswith("{"):
                continue
            record = json.loads(line)
            assert {"time", "level", "service", "message"} <= set(record)
            traced += "trace_id" in record
    assert traced > 0, "no log line carried a trace id"
