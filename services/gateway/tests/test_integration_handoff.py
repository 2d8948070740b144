"""Unified portal -> live portal with the three portals on DIFFERENT hosts, against
the real auth service (SecantusDB + RabbitMQ).

One gateway serves ``all.localhost``, ``live.localhost`` and ``test.localhost``
at the root path (as the Helm chart deploys them behind one ingress); requests
pick their site with the Host header. Each host has its own cookie jar, as a
browser keeps ``__Host-`` cookies per host: the live business cookie can only
come from the live host, through the one-time hand-off, and only in the browser
the hand-off was bound to.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from billing.auth.v1 import auth_pb2, auth_pb2_grpc
from billing.common.v1 import common_pb2
from billing_kit.events import decode_event
from billing_kit.sealing import DEVELOPMENT_SEALING_KEY, Sealer
from billing_kit.testing import BrokerNamespace, MessageTap, eventually, tap_exchange, unique_name

from .conftest import auth_and_gateway

pytestmark = pytest.mark.integration

CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')
PORT = 8443  # part of the configured base URLs only: requests go to the real port
HOSTS = {
    "live": f"live.localhost:{PORT}",
    "test": f"test.localhost:{PORT}",
    "all": f"all.localhost:{PORT}",
}


@dataclass(frozen=True)
class RequestedEmail:
    to: str
    link: str


class Outbox:
    """What auth asks notifications to send: its email.requested events on the
    run's exchange, links opened with the development key (as notifications would)."""

    def __init__(self, tap: MessageTap) -> None:
        self.tap = tap
        self.sealer = Sealer(DEVELOPMENT_SEALING_KEY)

    @property
    def sent(self) -> list[RequestedEmail]:
        found = []
        for message in list(self.tap.messages):
            data = decode_event(message.body).data
            sealed = data["sealed_link"]
            found.append(RequestedEmail(data["to"], self.sealer.open(sealed) if sealed else ""))
        return found


@dataclass
class Stack:
    address: str
    stub: auth_pb2_grpc.AuthServiceStub
    http: aiohttp.ClientSession
    outbox: Outbox


@pytest.fixture(scope="module")
async def stack(mongo_url: str, broker_namespace: BrokerNamespace) -> AsyncIterator[Stack]:
    async with tap_exchange(
        broker_namespace.amqp_url, broker_namespace.exchange, "email.requested"
    ) as tap:
        async for running in _stack(mongo_url, broker_namespace, Outbox(tap)):
            yield running


async def _stack(
    mongo_url: str, broker_namespace: BrokerNamespace, outbox: Outbox
) -> AsyncIterator[Stack]:
    urls: dict[str, Any] = {
        "portal_live_base_url": f"http://{HOSTS['live']}",
        "portal_test_base_url": f"http://{HOSTS['test']}",
        "unified_base_url": f"http://{HOSTS['all']}",
    }
    # Logout must be visible at once on the other host.
    gateway_settings = {**urls, "session_cache_seconds": 0}
    auth_settings = {**urls, "notifications_timeout_seconds": 2}
    async with (
        auth_and_gateway(
            mongo_url, broker_namespace, auth=auth_settings, gateway=gateway_settings
        ) as (auth, gateway),
        aiohttp.ClientSession() as http,
    ):
        yield Stack(
            address=f"http://127.0.0.1:{gateway.http_port}",
            stub=auth_pb2_grpc.AuthServiceStub(auth.channel),
            http=http,
            outbox=outbox,
        )


