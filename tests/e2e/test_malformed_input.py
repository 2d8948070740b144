"""Malformed bodies (issue 9.5) get a 4xx and write nothing, on the API and the portal.

JSON nested a thousand deep used to end in ``RecursionError`` (500); a form
with raw ``\\xff``, ``charset=bogus`` or a broken multipart body did too.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio
from devstack import Stack
from devstack.portal import PortalBusiness, PortalHttp, business_cookie, unique_email
from dodopayments import AsyncDodoPayments

pytestmark = pytest.mark.e2e

DEPTH = 1000
DEEP_JSON = b'{"name": "Deep", "metadata": ' + b'{"a": ' * DEPTH + b'"x"' + b"}" * DEPTH + b"}"

MALFORMED_FORMS = [
    pytest.param("application/x-www-form-urlencoded", b"name=\xff&csrf_token={csrf}", id="raw-ff"),
    pytest.param(
        "application/x-www-form-urlencoded; charset=bogus",
        b"name=Changed&csrf_token={csrf}",
        id="charset-bogus",
    ),
    pytest.param("multipart/form-data", b"--x\r\nbroken", id="multipart-no-boundary"),
    pytest.param("multipart/form-data; boundary=x", b"--x\r\nbroken", id="multipart-broken"),
]


@pytest_asyncio.fixture(loop_scope="session")
async def raw(stack: Stack) -> AsyncIterator[aiohttp.ClientSession]:
    async with PortalHttp.new_session() as session:
        yield session


async def customer_count(sdk: AsyncDodoPayments) -> int:
    return len((await sdk.customers.list(page_size=100)).items)


async def new_customer(sdk: AsyncDodoPayments) -> str:
    created = await sdk.customers.create(email=unique_email("malformed"), name="Ada Lovelace")
    return created.customer_id


async def test_deeply_nested_json_is_400_and_writes_nothing(
    stack: Stack, shop: PortalBusiness, shop_sdk: AsyncDodoPayments, raw: aiohttp.ClientSession
) -> None:
    customer_id = await new_customer(shop_sdk)
    before = await customer_count(shop_sdk)
    headers = {"Authorization": f"Bearer {shop.key('test')}", "Content-Type": "application/json"}
    create_body = DEEP_JSON.replace(b"{", b'{"email": "deep@example.com", ', 1)

    for method, path, body in (
        ("POST", "/customers", create_body),
        ("PATCH", f"/customers/{customer_id}", DEEP_JSON),
    ):
        async with raw.request(
            method, stack.gateway_url + path, data=body, headers=headers
        ) as response:
            problem = json.loads(await response.text())
            assert response.status == 400, (method, problem)
            assert response.content_type == "application/problem+json"
            assert problem["code"] == "MALFORMED_JSON"

    assert await customer_count(shop_sdk) == before
    assert (await shop_sdk.customers.retrieve(customer_id)).name == "Ada Lovelace"


@pytest.mark.parametrize(("content_type", "body"), MALFORMED_FORMS)
async def test_malformed_profile_form_is_a_4xx_page_and_writes_nothing(
    stack: Stack,
    shop: PortalBusiness,
    shop_sdk: AsyncDodoPayments,
    raw: aiohttp.ClientSession,
    content_type: str,
    body: bytes,
) -> None:
    customer_id = await new_customer(shop_sdk)
    before = await customer_count(shop_sdk)
    portal = PortalHttp(raw)
    link = (await shop_sdk.customers.customer_portal.create(customer_id)).link
    secret = await portal.sign_in_with_link(link, "test", shop.business_id)
    cookies = {business_cookie("test", shop.business_id): secret}
    profile_url = f"{stack.portal_urls.test}/b/{shop.business_id}/profile"
    csrf = (await portal.get(profile_url, cookies=cookies)).csrf_token()

    status, content_type_out = await _post_raw(raw, profile_url, cookies, content_type, body, csrf)

    assert status in (400, 413, 415), status
    assert "text/html" in content_type_out
    assert await customer_count(shop_sdk) == before
    assert (await shop_sdk.customers.retrieve(customer_id)).name == "Ada Lovelace"


@pytest.mark.parametrize(("content_type", "body"), MALFORMED_FORMS)
async def test_malformed_sign_in_form_is_a_4xx_page(
    stack: Stack,
    shop: PortalBusiness,
    shop_sdk: AsyncDodoPayments,
    raw: aiohttp.ClientSession,
    content_type: str,
    body: bytes,
) -> None:
    before = await customer_count(shop_sdk)
    portal = PortalHttp(raw)
    login = await portal.get(f"{stack.portal_urls.test}/login/{shop.business_id}")
    cookies = dict(login.set_cookies)
    email_body = body.replace(b"name=", b"email=").replace(b"Changed", b"x%40example.com")

    status, content_type_out = await _post_raw(
        raw, login.form_action(), cookies, content_type, email_body, login.csrf_token()
    )

    assert status in (400, 413, 415), status
    assert "text/html" in content_type_out
    assert await customer_count(shop_sdk) == before


async def _post_raw(
    raw: aiohttp.ClientSession,
    url: str,
    cookies: dict[str, str],
    content_type: str,
    body: bytes,
    csrf: str,
) -> tuple[int, str]:
    headers = {
        "Content-Type": content_type,
        "Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items()),
    }
    data = body.replace(b"{csrf}", csrf.encode())
    async with raw.post(url, data=data, headers=headers, allow_redirects=False) as response:
        await response.read()
        return response.status, response.headers.get("Content-Type", "")
