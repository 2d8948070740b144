"""Unified portal -> live portal hand-off, against in-memory auth (conftest.FakePortal).

"Open" on the unified portal never sets a cookie itself: the live site first
gives the browser a binding cookie (``/handoff/begin/{business_id}``), the
unified site mints a hand-off bound to it (``/open/{business_id}/bound``), and
the live site's ``/handoff/{token}`` spends the one-time token with that
cookie and sets the live ``__Host-`` cookie on its own host. A hand-off
presented by another browser signs nobody in. The last tests run the three
portals on three different hosts (told apart by the Host header, as behind an
ingress).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from billing.auth.v1 import portal_access_pb2
from billing.common.v1 import common_pb2
from gateway.app import create_app

from .conftest import settings_for
from .test_portal_pages import cookie_header, set_cookies

LIVE = common_pb2.MODE_LIVE
ROOT = "http://localhost:8080"


async def unified_sign_in(
    client: Any, fake: Any, email: str, prefix: str = "/all", host: str | None = None
) -> dict[str, str]:
    """Unified magic link -> confirm -> POST: cookies with ``__Host-cu``."""
    token = fake.portal.issue(
        portal_access_pb2.TOKEN_PURPOSE_UNIFIED_SIGN_IN, "", LIVE, email=email
    )
    extra = {"Host": host} if host else {}
    resp = await client.get(f"{prefix}/link/{token}", headers=extra, allow_redirects=False)
    assert resp.status == 200, await resp.text()
    cookies = {name: m.value for name, m in set_cookies(resp).items()}
    csrf = cookies["__Host-csrf"]
    resp = await client.post(
        f"{prefix}/link/{token}",
        data={"csrf_token": csrf},
        headers={**cookie_header(cookies), **extra},
        allow_redirects=False,
    )
    assert resp.status == 303, await resp.text()
    cookies["__Host-cu"] = set_cookies(resp)["__Host-cu"].value
    return cookies


def unified_csrf(fake: Any, cookies: dict[str, str]) -> str:
    csrf: str = fake.portal.sessions[cookies["__Host-cu"]].csrf_token
    return csrf


async def open_business(
    client: Any, fake: Any, cookies: dict[str, str], business_id: str, **kw: Any
) -> Any:
    headers = {**cookie_header(cookies), **kw.pop("headers", {})}
    return await client.post(
        f"{kw.pop('prefix', '/all')}/open/{business_id}",
        data={"csrf_token": kw.pop("csrf", unified_csrf(fake, cookies))},
        headers=headers,
        allow_redirects=False,
    )


def assert_token_page_headers(resp: Any) -> None:
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    assert resp.headers["Cache-Control"] == "no-store"


BINDING_COOKIE = "__Host-cp_handoff"


async def follow_open(
    client: Any,
    fake: Any,
    cookies: dict[str, str],
    business_id: str,
    *,
    live_cookies: dict[str, str] | None = None,
    live_host: str | None = None,
    unified_host: str | None = None,
    origin: str = ROOT,
) -> tuple[str, dict[str, str]]:
    """Press "Open" and follow the redirects up to the hand-off link, as one browser.

    Returns the hand-off URL and this browser's live-host cookies (with the binding).
    """
    live_cookies = dict(live_cookies or {})
    unified = {"Host": unified_host} if unified_host else {}
    live = {"Host": live_host} if live_host else {}
    prefix = "" if unified_host else "/all"
    resp = await open_business(client, fake, cookies, business_id, prefix=prefix, headers=unified)
    assert resp.status == 303, await resp.text()
    begin = resp.headers["Location"]
    live_origin = f"http://{live_host}" if live_host else f"{origin}/live"
    assert begin == f"{live_origin}/handoff/begin/{business_id}"
    assert not [c for c in set_cookies(resp) if c.startswith("__Host-cp_")]

    resp = await client.get(
        begin.removeprefix(origin).removeprefix(f"http://{live_host}"),
        headers={**live, **cookie_header(live_cookies)},
        allow_redirects=False,
    )
    assert resp.status == 303, await resp.text()
    assert_token_page_headers(resp)
    if BINDING_COOKIE in set_cookies(resp):
        morsel = set_cookies(resp)[BINDING_COOKIE]
        assert morsel["secure"] and morsel["httponly"] and morsel["path"] == "/"
        assert morsel["samesite"] == "Lax" and not morsel["domain"]
        assert int(morsel["max-age"]) == 600
        live_cookies[BINDING_COOKIE] = morsel.value
    bound = resp.headers["Location"]
    unified_origin = f"http://{unified_host}" if unified_host else f"{origin}/all"
    assert bound == (
        f"{unified_origin}/open/{business_id}/bound?binding={live_cookies[BINDING_COOKIE]}"
    )

    resp = await client.get(
        bound.removeprefix(origin).removeprefix(f"http://{unified_host}"),
        headers={**unified, **cookie_header(cookies)},
        allow_redirects=False,
    )
    assert resp.status == 303, await resp.text()
    assert_token_page_headers(resp)
    assert not [c for c in set_cookies(resp) if c.startswith("__Host-cp_")]
    location: str = resp.headers["Location"]
    assert location.startswith(f"{live_origin}/handoff/cpt_")
    return location, live_cookies


async def test_open_hands_off_to_the_live_site_which_sets_its_own_cookie(gateway: Any) -> None:
    client, fake = gateway
    acme = fake.add_business("Acme")
    fake.add_customer(acme, "ada@example.com", LIVE)
    cookies = await unified_sign_in(client, fake, "ada@example.com")

    # No business cookie on the unified answers: the live host sets it.
    location, browser = await follow_open(client, fake, cookies, acme)

    resp = await client.get(
        location.removeprefix(ROOT), headers=cookie_header(browser), allow_redirects=False
    )
    assert resp.status == 303
    assert resp.headers["Location"] == f"{ROOT}/live/b/{acme}/"
    assert_token_page_headers(resp)
    morsel = set_cookies(resp)[f"__Host-cp_live_{acme}"]
    assert morsel["secure"] and morsel["httponly"] and morsel["path"] == "/"
    assert morsel["samesite"] == "Lax" and not morsel["domain"]
    assert int(morsel["max-age"]) > 0
    session = fake.portal.sessions[morsel.value]
    assert session.unified_session_id == fake.portal.sessions[cookies["__Host-cu"]].session_id

    resp = await client.get(
        f"/live/b/{acme}/", headers=cookie_header({f"__Host-cp_live_{acme}": morsel.value})
    )
    assert resp.status == 200 and "Welcome" in await resp.text()

    # The same hand-off again (back button, a copied URL): used, with a way back.
    resp = await client.get(
        location.removeprefix(ROOT), headers=cookie_header(browser), allow_redirects=False
    )
    assert resp.status == 410
    assert_token_page_headers(resp)
    html = await resp.text()
    assert 'data-state="used"' in html
    assert f'id="back-to-unified" href="{ROOT}/all/"' in html
    assert not [c for c in set_cookies(resp) if c.startswith("__Host-cp_")]


async def test_a_handoff_link_opened_in_another_browser_signs_nobody_in(gateway: Any) -> None:
    """Login CSRF: the attacker presses Open, stops at the redirect, sends the link."""
    client, fake = gateway
    acme = fake.add_business("Acme")
    fake.add_customer(acme, "mallory@example.com", LIVE)
    attacker = await unified_sign_in(client, fake, "mallory@example.com")

    for victim in ({}, {BINDING_COOKIE: "v" * 43}):
        location, _attacker_live = await follow_open(client, fake, attacker, acme)
        resp = await client.get(
            location.removeprefix(ROOT), headers=cookie_header(victim), allow_redirects=False
        )
        assert resp.status == 404
        assert 'data-state="unknown"' in await resp.text()
        assert not [c for c in set_cookies(resp) if c.startswith("__Host-cp_live")]
        # Spent: the link is worth nothing to anyone afterwards.
        assert fake.portal.tokens[location.rsplit("/", 1)[1]].used

    # The victim's browser walking the chain itself reaches the unified sign-in page:
    # it has no unified session of the attacker's, so nothing is minted for it.
    resp = await client.get(f"/live/handoff/begin/{acme}", allow_redirects=False)
    victim_binding = set_cookies(resp)[BINDING_COOKIE].value
    minted = fake.calls.get("OpenBusinessFromUnified", 0)
    resp = await client.get(resp.headers["Location"].removeprefix(ROOT), allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == f"{ROOT}/all/login"
    assert fake.calls.get("OpenBusinessFromUnified", 0) == minted
    # And a binding the attacker learned cannot be used without their session either.
    resp = await client.get(
        f"/all/open/{acme}/bound?binding={victim_binding}", allow_redirects=False
    )
    assert resp.headers["Location"] == f"{ROOT}/all/login"


async def test_two_tabs_opening_two_businesses_share_one_binding(gateway: Any) -> None:
    client, fake = gateway
    acme, globex = fake.add_business("Acme"), fake.add_business("Globex")
    fake.add_customer(acme, "ada@example.com", LIVE)
    fake.add_customer(globex, "ada@example.com", LIVE)
    cookies = await unified_sign_in(client, fake, "ada@example.com")
    first, browser = await follow_open(client, fake, cookies, acme)
    second, again = await follow_open(client, fake, cookies, globex, live_cookies=browser)
    assert again == browser
    for location, business_id in ((first, acme), (second, globex)):
        resp = await client.get(
            location.removeprefix(ROOT), headers=cookie_header(browser), allow_redirects=False
        )
        assert resp.headers["Location"] == f"{ROOT}/live/b/{business_id}/"


async def test_expired_unknown_and_foreign_purpose_handoffs_get_a_clear_page(
    gateway: Any,
) -> None:
    client, fake = gateway
    acme = fake.add_business("Acme")
    customer_id = fake.add_customer(acme, "ada@example.com", LIVE)
    expired = fake.portal.issue(
        portal_access_pb2.TOKEN_PURPOSE_HANDOFF, acme, LIVE, customer_id=customer_id, expired=True
    )
    resp = await client.get(f"/live/handoff/{expired}?lang=it", allow_redirects=False)
    assert resp.status == 410
    assert_token_page_headers(resp)
    html = await resp.text()
    assert 'data-state="expired"' in html and "Torna ai tuoi account" in html

    for token in ("cpt_" + "x" * 43, "not-a-token", "cps_" + "y" * 43):
        resp = await client.get(f"/live/handoff/{token}", allow_redirects=False)
        assert resp.status == 404, token
        assert 'data-state="unknown"' in await resp.text()
        assert_token_page_headers(resp)

    # A sign-in (magic) link is not a hand-off: refused here, and still usable.
    magic = fake.portal.issue(
        portal_access_pb2.TOKEN_PURPOSE_MAGIC_LINK, acme, LIVE, customer_id=customer_id
    )
    resp = await client.get(f"/live/handoff/{magic}", allow_redirects=False)
    assert resp.status == 404
    assert not fake.portal.tokens[magic].used

    # Only the live site has hand-offs: the test site does not even ask auth.
    handoff = fake.portal.issue(
        portal_access_pb2.TOKEN_PURPOSE_HANDOFF, acme, LIVE, customer_id=customer_id
    )
    calls = fake.calls.get("ConsumeHandoffToken", 0)
    resp = await client.get(f"/test/handoff/{handoff}", allow_redirects=False)
    assert resp.status == 404
    assert fake.calls.get("ConsumeHandoffToken", 0) == calls
    assert not fake.portal.tokens[handoff].used


async def test_open_needs_csrf_a_unified_session_and_one_of_its_businesses(
    gateway: Any,
) -> None:
    client, fake = gateway
    acme = fake.add_business("Acme")
    other = fake.add_business("Other")
    fake.add_customer(acme, "ada@example.com", LIVE)
    fake.add_customer(other, "bob@example.com", LIVE)
    cookies = await unified_sign_in(client, fake, "ada@example.com")

    resp = await open_business(client, fake, cookies, acme, csrf="forged")
    assert resp.status == 400
    assert fake.calls.get("OpenBusinessFromUnified", 0) == 0

    # Another email's business: the chain ends in a 404 where the hand-off would be minted.
    resp = await client.get(
        f"/all/open/{other}/bound?binding={'b' * 43}",
        headers=cookie_header(cookies),
        allow_redirects=False,
    )
    assert resp.status == 404
    assert not [t for t in fake.portal.tokens.values() if t.business_id == other]
    # Without the live site's binding value nothing is minted (auth refuses it, and
    # INVALID_ARGUMENT is 422 on pages as on the API: the one error table).
    for query in ("", "?binding=short"):
        resp = await client.get(
            f"/all/open/{acme}/bound{query}", headers=cookie_header(cookies), allow_redirects=False
        )
        assert resp.status == 422
    assert not [
        t
        for t in fake.portal.tokens.values()
        if t.business_id == acme and t.purpose == portal_access_pb2.TOKEN_PURPOSE_HANDOFF
    ]
    # The test site has no hand-off pages.
    resp = await client.get(f"/test/handoff/begin/{acme}", allow_redirects=False)
    assert resp.status == 404

    resp = await client.post(f"/all/open/{acme}", data={"csrf_token": "x"}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == f"{ROOT}/all/login"


# --------------------------------------------------------- different hosts --

HOSTS = {"live": "live.localhost:8443", "test": "test.localhost:8443", "all": "all.localhost:8443"}
API_HOST = "api.localhost:8443"


@pytest.fixture
async def split_gateway(
    fake_auth: Any,
) -> AsyncIterator[tuple[TestClient[Any, Any], Any]]:
    """The three portals on three hosts at the root path, as the Helm chart deploys them."""
    fake, port = fake_auth
    settings = settings_for(
        port,
        portal_live_base_url=f"http://{HOSTS['live']}",
        portal_test_base_url=f"http://{HOSTS['test']}",
        unified_base_url=f"http://{HOSTS['all']}",
    )
    async with TestClient(TestServer(create_app(settings))) as client:
        yield client, fake


def on(host: str, cookies: dict[str, str] | None = None) -> dict[str, str]:
    return {"Host": host, **cookie_header(cookies or {})}


async def test_unified_and_live_on_different_hosts(split_gateway: Any) -> None:
    client, fake = split_gateway
    acme = fake.add_business("Acme")
    fake.add_customer(acme, "ada@example.com", LIVE)
    cookies = await unified_sign_in(client, fake, "ada@example.com", prefix="", host=HOSTS["all"])

    resp = await client.get("/", headers=on(HOSTS["all"], cookies), allow_redirects=False)
    assert resp.status == 200
    assert f'action="/open/{acme}"' in await resp.text()

    # The binding cookie lives on the live host, the unified session on the unified one.
    location, browser = await follow_open(
        client, fake, cookies, acme, live_host=HOSTS["live"], unified_host=HOSTS["all"]
    )
    path = location.removeprefix(f"http://{HOSTS['live']}")
    # The hand-off pages exist only on the live host.
    for host in (HOSTS["all"], HOSTS["test"], "evil.example"):
        for page in (path, f"/handoff/begin/{acme}"):
            resp = await client.get(page, headers=on(host, browser), allow_redirects=False)
            assert resp.status == 404, host
    token = path.rsplit("/", 1)[1]
    assert not fake.portal.tokens[token].used

    resp = await client.get(path, headers=on(HOSTS["live"], browser), allow_redirects=False)
    assert resp.status == 303
    assert resp.headers["Location"] == f"http://{HOSTS['live']}/b/{acme}/"
    live_cookie = {f"__Host-cp_live_{acme}": set_cookies(resp)[f"__Host-cp_live_{acme}"].value}

    resp = await client.get(f"/b/{acme}/", headers=on(HOSTS["live"], live_cookie))
    assert resp.status == 200 and "Acme" in await resp.text()
    # The same path on the test host is the test portal: a live session means nothing there.
    resp = await client.get(
        f"/b/{acme}/", headers=on(HOSTS["test"], live_cookie), allow_redirects=False
    )
    assert resp.status == 303
    assert resp.headers["Location"].startswith(f"http://{HOSTS['test']}/login/{acme}")
    # /link/... is the unified page on the unified host and the business page on the live host.
    unified_token = fake.portal.issue(
        portal_access_pb2.TOKEN_PURPOSE_UNIFIED_SIGN_IN, "", LIVE, email="ada@example.com"
    )
    resp = await client.get(f"/link/{unified_token}", headers={"Host": HOSTS["all"]})
    assert resp.status == 200
    resp = await client.get(f"/link/{unified_token}", headers={"Host": HOSTS["live"]})
    assert resp.status == 404


async def test_merchant_api_answers_on_the_api_host_beside_root_portals(
    split_gateway: Any,
) -> None:
    client, fake = split_gateway
    acme = fake.add_business("Acme")
    key = fake.add_key(acme)
    auth = {"Authorization": f"Bearer {key}"}
    resp = await client.post(
        "/customers",
        json={"email": "ada@example.com", "name": "Ada"},
        headers={"Host": API_HOST, **auth},
    )
    assert resp.status == 200, await resp.text()
    resp = await client.get("/customers", headers={"Host": API_HOST, **auth})
    assert resp.status == 200 and len((await resp.json())["items"]) == 1
    # Unknown URLs: a JSON problem on the API host, an HTML page on a portal host.
    resp = await client.get("/nope", headers={"Host": API_HOST})
    assert resp.status == 404 and resp.content_type == "application/problem+json"
    resp = await client.get("/nope", headers={"Host": HOSTS["live"]})
    assert resp.status == 404 and resp.content_type == "text/html"
    # Portal pages are not served on the API host.
    resp = await client.get(f"/login/{acme}", headers={"Host": API_HOST})
    assert resp.status == 404 and resp.content_type == "application/problem+json"
    resp = await client.get(f"/login/{acme}", headers={"Host": HOSTS["test"]})
    assert resp.status == 200
