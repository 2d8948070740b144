"""Portal pages against the real auth service (SecantusDB + RabbitMQ).

The merchant creates a magic link through the official SDK; the customer
confirms it, lands in the portal, edits the profile and signs out; the same
link again is "already used". Emails are auth's business (notifications is not
started here): these tests look at what the browser sees.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from http.cookies import SimpleCookie
from urllib.parse import urlsplit

import aiohttp
import dodopayments
import pytest
from billing.auth.v1 import auth_pb2, auth_pb2_grpc
from billing.common.v1 import common_pb2
from billing_kit.testing import BrokerNamespace

from .conftest import auth_and_gateway

pytestmark = pytest.mark.integration

CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Stack:
    base_url: str
    stub: auth_pb2_grpc.AuthServiceStub
    http: aiohttp.ClientSession

    async def merchant(self, name: str) -> tuple[str, dodopayments.DodoPayments]:
        business = await self.stub.CreateBusiness(
            auth_pb2.CreateBusinessRequest(
                name=name, branding=auth_pb2.Branding(primary_color="#0A7D5A")
            )
        )
        key = await self.stub.CreateApiKey(
            auth_pb2.CreateApiKeyRequest(
                business_id=business.business_id, mode=common_pb2.MODE_TEST, name="tests"
            )
        )
        client = dodopayments.DodoPayments(
            bearer_token=key.secret, base_url=self.base_url, max_retries=0
        )
        return business.business_id, client


@pytest.fixture(scope="module")
async def stack(mongo_url: str, broker_namespace: BrokerNamespace) -> AsyncIterator[Stack]:
    # No notifications here: emails fail quietly.
    auth_settings = {"notifications_target": "127.0.0.1:1", "notifications_timeout_seconds": 0.5}
    async with (
        auth_and_gateway(mongo_url, broker_namespace, auth=auth_settings) as (auth, gateway),
        # __Host- cookies are Secure: a client jar would not send them over plain
        # http, so Browser carries them by hand.
        aiohttp.ClientSession() as http,
    ):
        yield Stack(
            base_url=f"http://127.0.0.1:{gateway.http_port}",
            stub=auth_pb2_grpc.AuthServiceStub(auth.channel),
            http=http,
        )


class Browser:
    """Just enough of a browser: follows nothing, keeps __Host- cookies by hand."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.cookies: dict[str, str] = {}

    def _remember(self, resp: aiohttp.ClientResponse) -> None:
        jar: SimpleCookie = SimpleCookie()
        for header in resp.headers.getall("Set-Cookie", []):
            jar.load(header)
        for name, morsel in jar.items():
            if morsel["max-age"] == "0":
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = morsel.value

    def _headers(self) -> dict[str, str]:
        return {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}

    async def get(self, path: str) -> tuple[int, str, str, dict[str, str]]:
        async with self.stack.http.get(
            self.stack.base_url + path, headers=self._headers(), allow_redirects=False
        ) as resp:
            self._remember(resp)
            html = await resp.text()
        match = CSRF_INPUT.search(html)
        return resp.status, html, match.group(1) if match else "", dict(resp.headers)

    async def post(self, path: str, data: dict[str, str]) -> tuple[int, str, dict[str, str]]:
        async with self.stack.http.post(
            self.stack.base_url + path, data=data, headers=self._headers(), allow_redirects=False
        ) as resp:
            self._remember(resp)
            return resp.status, await resp.text(), dict(resp.headers)


def local_path(link: str) -> str:
    return urlsplit(link).path


async def test_magic_link_to_profile_and_back_out(stack: Stack) -> None:
    business_id, client = await stack.merchant("Acme Integration")
    customer = await asyncio.to_thread(
        client.customers.create, email="ada@example.com", name="Ada Lovelace"
    )
    session = await asyncio.to_thread(
        client.customers.customer_portal.create,
        customer.customer_id,
        return_url="https://shop.example/account",
    )
    assert session.link.startswith("http://localhost:8080/test/link/cpt_")
    path = local_path(session.link)

    browser = Browser(stack)
    status, html, csrf, headers = await browser.get(path)
    assert status == 200 and 'id="confirm-link"' in html
    assert headers["Referrer-Policy"] == "no-referrer"
    status, _, headers = await browser.post(path, {"csrf_token": csrf})
    assert status == 303, headers
    assert headers["Location"] == f"http://localhost:8080/test/b/{business_id}/"
    assert f"__Host-cp_test_{business_id}" in browser.cookies

    status, html, csrf, _ = await browser.get(f"/test/b/{business_id}/profile")
    assert status == 200
    assert "ada@example.com" in html
    assert 'id="return-to-business"' in html and "https://shop.example/account" in html
    status, html, _ = await browser.post(
        f"/test/b/{business_id}/profile",
        {"csrf_token": csrf, "name": "Ada King", "phone_number": "+39 333 123 4567"},
    )
    assert status == 303, html
    fetched = await asyncio.to_thread(client.customers.retrieve, customer.customer_id)
    assert (fetched.name, fetched.phone_number) == ("Ada King", "+393331234567")

    # The merchant API's PATCH goes through the same rules.
    updated = await asyncio.to_thread(
        client.customers.update, customer.customer_id, name="Ada Byron"
    )
    assert updated.name == "Ada Byron" and updated.phone_number == "+393331234567"

    # The same link again: already used, with a new link offered.
    other = Browser(stack)
    status, html, _, _ = await other.get(path)
    assert status == 410 and "already been used" in html

    status, _, headers = await browser.post(f"/test/b/{business_id}/logout", {"csrf_token": csrf})
    assert status == 303
    status, _, _, headers = await browser.get(f"/test/b/{business_id}/profile")
    assert status == 303 and "/test/login/" in headers["Location"]


async def test_static_link_answers_the_same_for_known_and_unknown_emails(stack: Stack) -> None:
    business_id, client = await stack.merchant("Acme Static")
    await asyncio.to_thread(client.customers.create, email="known@example.com", name="Known")
    pages = []
    for email in ("known@example.com", "nobody@example.com"):
        browser = Browser(stack)
        status, html, csrf, _ = await browser.get(f"/test/login/{business_id}")
        assert status == 200 and "Acme Static" in html
        status, html, _ = await browser.post(
            f"/test/login/{business_id}", {"csrf_token": csrf, "email": email}
        )
        assert status == 200, html
        pages.append(html)
    assert pages[0] == pages[1]


async def test_a_test_mode_link_is_unknown_under_the_live_base_url(stack: Stack) -> None:
    _, client = await stack.merchant("Acme Modes")
    customer = await asyncio.to_thread(client.customers.create, email="ada@example.com", name="Ada")
    session = await asyncio.to_thread(client.customers.customer_portal.create, customer.customer_id)
    live_path = local_path(session.link).replace("/test/", "/live/", 1)
    browser = Browser(stack)
    status, html, csrf, _ = await browser.get(live_path)
    assert status == 404 and "not valid" in html
    status, _, _ = await browser.post(live_path, {"csrf_token": csrf})
    assert status == 404
    # Still usable where it belongs.
    status, _, csrf, _ = await browser.get(local_path(session.link))
    assert status == 200