@dataclass
class Browser:
    """Follows nothing; keeps cookies per host, as browsers do with ``__Host-`` cookies."""

    stack: Stack
    jars: dict[str, dict[str, str]] = field(default_factory=dict)

    def _remember(self, host: str, resp: aiohttp.ClientResponse) -> None:
        jar: SimpleCookie = SimpleCookie()
        for header in resp.headers.getall("Set-Cookie", []):
            jar.load(header)
        mine = self.jars.setdefault(host, {})
        for name, morsel in jar.items():
            assert not morsel["domain"], "a __Host- cookie never names a domain"
            if morsel["max-age"] == "0":
                mine.pop(name, None)
            else:
                mine[name] = morsel.value

    def _headers(self, host: str) -> dict[str, str]:
        jar = self.jars.get(host, {})
        return {"Host": host, "Cookie": "; ".join(f"{k}={v}" for k, v in jar.items())}

    async def get(self, url: str) -> tuple[int, str, str, dict[str, str]]:
        parts = urlsplit(url)
        async with self.stack.http.get(
            self.stack.address + parts.path + (f"?{parts.query}" if parts.query else ""),
            headers=self._headers(parts.netloc),
            allow_redirects=False,
        ) as resp:
            self._remember(parts.netloc, resp)
            html = await resp.text()
        match = CSRF_INPUT.search(html)
        return resp.status, html, match.group(1) if match else "", dict(resp.headers)

    async def post(self, url: str, data: dict[str, str]) -> tuple[int, str, dict[str, str]]:
        parts = urlsplit(url)
        async with self.stack.http.post(
            self.stack.address + parts.path,
            data=data,
            headers=self._headers(parts.netloc),
            allow_redirects=False,
        ) as resp:
            self._remember(parts.netloc, resp)
            return resp.status, await resp.text(), dict(resp.headers)


async def test_open_from_the_unified_host_signs_in_on_the_live_host(stack: Stack) -> None:
    business = await stack.stub.CreateBusiness(auth_pb2.CreateBusinessRequest(name="Bottega"))
    business_id = business.business_id
    email = f"ada.{unique_name('x')}@example.com"
    await stack.stub.CreateCustomer(
        auth_pb2.CreateCustomerRequest(
            business_id=business_id, mode=common_pb2.MODE_LIVE, email=email, name="Ada"
        )
    )
    unified, live = f"http://{HOSTS['all']}", f"http://{HOSTS['live']}"
    browser = Browser(stack)

    # Unified sign-in on the unified host; the emailed link points there too.
    status, _, csrf, _ = await browser.get(f"{unified}/login")
    assert status == 200
    status, _, _ = await browser.post(f"{unified}/login", {"email": email, "csrf_token": csrf})
    assert status == 200
    assert await eventually(lambda: any(m.to == email for m in stack.outbox.sent), within=10)
    (mail,) = [m for m in stack.outbox.sent if m.to == email]
    assert mail.link.startswith(f"{unified}/link/cpt_")
    status, _, csrf, _ = await browser.get(mail.link)
    assert status == 200
    status, _, headers = await browser.post(mail.link, {"csrf_token": csrf})
    assert status == 303 and headers["Location"] == f"{unified}/"

    status, html, csrf, _ = await browser.get(f"{unified}/")
    assert status == 200 and f'id="open-{business_id}"' in html
    status, _, headers = await browser.post(f"{unified}/open/{business_id}", {"csrf_token": csrf})
    # The live host binds this browser (a cookie of its own), then back to the unified host.
    assert status == 303 and headers["Location"] == f"{live}/handoff/begin/{business_id}"
    status, _, _, headers = await browser.get(headers["Location"])
    assert status == 303 and headers["Referrer-Policy"] == "no-referrer"
    binding = browser.jars[HOSTS["live"]]["__Host-cp_handoff"]
    assert headers["Location"] == f"{unified}/open/{business_id}/bound?binding={binding}"
    status, _, _, headers = await browser.get(headers["Location"])
    assert status == 303
    handoff = headers["Location"]
    assert handoff.startswith(f"{live}/handoff/cpt_")
    assert headers["Referrer-Policy"] == "no-referrer"
    # Nothing for the live portal was set on the unified host.
    assert set(browser.jars[HOSTS["all"]]) <= {"__Host-cu", "__Host-csrf", "cp_lang"}

    # Not on the unified or test host: the hand-off is spent only where it lands.
    for other in (HOSTS["all"], HOSTS["test"]):
        status, _, _, _ = await browser.get(handoff.replace(HOSTS["live"], other))
        assert status == 404
    status, _, _, headers = await browser.get(handoff)
    assert status == 303 and headers["Location"] == f"{live}/b/{business_id}/"
    assert headers["Cache-Control"] == "no-store"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert f"__Host-cp_live_{business_id}" in browser.jars[HOSTS["live"]]

    status, html, _, _ = await browser.get(f"{live}/b/{business_id}/")
    assert status == 200 and "Bottega" in html

    # Back button / replay: used, with the way back to the accounts.
    status, html, _, _ = await browser.get(handoff)
    assert status == 410 and 'data-state="used"' in html and f'href="{unified}/"' in html

    # Signing out of the unified portal also ends the business session it opened.
    status, _, csrf, _ = await browser.get(f"{unified}/")
    status, _, _ = await browser.post(f"{unified}/logout", {"csrf_token": csrf})
    assert status == 303
    status, _, _, headers = await browser.get(f"{live}/b/{business_id}/")
    assert status == 303 and headers["Location"].startswith(f"{live}/login/{business_id}")


