"""Bad API input gets a 4xx JSON problem and writes nothing."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import dodopayments
import pytest
import pytest_asyncio
from devstack import BusinessWithKey, Stack
from dodopayments import AsyncDodoPayments

pytestmark = pytest.mark.e2e


@pytest_asyncio.fixture(loop_scope="session")
async def http(stack: Stack) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=stack.gateway_url) as session:
        yield session


async def customer_ids(sdk: AsyncDodoPayments) -> list[str]:
    """Every customer id the merchant can see (small data: the first page is all of it)."""
    page = await sdk.customers.list(page_size=100)
    return sorted(c.customer_id for c in page.items)


async def post_customer(
    http: aiohttp.ClientSession, key: str, body: str
) -> tuple[int, dict[str, Any]]:
    async with http.post(
        "/customers",
        data=body,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    ) as response:
        assert "json" in response.headers.get("Content-Type", ""), response.headers
        return response.status, json.loads(await response.text())


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"name": "No Email"}, id="missing-email"),
        pytest.param({"email": "not-an-email", "name": "Bad Email"}, id="invalid-email"),
        pytest.param({"email": "{unique}", "name": "Extra", "is_admin": True}, id="unknown-field"),
        pytest.param({"email": "{unique}", "name": 42}, id="wrong-type"),
    ],
)
async def test_invalid_create_is_rejected_and_writes_nothing(
    http: aiohttp.ClientSession,
    merchant: BusinessWithKey,
    sdk: AsyncDodoPayments,
    body: dict[str, Any],
) -> None:
    email = f"bad-{uuid.uuid4().hex[:10]}@example.com"
    payload = {k: (email if v == "{unique}" else v) for k, v in body.items()}
    before = await customer_ids(sdk)

    status, problem = await post_customer(http, merchant.api_key_secret, json.dumps(payload))

    assert 400 <= status < 500, problem
    assert problem.get("status") == status
    assert problem.get("code")
    assert await customer_ids(sdk) == before
    assert (await sdk.customers.list(email=email)).items == []


async def test_malformed_json_is_rejected(
    http: aiohttp.ClientSession, merchant: BusinessWithKey, sdk: AsyncDodoPayments
) -> None:
    before = await customer_ids(sdk)

    status, problem = await post_customer(http, merchant.api_key_secret, '{"email": ')

    assert status == 400, problem
    assert await customer_ids(sdk) == before


async def test_wrong_api_key_is_401_and_writes_nothing(
    stack: Stack, http: aiohttp.ClientSession, sdk: AsyncDodoPayments
) -> None:
    email = f"nokey-{uuid.uuid4().hex[:10]}@example.com"
    before = await customer_ids(sdk)

    status, problem = await post_customer(
        http, "sk_test_" + "x" * 40, json.dumps({"email": email, "name": "Nobody"})
    )

    assert status == 401, problem
    async with AsyncDodoPayments(
        bearer_token="sk_test_not_a_real_key", base_url=stack.gateway_url, max_retries=0
    ) as stranger:
        with pytest.raises(dodopayments.AuthenticationError):
            await stranger.customers.create(email=email, name="Nobody")
    assert await customer_ids(sdk) == before


async def test_missing_authorization_is_401(http: aiohttp.ClientSession) -> None:
    async with http.get("/customers") as response:
        assert response.status == 401
        assert "json" in response.headers["Content-Type"]


async def test_another_business_customer_is_not_found(
    stack: Stack,
    sdk: AsyncDodoPayments,
    other_merchant: BusinessWithKey,
) -> None:
    async with AsyncDodoPayments(
        bearer_token=other_merchant.api_key_secret, base_url=stack.gateway_url, max_retries=0
    ) as other:
        theirs = await other.customers.create(
            email=f"theirs-{uuid.uuid4().hex[:10]}@example.com", name="Their Customer"
        )
    before = await customer_ids(sdk)

    with pytest.raises(dodopayments.NotFoundError) as caught:
        await sdk.customers.retrieve(theirs.customer_id)

    assert caught.value.status_code == 404
    assert theirs.customer_id not in before
    assert await customer_ids(sdk) == before
