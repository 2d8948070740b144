"""The gateway's HTTP API end to end, against an in-memory stand-in for auth.

These check what a merchant's client sees on the wire: shapes, status codes,
problem bodies, headers, metrics and tracing. The same flows against the real
auth service are in test_integration_auth.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from billing.common.v1 import common_pb2
from billing_kit.testing import eventually, free_port
from gateway.app import create_app
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY

from .conftest import FakeAuth, settings_for

Client = TestClient[Any, Any]


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def problem(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/problem+json"
    body = await resp.json()
    assert body["status"] == status
    assert {"type", "title", "detail", "code", "message"} <= body.keys()
    return body


class TestCustomers:
    async def test_create_get_list(self, gateway: tuple[Client, FakeAuth]) -> None:
        client, fake = gateway
        key = fake.add_key("biz_1")
        resp = await client.post(
            "/customers",
            json={"email": "Ada@Example.com", "name": "Ada", "phone_number": "+393331234567"},
            headers=bearer(key),
        )
        assert resp.status == 200
        created = await resp.json()
        assert created["business_id"] == "biz_1"
        assert created["email"] == "ada@example.com"
        assert created["name"] == "Ada"
        assert created["phone_number"] == "+393331234567"
        assert created["customer_id"].startswith("cus_")
        assert created["created_at"].endswith("Z")

        resp = await client.get(f"/customers/{created['customer_id']}", headers=bearer(key))
        assert resp.status == 200
        assert await resp.json() == created

        resp = await client.get("/customers", params={"page_size": "5"}, headers=bearer(key))
        assert await resp.json() == {"items": [created]}

    async def test_phone_number_absent_is_null(self, gateway: tuple[Client, FakeAuth]) -> None:
        client, fake = gateway
        resp = await client.post(
            "/customers",
            json={"email": "b@example.com", "name": "B"},
            headers=bearer(fake.add_key("biz_1")),
        )
        assert (await resp.json())["phone_number"] is None

    async def test_list_is_scoped_filtered_and_paginated(
        self, gateway: tuple[Client, FakeAuth]
    ) -> None:
        client, fake = gateway
        key, other = fake.add_key("biz_1"), fake.add_key("biz_2")
        for i in range(3):
            await client.post(
                "/customers",
                json={"email": f"c{i}@example.com", "name": f"C{i}"},
                headers=bearer(key),
            )
        await client.post(
            "/customers", json={"email": "x@example.com", "name": "X"}, headers=bearer(other)
        )

        # Pages as the SDK walks them: none (or 0, or 1) is the first, 2 the second.
        page = await (
            await client.get("/customers?page_size=2&page_number=2", headers=bearer(key))
        ).json()
        assert [c["email"] for c in page["items"]] == ["c2@example.com"]
        for first in ("", "&page_number=0", "&page_number=1"):
            same = await (
                await client.get(f"/customers?page_size=2{first}", headers=bearer(key))
            ).json()
            assert len(same["items"]) == 2, first
        found = await (
            await client.get("/customers?email=c1@example.com", headers=bearer(key))
        ).json()
        assert [c["email"] for c in found["items"]] == ["c1@example.com"]
        theirs = await (await client.get("/customers", headers=bearer(other))).json()
        assert [c["email"] for c in theirs["items"]] == ["x@example.com"]


class TestAuthentication:
    @pytest.mark.parametrize(
        "headers",
        [{}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer "}, bearer("sk_test_nope")],
    )
    async def test_401_without_a_valid_key(
        self, gateway: tuple[Client, FakeAuth], headers: dict[str, str]
    ) -> None:
        client, fake = gateway
        resp = await client.post(
            "/customers", json={"email": "a@example.com", "name": "A"}, headers=headers
        )
        body = await problem(resp, 401)
        assert body["code"] == "UNAUTHORIZED"
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        assert fake.customers == []

    async def test_revoked_key_stops_working_within_the_cache_window(
        self, fake_auth: tuple[FakeAuth, int]
    ) -> None:
        fake, port = fake_auth
        app = create_app(settings_for(port, api_key_cache_seconds=0.3))
        async with TestClient(TestServer(app)) as client:
            key = fake.add_key("biz_1")
            assert (await client.get("/customers", headers=bearer(key))).status == 200
            fake.keys[key].revoked = True

            async def refused() -> bool:
                return (await client.get("/customers", headers=bearer(key))).status == 401

            await eventually(refused, within=2, message="revoked key still accepted")
            await problem(await client.get("/customers", headers=bearer(key)), 401)

    async def test_key_is_not_checked_with_auth_on_every_request(
        self, gateway: tuple[Client, FakeAuth]
    ) -> None:
        client, fake = gateway
        key = fake.add_key("biz_1")
        for _ in range(5):
            assert (await client.get("/customers", headers=bearer(key))).status == 200
        assert fake.calls["AuthenticateApiKey"] == 1


class TestScoping:
    async def test_foreign_and_other_mode_ids_read_like_missing_ones(
        self, gateway: tuple[Client, FakeAuth]
    ) -> None:
        client, fake = gateway
        mine_test = fake.add_key("biz_1")
        mine_live = fake.add_key("biz_1", common_pb2.MODE_LIVE)
        theirs = fake.add_key("biz_2")
        resp = await client.post(
            "/customers", json={"email": "a@example.com", "name": "A"}, headers=bearer(theirs)
        )
        their_id = (await resp.json())["customer_id"]
        resp = await client.post(
            "/customers", json={"email": "a@example.com", "name": "A"}, headers=bearer(mine_test)
        )
        test_id = (await resp.json())["customer_id"]

        foreign = await problem(
            await client.get(f"/customers/{their_id}", headers=bearer(mine_test)), 404
        )
        other_mode = await problem(
            await client.get(f"/customers/{test_id}", headers=bearer(mine_live)), 404
        )
        missing = await problem(
            await client.get("/customers/cus_doesnotexist", headers=bearer(mine_test)), 404
        )
        assert foreign == other_mode == missing
        assert their_id not in str(foreign)


class TestBadInput:
    async def _post(self, client: Client, key: str, data: Any, **kw: Any) -> Any:
        return await client.post(
            "/customers", data=data, headers={**bearer(key), **kw.pop("headers", {})}, **kw
        )

    @pytest.mark.parametrize(
        ("payload", "fields"),
        [
            ('{"name": "A"}', ["email"]),
            ('{"email": "nope", "name": "A"}', ["email"]),
            ('{"email": "a@example.com", "name": "A", "role": "admin"}', ["role"]),
            ('{"email": 5, "unknown": 1}', ["email", "name", "unknown"]),
        ],
    )
    async def test_invalid_fields_are_listed_and_nothing_is_written(
        self, gateway: tuple[Client, FakeAuth], payload: str, fields: list[str]
    ) -> None:
        client, fake = gateway
        resp = await self._post(
            client, fake.add_key("biz_1"), payload, headers={"Content-Type": "application/json"}
        )
        body = await problem(resp, 422)
        assert body["code"] == "INVALID_REQUEST_BODY"
        assert sorted(e["field"] for e in body["errors"]) == fields
        assert "CreateCustomer" not in fake.calls

    @pytest.mark.parametrize("payload", ['{"email": ', "[1, 2]", "\xff\xfe", ""])
    async def test_malformed_json_is_400(
        self, gateway: tuple[Client, FakeAuth], payload: str
    ) -> None:
        client, fake = gateway
        resp = await self._post(
            client,
            fake.add_key("biz_1"),
            payload.encode("latin-1"),
            headers={"Content-Type": "application/json"},
        )
        assert (await problem(resp, 400))["code"] == "MALFORMED_JSON"
        assert "CreateCustomer" not in fake.calls

    async def test_form_body_is_415(self, gateway: tuple[Client, FakeAuth]) -> None:
        client, fake = gateway
        resp = await self._post(
            client, fake.add_key("biz_1"), {"email": "a@example.com", "name": "A"}
        )
        await problem(resp, 415)

    async def test_huge_body_is_413(self, gateway: tuple[Client, FakeAuth]) -> None:
        client, fake = gateway
        resp = await self._post(
            client,
            fake.add_key("biz_1"),
            b"{" + b" " * 200_000 + b"}",
            headers={"Content-Type": "application/json"},
        )
        await problem(resp, 413)

    @pytest.mark.parametrize(
        "query", ["page_size=0", "page_size=1000", "page_number=-1", "name=A", "page_size=x"]
    )
    async def test_bad_query_is_422(self, gateway: tuple[Client, FakeAuth], query: str) -> None:
        client, fake = gateway
        resp = await client.get(f"/customers?{query}", headers=bearer(fake.add_key("biz_1")))
        assert (await problem(resp, 422))["code"] == "INVALID_QUERY_PARAMETERS"

    async def test_backend_validation_error_keeps_its_reason(
        self, gateway: tuple[Client, FakeAuth]
    ) -> None:
        client, fake = gateway
        resp = await client.post(
            "/customers",
            json={"email": "a@example.com", "name": "reject-me"},
            headers=bearer(fake.add_key("biz_1")),
        )
        body = await problem(resp, 422)
        assert body["code"] == "INVALID_NAME"


class TestEdge:
    async def test_unknown_route_and_method_are_problems(
        self, gateway: tuple[Client, FakeAuth]
    ) -> None:
        client, _ = gateway
        await problem(await client.get("/nope"), 404)
        resp = await client.delete("/customers")
        await problem(resp, 405)
        assert "POST" in resp.headers["Allow"]

    async def test_security_headers_on_success_and_error(
        self, gateway: tuple[Client, FakeAuth]
    ) -> None:
        client, fake = gateway
        for resp in (
            await client.get("/customers", headers=bearer(fake.add_key("biz_1"))),
            await client.get("/customers"),
        ):
            assert resp.headers["X-Content-Type-Options"] == "nosniff"
            assert (
                resp.headers["Content-Security-Policy"]
                == "default-src 'none'; frame-ancestors 'none'"
            )
            assert resp.headers["Referrer-Policy"] == "no-referrer"
            assert "aiohttp" not in resp.headers["Server"]

    async def test_auth_down_is_503_and_retryable(self, gateway: tuple[Client, FakeAuth]) -> None:
        client, fake = gateway
        key = fake.add_key("biz_1")
        fake.unavailable = True
        resp = await client.get("/customers", headers=bearer(key))
        body = await problem(resp, 503)
        assert body["code"] == "SERVICE_UNAVAILABLE"
        assert resp.headers["x-should-retry"] == "true"

    async def test_auth_unreachable_is_503(self) -> None:
        app = create_app(settings_for(free_port(), backend_timeout_seconds=0.5))
        async with TestClient(TestServer(app)) as client:
            await problem(await client.get("/customers", headers=bearer("sk_test_x")), 503)

    async def test_latency_is_recorded_by_route_template(
        self, gateway: tuple[Client, FakeAuth]
    ) -> None:
        client, fake = gateway
        labels = {
            "service": "gateway",
            "route": "/customers/{customer_id}",
            "method": "GET",
            "status": "404",
        }
        before = REGISTRY.get_sample_value("http_server_duration_seconds_count", labels) or 0
        await client.get("/customers/cus_123", headers=bearer(fake.add_key("biz_1")))
        assert REGISTRY.get_sample_value("http_server_duration_seconds_count", labels) == before + 1

    async def test_server_span_continues_the_callers_trace(
        self, gateway: tuple[Client, FakeAuth]
    ) -> None:
        client, fake = gateway
        exporter = InMemorySpanExporter()
        provider = trace.get_tracer_provider()
        if not isinstance(provider, TracerProvider):
            provider = TracerProvider()
            trace.set_tracer_provider(provider)
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
        await client.get(
            "/customers",
            headers={
                **bearer(fake.add_key("biz_1")),
                "traceparent": f"00-{trace_id}-00f067aa0ba902b7-01",
            },
        )
        spans = [s for s in exporter.get_finished_spans() if s.name == "GET /customers"]
        assert spans, [s.name for s in exporter.get_finished_spans()]
        assert format(spans[-1].context.trace_id, "032x") == trace_id
        assert (
            spans[-1].parent is not None
            and format(spans[-1].parent.span_id, "016x") == "00f067aa0ba902b7"
        )

    async def test_openapi_describes_the_customer_routes(
        self, gateway: tuple[Client, FakeAuth]
    ) -> None:
        client, _ = gateway
        doc = await (await client.get("/openapi.json")).json()
        assert doc["openapi"].startswith("3.1")
        assert {"post", "get"} <= doc["paths"]["/customers"].keys()
        assert "email" in doc["components"]["schemas"]["CreateCustomerBody"]["required"]


async def test_unexpected_failure_is_a_500_problem_without_a_trace(
    fake_auth: tuple[FakeAuth, int],
) -> None:
    _, port = fake_auth
    app = create_app(settings_for(port))

    async def explode(request: Any) -> Any:
        raise RuntimeError("internal detail sk_live_leak")

    app.router.add_get("/explode", explode)
    async with TestClient(TestServer(app)) as client:
        resp = await client.get("/explode")
        body = await problem(resp, 500)
        text = str(body)
        assert body["code"] == "INTERNAL_ERROR"
        assert "sk_live_leak" not in text and "Traceback" not in text