async def test_a_handoff_link_sent_to_another_browser_signs_it_in_nowhere(stack: Stack) -> None:
    """Login CSRF: an attacker's own hand-off link, opened by the victim, does nothing."""
    business = await stack.stub.CreateBusiness(auth_pb2.CreateBusinessRequest(name="Trap"))
    business_id = business.business_id
    email = f"mallory.{unique_name('x')}@example.com"
    await stack.stub.CreateCustomer(
        auth_pb2.CreateCustomerRequest(
            business_id=business_id, mode=common_pb2.MODE_LIVE, email=email, name="Mallory"
        )
    )
    unified, live = f"http://{HOSTS['all']}", f"http://{HOSTS['live']}"
    attacker, victim = Browser(stack), Browser(stack)
    status, _, csrf, _ = await attacker.get(f"{unified}/login")
    await attacker.post(f"{unified}/login", {"email": email, "csrf_token": csrf})
    assert await eventually(lambda: any(m.to == email for m in stack.outbox.sent), within=10)
    (mail,) = [m for m in stack.outbox.sent if m.to == email]
    status, _, csrf, _ = await attacker.get(mail.link)
    await attacker.post(mail.link, {"csrf_token": csrf})
    status, _, csrf, _ = await attacker.get(f"{unified}/")
    _, _, headers = await attacker.post(f"{unified}/open/{business_id}", {"csrf_token": csrf})
    _, _, _, headers = await attacker.get(headers["Location"])
    _, _, _, headers = await attacker.get(headers["Location"])
    handoff = headers["Location"]
    assert handoff.startswith(f"{live}/handoff/cpt_")

    # The attacker stops here and sends the link to the victim.
    status, html, _, _ = await victim.get(handoff)
    assert status == 404 and 'data-state="unknown"' in html
    assert not [c for c in victim.jars.get(HOSTS["live"], {}) if c.startswith("__Host-cp_live")]
    status, _, _, headers = await victim.get(f"{live}/b/{business_id}/")
    assert status == 303 and headers["Location"].startswith(f"{live}/login/{business_id}")
    # And the link is spent: worth nothing to the attacker either.
    status, _, _, _ = await attacker.get(handoff)
    assert status == 410


async def test_a_stale_handoff_explains_itself(stack: Stack) -> None:
    browser = Browser(stack)
    status, html, _, headers = await browser.get(f"http://{HOSTS['live']}/handoff/cpt_{'A' * 43}")
    assert status == 404 and 'data-state="unknown"' in html
    assert 'id="back-to-unified"' in html
    assert headers["Referrer-Policy"] == "no-referrer"
