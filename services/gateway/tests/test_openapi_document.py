"""The served OpenAPI document states the rules the server applies (the full check is
schemathesis in tests/e2e/test_openapi_contract.py; these are the fast, pointed ones)."""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient

from .conftest import FakeAuth

Client = TestClient[Any, Any]


async def document(client: Client) -> dict[str, Any]:
    resp = await client.get("/openapi.json")
    assert resp.status == 200
    body: dict[str, Any] = await resp.json()
    return body


def query_schema(doc: dict[str, Any], path: str, name: str) -> dict[str, Any]:
    for parameter in doc["paths"][path]["post"]["parameters"]:
        if parameter["name"] == name:
            schema: dict[str, Any] = parameter["schema"]
            return schema
    raise AssertionError(name)


async def test_return_url_pattern_refuses_credentials_as_the_server_does(
    gateway: tuple[Client, FakeAuth],
) -> None:
    client, fake = gateway
    doc = await document(client)
    path = "/customers/{customer_id}/customer-portal/session"
    pattern = query_schema(doc, path, "return_url")["pattern"]
    assert re.fullmatch(pattern, "https://shop.example/account")
    assert not re.fullmatch(pattern, "https://user@host")

    key = fake.add_key("biz_1")
    customer_id = fake.add_customer("biz_1", "ada@example.com")
    resp = await client.post(
        path.format(customer_id=customer_id),
        params={"return_url": "https://user@host"},
        headers={"Authorization": f"Bearer {key}"},
    )
    body = await resp.json()
    assert resp.status == 422
    assert [e["field"] for e in body["errors"]] == ["return_url"]


async def test_every_body_operation_documents_the_statuses_a_body_can_cause(
    gateway: tuple[Client, FakeAuth],
) -> None:
    client, _ = gateway
    doc = await document(client)
    for path, method in (("/customers", "post"), ("/customers/{customer_id}", "patch")):
        responses = doc["paths"][path][method]["responses"]
        assert {"400", "401", "413", "415", "422", "429", "503"} <= responses.keys(), path
        assert "application/problem+json" in responses["400"]["content"]


async def test_query_parameters_offer_no_null_and_names_cannot_be_null_in_an_update(
    gateway: tuple[Client, FakeAuth],
) -> None:
    client, _ = gateway
    doc = await document(client)
    schema = query_schema(doc, "/customers/{customer_id}/customer-portal/session", "next")
    assert "anyOf" not in schema and schema["type"] == "string"
    update = doc["components"]["schemas"]["UpdateCustomerBody"]["properties"]
    assert update["name"]["type"] == "string" and "default" not in update["name"]
