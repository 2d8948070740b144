"""The merchant API against the real auth service, a real SecantusDB and RabbitMQ.

The official ``dodopayments`` SDK, pointed at the gateway by ``base_url``, must
create, retrieve and list customers; raw HTTP checks every error case and that
a refused request wrote nothing to auth's database.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import dodopayments
import pytest
from billing.auth.v1 import auth_pb2, auth_pb2_grpc
from billing.common.v1 import common_pb2
from billing_kit.testing import BrokerNamespace, eventually
from pymongo.asynchronous.database import AsyncDatabase

from .conftest import auth_and_gateway

pytestmark = pytest.mark.integration

CACHE_SECONDS = 0.5


@dataclass
class Stack:
    base_url: str
    ops_url: str
    stub: auth_pb2_grpc.AuthServiceStub
    auth_db: AsyncDatabase[dict[str, Any]]
    http: aiohttp.ClientSession

    async def new_key(self, business_id: str, mode: int = common_pb2.MODE_TEST) -> tuple[str, str]:
        reply = await self.stub.CreateApiKey(
            auth_pb2.CreateApiKeyRequest(business_id=business_id, mode=mode, name="tests")
        )
        return reply.secret, reply.api_key.key_id

    async def new_business(self, name: str) -> str:
        reply = await self.stub.CreateBusiness(auth_pb2.CreateBusinessRequest(name=name))
        return str(reply.business_id)

    async def customer_count(self) -> int:
        return await self.auth_db["customers"].count_documents({})


@pytest.fixture(scope="module")
async def stack(mongo_url: str, broker_namespace: BrokerNamespace) -> AsyncIterator[Stack]:
    async with (
        auth_and_gateway(
            mongo_url, broker_namespace, gateway={"api_key_cache_seconds": CACHE_SECONDS}
        ) as (auth, gateway),
        aiohttp.ClientSession() as http,
    ):
        yield Stack(
            base_url=f"http://127.0.0.1:{gateway.http_port}",
            ops_url=f"http://127.0.0.1:{gateway.ops_port}",
            stub=auth_pb2_grpc.AuthServiceStub(auth.channel),
            auth_db=auth.runtime.db,
            http=http,
        )


def sdk(stack: Stack, key: str) -> dodopayments.DodoPayments:
    # No retries: a test must see the first answer, not a retried one.
    return dodopayments.DodoPayments(bearer_token=key, base_url=stack.base_url, max_retries=0)


async def test_gateway_is_ready_when_auth_answers(stack: Stack) -> None:
    async with stack.http.get(f"{stack.ops_url}/readyz") as resp:
        body = await resp.json()
    assert resp.status == 200, body
    assert body["checks"]["auth"] is True


async def test_sdk_creates_retrieves_and_lists_customers(stack: Stack) -> None:
    business_id = await stack.new_business("Acme")
    key, _ = await stack.new_key(business_id)
    client = sdk(stack, key)

    created = await asyncio.to_thread(
        client.customers.create,
        email="ada@example.com",
        name="Ada Lovelace",
        phone_number="+393331234567",
    )
    assert created.business_id == business_id
    assert created.email == "ada@example.com"
    assert created.name == "Ada Lovelace"
    assert created.phone_number == "+393331234567"
    assert created.created_at.tzinfo is not None

    again = await asyncio.to_thread(client.customers.create, email="ada@example.com", name="Ada")
    assert again.customer_id == created.customer_id  # same email: the existing customer

    fetched = await asyncio.to_thread(client.customers.retrieve, created.customer_id)
    assert fetched.customer_id == created.customer_id
    assert fetched.email == "ada@example.com"

    bob = await asyncio.to_thread(client.customers.create, email="bob@example.com", name="Bob")
    page = await asyncio.to_thread(client.customers.list, page_size=10, page_number=0)
    assert {c.customer_id for c in page.items} == {created.customer_id, bob.customer_id}
    first = await asyncio.to_thread(client.customers.list, page_size=1)
    second = await asyncio.to_thread(client.customers.list, page_size=1, page_number=2)
    assert len(first.items) == len(second.items) == 1
    assert first.items[0].customer_id != second.items[0].customer_id
    # The SDK's own auto-pagination (no page number, then 2) reaches both.
    walked = await asyncio.to_thread(lambda: list(client.customers.list(page_size=1)))
    assert {c.customer_id for c in walked} == {created.customer_id, bob.customer_id}
    by_email = await asyncio.to_thread(client.customers.list, email="bob@example.com")
    assert [c.customer_id for c in by_email.items] == [bob.customer_id]


async def test_async_sdk_works_too(stack: Stack) -> None:
    key, _ = await stack.new_key(await stack.new_business("Async Co"))
    async with dodopayments.AsyncDodoPayments(
        bearer_token=key, base_url=stack.base_url, max_retries=0
    ) as client:
        created = await client.customers.create(email="eve@example.com", name="Eve")
        assert (await client.customers.retrieve(created.customer_id)).name == "Eve"


async def test_sdk_surfaces_errors_as_its_own_exceptions(stack: Stack) -> None:
    key, _ = await stack.new_key(await stack.new_business("Errors Inc"))
    with pytest.raises(dodopayments.AuthenticationError):
        await asyncio.to_thread(sdk(stack, "sk_test_wrong").customers.list)
    with pytest.raises(dodopayments.NotFoundError) as not_found:
        await asyncio.to_thread(sdk(stack, key).customers.retrieve, "cus_missing")
    assert isinstance(not_found.value.body, dict) and not_found.value.body["code"] == "NOT_FOUND"
    before = await stack.customer_count()
    with pytest.raises(dodopayments.UnprocessableEntityError) as invalid:
        await asyncio.to_thread(sdk(stack, key).customers.create, email="nope", name="N")
    assert isinstance(invalid.value.body, dict)
    assert [e["field"] for e in invalid.value.body["errors"]] == ["email"]
    assert await stack.customer_count() == before


async def test_other_business_and_other_mode_read_as_missing(stack: Stack) -> None:
    mine = await stack.new_business("Mine")
    theirs = await stack.new_business("Theirs")
    my_test, _ = await stack.new_key(mine)
    my_live, _ = await stack.new_key(mine, common_pb2.MODE_LIVE)
    their_key, _ = await stack.new_key(theirs)
    their_customer = await asyncio.to_thread(
        sdk(stack, their_key).customers.create, email="t@example.com", name="T"
    )
    my_test_customer = await asyncio.to_thread(
        sdk(stack, my_test).customers.create, email="m@example.com", name="M"
    )

    async def get(key: str, customer_id: str) -> tuple[int, Any]:
        async with stack.http.get(
            f"{stack.base_url}/customers/{customer_id}",
            headers={"Authorization": f"Bearer {key}"},
        ) as resp:
            return resp.status, await resp.json()

    foreign = await get(my_test, their_customer.customer_id)
    other_mode = await get(my_live, my_test_customer.customer_id)
    missing = await get(my_test, "cus_doesnotexist")
    assert foreign[0] == other_mode[0] == missing[0] == 404
    assert foreign[1] == other_mode[1] == missing[1]

    async with stack.http.get(
        f"{stack.base_url}/customers", headers={"Authorization": f"Bearer {my_live}"}
    ) as resp:
        assert (await resp.json())["items"] == []  # test-mode customers stay out of live


@pytest.mark.parametrize(
    ("data", "content_type", "status", "code"),
    [
        (b'{"name": "No Email"}', "application/json", 422, "INVALID_REQUEST_BODY"),
        (b'{"email": "bad", "name": "B"}', "application/json", 422, "INVALID_REQUEST_BODY"),
        (
            b'{"email": "x@example.com", "name": "X", "is_admin": true}',
            "application/json",
            422,
            "INVALID_REQUEST_BODY",
        ),
        (b'{"email": "x@example.com",', "application/json", 400, "MALFORMED_JSON"),
        (b"email=x@example.com&name=X", "application/x-www-form-urlencoded", 415, None),
    ],
)
async def test_bad_create_is_refused_and_writes_nothing(
    stack: Stack, data: bytes, content_type: str, status: int, code: str | None
) -> None:
    key, _ = await stack.new_key(await stack.new_business("Strict"))
    before = await stack.customer_count()
    async with stack.http.post(
        f"{stack.base_url}/customers",
        data=data,
        headers={"Authorization": f"Bearer {key}", "Content-Type": content_type},
    ) as resp:
        body = await resp.json(content_type=None)
    assert resp.status == status, body
    assert resp.content_type == "application/problem+json"
    if code is not None:
        assert body["code"] == code
    assert await stack.customer_count() == before


@pytest.mark.parametrize(
    "authorization", [None, "Bearer sk_test_not_a_real_key", "Token abc", "Bearer"]
)
async def test_missing_or_wrong_key_is_401(stack: Stack, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    before = await stack.customer_count()
    async with stack.http.post(
        f"{stack.base_url}/customers",
        json={"email": "z@example.com", "name": "Z"},
        headers=headers,
    ) as resp:
        body = await resp.json(content_type=None)
    assert resp.status == 401
    assert body["code"] == "UNAUTHORIZED"
    assert await stack.customer_count() == before


async def test_revoked_key_is_refused_within_the_cache_window(stack: Stack) -> None:
    business_id = await stack.new_business("Revoker")
    key, key_id = await stack.new_key(business_id)
    headers = {"Authorization": f"Bearer {key}"}
    async with stack.http.get(f"{stack.base_url}/customers", headers=headers) as resp:
        assert resp.status == 200
    await stack.stub.RevokeApiKey(
        auth_pb2.RevokeApiKeyRequest(business_id=business_id, key_id=key_id)
    )

    async def refused() -> bool:
        async with stack.http.get(f"{stack.base_url}/customers", headers=headers) as resp:
            return resp.status == 401

    # Honoured within the cache window (a little slack for a slow machine).
    await eventually(refused, within=CACHE_SECONDS + 2, message="revoked key still accepted")
