"""Portal pages through the real gateway app against in-memory auth (conftest.FakePortal).

Cookies are handled by hand: ``__Host-`` cookies are Secure, and a client
cookie jar would (rightly) not send them over the test server's plain http.
"""

from __future__ import annotations

import re
from http.cookies import SimpleCookie
from typing import Any

from aiohttp.test_utils import TestClient
from billing.auth.v1 import portal_access_pb2
from billing.common.v1 import common_pb2

Client = TestClient[Any, Any]

CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


def set_cookies(resp: Any) -> dict[str, Any]:
    jar: SimpleCookie = SimpleCookie()
    for header in resp.headers.getall("Set-Cookie", []):
        jar.load(header)
    return {name: morsel for name, morsel in jar.items()}


def cookie_header(cookies: dict[str, str]) -> dict[str, str]:
    return {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}


async def form_page(client: Client, path: str, cookies: dict[str, str] | None = None) -> Any:
    """GET a form page: (response, html, csrf token, cookies incl. __Host-csrf)."""
    cookies = dict(cookies or {})
    resp = await client.get(path, headers=cookie_header(cookies), allow_redirects=False)
    html = await resp.text()
    for name, morsel in set_cookies(resp).items():
        cookies[name] = morsel.value
    match = CSRF_INPUT.search(html)
    return resp, html, (match.group(1) if match else ""), cookies


async def sign_in(
    client: Client, fake: Any, business_id: str, customer_id: str, mode: int = common_pb2.MODE_TEST
) -> tuple[str, dict[str, str]]:
    """Magic link → confirm page → POST: the session cookie."""
    portal = fake.portal
    token = portal.issue(
        portal_access_pb2.TOKEN_PURPOSE_MAGIC_LINK, business_id, mode, customer_id=customer_id
    )
    prefix = "/test" if mode == common_pb2.MODE_TEST else "/live"
    _, _, csrf, cookies = await form_page(client, f"{prefix}/link/{token}")
    resp = await client.post(
        f"{prefix}/link/{token}",
        data={"csrf_token": csrf},
        headers=cookie_header(cookies),
        allow_redirects=False,
    )
    assert resp.status == 303, await resp.text()
    mode_name = "test" if mode == common_pb2.MODE_TEST else "live"
    name = f"__Host-cp_{mode_name}_{business_id}"
    cookies[name] = set_cookies(resp)[name].value
    return resp.headers["Location"], cookies


async def test_login_page_is_branded_localized_and_sets_csrf_cookie(gateway: Any) -> None:
    client, fake = gateway
    business_id = fake.add_business("Acme Italia", color="#0a7d5a", locale="it")
    resp, html, csrf, cookies = await form_page(client, f"/test/login/{business_id}")
    assert resp.status == 200
    assert '<html lang="it">' in html
    assert "Accedi a Acme Italia" in html
    assert 'data-brand="' + business_id + '"' in html
    assert f"/test/brand/{business_id}.css" in html
    assert 'for="email"' in html and 'id="email"' in html
    assert csrf and cookies["__Host-csrf"] == csrf
    morsel = set_cookies(resp)["__Host-csrf"]
    assert morsel["secure"] and morsel["httponly"] and morsel["path"] == "/"
    assert morsel["samesite"] == "Lax" and not morsel["domain"]
    # ?lang= wins over the business's locale and is remembered.
    resp, html, _, _ = await form_page(client, f"/test/login/{business_id}?lang=en")
    assert "Sign in to Acme Italia" in html
    assert set_cookies(resp)["cp_lang"].value == "en"


async def test_page_security_headers(gateway: Any) -> None:
    client, fake = gateway
    business_id = fake.add_business("Acme")
    resp, _, _, _ = await form_page(client, f"/live/login/{business_id}")
    csp = resp.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Referrer-Policy"] == "same-origin"
    assert resp.headers["Cache-Control"] == "no-store"
    assert "Strict-Transport-Security" not in resp.headers  # base URL is http
    token = fake.portal.issue(
        portal_access_pb2.TOKEN_PURPOSE_SIGN_IN,
        business_id,
        common_pb2.MODE_LIVE,
        customer_id="cus_x",
    )
    resp, html, _, _ = await form_page(client, f"/live/link/{token}")
    assert resp.status == 200
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    assert resp.headers["Cache-Control"] == "no-store"
    assert 'id="confirm-link"' in html
    # Scanners that GET the link do not use it up.
    assert not fake.portal.tokens[token].used


async def test_unknown_business_is_a_404_page(gateway: Any) -> None:
    client, _ = gateway
    resp = await client.get("/test/login/biz_nope")
    assert resp.status == 404
    assert resp.content_type == "text/html"
    assert "Page not found" in await resp.text()
    resp = await client.get("/test/no/such/page")
    assert resp.status == 404 and resp.content_type == "text/html"


async def test_sign_in_request_answers_the_same_and_needs_csrf(gateway: Any) -> None:
    client, fake = gateway
    business_id = fake.add_business("Acme")
    _, _, csrf, cookies = await form_page(client, f"/test/login/{business_id}")
    # Without the double-submit token nothing is sent.
    resp = await client.post(
        f"/test/login/{business_id}",
        data={"email": "a@example.com"},
        headers=cookie_header(cookies),
    )
    assert resp.status == 400
    assert fake.portal.sign_in_requests == []
    # An invalid email: inline error, described by the field, nothing sent.
    resp = await client.post(
        f"/test/login/{business_id}",
        data={"email": "nope", "csrf_token": csrf},
        headers=cookie_header(cookies),
    )
    html = await resp.text()
    assert resp.status == 422
    assert 'aria-describedby="email-error"' in html and 'role="alert"' in html
    assert fake.portal.sign_in_requests == []
    bodies = []
    for email in ("  Known@Example.com ", "unknown@example.com"):
        resp = await client.post(
            f"/test/login/{business_id}",
            data={"email": email, "csrf_token": csrf, "next": f"/b/{business_id}/invoices"},
            headers=cookie_header(cookies),
        )
        assert resp.status == 200
        bodies.append(await resp.text())
    assert bodies[0] == bodies[1]
    first = fake.portal.sign_in_requests[0]
    assert first.email == "Known@Example.com"  # trimmed; auth matches case-insensitively
    assert first.mode == common_pb2.MODE_TEST
    assert first.next_path == f"/b/{business_id}/invoices"
    assert len(first.client_key) == 32 and "127.0.0.1" not in first.client_key


async def test_rate_limited_sign_in_is_a_429_page(gateway: Any) -> None:
    client, fake = gateway
    business_id = fake.add_business("Acme")
    fake.portal.rate_limited_emails.add("busy@example.com")
    _, _, csrf, cookies = await form_page(client, f"/test/login/{business_id}")
    resp = await client.post(
        f"/test/login/{business_id}",
        data={"email": "busy@example.com", "csrf_token": csrf},
        headers=cookie_header(cookies),
    )
    assert resp.status == 429
    assert resp.content_type == "text/html"
    assert "Too many requests" in await resp.text()
    assert "Retry-After" in resp.headers


async def test_magic_link_starts_a_session_with_a_host_cookie(gateway: Any) -> None:
    client, fake = gateway
    business_id = fake.add_business("Acme")
    customer_id = fake.add_customer(business_id, "ada@example.com")
    token = fake.portal.issue(
        portal_access_pb2.TOKEN_PURPOSE_MAGIC_LINK,
        business_id,
        common_pb2.MODE_TEST,
        customer_id=customer_id,
        next_path=f"/b/{business_id}/profile",
    )
    _, _, csrf, cookies = await form_page(client, f"/test/link/{token}")
    resp = await client.post(
        f"/test/link/{token}",
        data={"csrf_token": csrf},
        headers=cookie_header(cookies),
        allow_redirects=False,
    )
    assert resp.status == 303
    # Redirects are built from the configured base URL, never the Host header.
    assert resp.headers["Location"] == f"http://localhost:8080/test/b/{business_id}/profile"
    morsel = set_cookies(resp)[f"__Host-cp_test_{business_id}"]
    assert morsel.value.startswith("cps_")
    assert morsel["secure"] and morsel["httponly"] and morsel["path"] == "/"
    assert morsel["samesite"] == "Lax" and not morsel["domain"]
    assert 0 < int(morsel["max-age"]) <= 12 * 3600
    # The same link again: "already used", with a fresh-link offer.
    _, html, csrf2, cookies2 = await form_page(client, f"/test/link/{token}")
    assert "already been used" in html and 'id="request-fresh-link"' in html
    resp = await client.post(
        f"/test/link/{token}/fresh", data={"csrf_token": csrf2}, headers=cookie_header(cookies2)
    )
    assert resp.status == 200 and "Check your email" in await resp.text()
    assert fake.portal.fresh_requests == [token]


async def test_link_of_the_other_mode_is_unknown_here(gateway: Any) -> None:
    client, fake = gateway
    business_id = fake.add_business("Acme")
    token = fake.portal.issue(
        portal_access_pb2.TOKEN_PURPOSE_MAGIC_LINK,
        business_id,
        common_pb2.MODE_TEST,
        customer_id="cus_1",
    )
    resp, html, csrf, cookies = await form_page(client, f"/live/link/{token}")
    assert resp.status == 404 and "not valid" in html
    resp = await client.post(
        f"/live/link/{token}",
        data={"csrf_token": csrf},
        headers=cookie_header(cookies),
        allow_redirects=False,
    )
    assert resp.status == 404
    assert not fake.portal.tokens[token].used


async def test_expired_link_offers_a_new_one(gateway: Any) -> None:
    client, fake = gateway
    business_id = fake.add_business("Acme")
    token = fake.portal.issue(
        portal_access_pb2.TOKEN_PURPOSE_SIGN_IN,
        business_id,
        common_pb2.MODE_TEST,
        customer_id="cus_1",
        expired=True,
    )
    resp, html, _, _ = await form_page(client, f"/test/link/{token}")
    assert resp.status == 410
    assert "This link has expired" in html and 'id="request-fresh-link"' in html


async def test_portal_shell_needs_the_right_session(gateway: Any) -> None:
    client, fake = gateway
    acme = fake.add_business("Acme")
    other = fake.add_business("Other")
    customer_id = fake.add_customer(acme, "ada@example.com")
    # No session: to the static link page, remembering the destination.
    resp = await client.get(f"/test/b/{acme}/invoices", allow_redirects=False)
    assert resp.status == 303
    assert resp.headers["Location"] == (
        f"http://localhost:8080/test/login/{acme}?next=/b/{acme}/invoices"
    )
    _, cookies = await sign_in(client, fake, acme, customer_id)
    resp = await client.get(f"/test/b/{acme}/", headers=cookie_header(cookies))
    html = await resp.text()
    assert resp.status == 200
    for nav_id in ("subscriptions", "invoices", "payment-methods", "license-keys", "profile"):
        assert f'id="nav-{nav_id}"' in html
    assert 'href="#main"' in html and 'id="main"' in html
    assert "Test mode" in html
    # Acme's session presented as another business's cookie, or on the live site: 404.
    secret = cookies[f"__Host-cp_test_{acme}"]
    resp = await client.get(
        f"/test/b/{other}/profile", headers=cookie_header({f"__Host-cp_test_{other}": secret})
    )
    assert resp.status == 404
    resp = await client.get(
        f"/live/b/{acme}/profile", headers=cookie_header({f"__Host-cp_live_{acme}": secret})
    )
    assert resp.status == 404


async def test_profile_update_validates_inline_and_saves_e164(gateway: Any) -> None:
    client, fake = gateway
    acme = fake.add_business("Acme")
    customer_id = fake.add_customer(acme, "ada@example.com")
    _, cookies = await sign_in(client, fake, acme, customer_id)
    resp, html, csrf, _ = await form_page(client, f"/test/b/{acme}/profile", cookies)
    assert resp.status == 200 and 'id="current-email"' in html
    # CSRF token missing: nothing written.
    resp = await client.post(
        f"/test/b/{acme}/profile", data={"name": "X"}, headers=cookie_header(cookies)
    )
    assert resp.status == 400
    assert fake.customers[-1].name == "Ada Lovelace"
    resp = await client.post(
        f"/test/b/{acme}/profile",
        data={"name": "Ada King", "phone_number": "12345", "csrf_token": csrf},
        headers=cookie_header(cookies),
    )
    html = await resp.text()
    assert resp.status == 422
    assert 'id="phone_number-error"' in html and 'aria-invalid="true"' in html
    assert fake.customers[-1].name == "Ada Lovelace"
    resp = await client.post(
        f"/test/b/{acme}/profile",
        data={"name": "Ada King", "phone_number": "+39 333 123 4567", "csrf_token": csrf},
        headers=cookie_header(cookies),
        allow_redirects=False,
    )
    assert resp.status == 303
    assert fake.customers[-1].name == "Ada King"
    assert fake.customers[-1].phone_number == "+393331234567"


async def test_email_change_then_confirm_keeps_this_session(gateway: Any) -> None:
    client, fake = gateway
    acme = fake.add_business("Acme")
    customer_id = fake.add_customer(acme, "ada@example.com")
    _, cookies = await sign_in(client, fake, acme, customer_id)
    _, other_device = await sign_in(client, fake, acme, customer_id)
    _, _, csrf, _ = await form_page(client, f"/test/b/{acme}/profile", cookies)
    resp = await client.post(
        f"/test/b/{acme}/profile/email",
        data={"new_email": "ada@example.com", "csrf_token": csrf},
        headers=cookie_header(cookies),
    )
    assert resp.status == 422 and "already your email" in await resp.text()
    resp = await client.post(
        f"/test/b/{acme}/profile/email",
        data={"new_email": "ada.new@example.com", "csrf_token": csrf},
        headers=cookie_header(cookies),
        allow_redirects=False,
    )
    assert resp.status == 303
    assert fake.customers[-1].email == "ada@example.com"  # not before verification
    token = next(t for t, v in fake.portal.tokens.items() if v.new_email)
    _, html, csrf2, cookies2 = await form_page(client, f"/test/email-change/{token}", cookies)
    assert 'id="confirm-email-change"' in html
    resp = await client.post(
        f"/test/email-change/{token}", data={"csrf_token": csrf2}, headers=cookie_header(cookies2)
    )
    assert resp.status == 200 and "ada.new@example.com" in await resp.text()
    assert fake.customers[-1].email == "ada.new@example.com"
    assert cookies[f"__Host-cp_test_{acme}"] in fake.portal.sessions
    assert other_device[f"__Host-cp_test_{acme}"] not in fake.portal.sessions


async def test_logout_ends_the_session_at_once(gateway: Any) -> None:
    client, fake = gateway
    acme = fake.add_business("Acme")
    customer_id = fake.add_customer(acme, "ada@example.com")
    _, cookies = await sign_in(client, fake, acme, customer_id)
    _, _, csrf, _ = await form_page(client, f"/test/b/{acme}/", cookies)
    resp = await client.post(
        f"/test/b/{acme}/logout",
        data={"csrf_token": csrf},
        headers=cookie_header(cookies),
        allow_redirects=False,
    )
    assert resp.status == 303
    assert set_cookies(resp)[f"__Host-cp_test_{acme}"]["max-age"] == "0"
    # The cached session is dropped: the old cookie no longer opens the portal.
    resp = await client.get(
        f"/test/b/{acme}/", headers=cookie_header(cookies), allow_redirects=False
    )
    assert resp.status == 303 and "/login/" in resp.headers["Location"]


async def test_unified_portal_lists_only_this_emails_businesses(gateway: Any) -> None:
    client, fake = gateway
    acme = fake.add_business("Acme")
    beta = fake.add_business("Beta")
    gamma = fake.add_business("Gamma")
    fake.add_customer(acme, "ada@example.com", common_pb2.MODE_LIVE)
    fake.add_customer(beta, "ada@example.com", common_pb2.MODE_LIVE)
    fake.add_customer(gamma, "bob@example.com", common_pb2.MODE_LIVE)
    token = fake.portal.issue(
        portal_access_pb2.TOKEN_PURPOSE_UNIFIED_SIGN_IN,
        "",
        common_pb2.MODE_LIVE,
        email="ada@example.com",
    )
    _, _, csrf, cookies = await form_page(client, f"/all/link/{token}")
    resp = await client.post(
        f"/all/link/{token}",
        data={"csrf_token": csrf},
        headers=cookie_header(cookies),
        allow_redirects=False,
    )
    assert resp.status == 303 and resp.headers["Location"] == "http://localhost:8080/all/"
    cookies["__Host-cu"] = set_cookies(resp)["__Host-cu"].value
    _, html, csrf, _ = await form_page(client, "/all/", cookies)
    assert "Acme" in html and "Beta" in html and "Gamma" not in html
    assert f'id="open-{acme}"' in html
    binding = {"__Host-cp_handoff": "b" * 43}
    resp = await client.get(
        f"/all/open/{gamma}/bound?binding={'b' * 43}",
        headers=cookie_header(cookies),
        allow_redirects=False,
    )
    assert resp.status == 404
    resp = await client.post(
        f"/all/open/{acme}",
        data={"csrf_token": csrf},
        headers=cookie_header(cookies),
        allow_redirects=False,
    )
    # A hand-off to the live site, bound to this browser, which sets its own cookie
    # there (every step: see test_unified_handoff.py).
    assert resp.status == 303
    assert resp.headers["Location"] == f"http://localhost:8080/live/handoff/begin/{acme}"
    resp = await client.get(
        f"/all/open/{acme}/bound?binding={'b' * 43}",
        headers=cookie_header(cookies),
        allow_redirects=False,
    )
    assert resp.headers["Location"].startswith("http://localhost:8080/live/handoff/cpt_")
    handoff = resp.headers["Location"].removeprefix("http://localhost:8080")
    resp = await client.get(handoff, headers=cookie_header(binding), allow_redirects=False)
    assert resp.status == 303
    assert resp.headers["Location"] == f"http://localhost:8080/live/b/{acme}/"
    business_cookie = set_cookies(resp)[f"__Host-cp_live_{acme}"].value
    resp = await client.get(
        f"/live/b/{acme}/", headers=cookie_header({f"__Host-cp_live_{acme}": business_cookie})
    )
    assert resp.status == 200


async def test_brand_css_uses_only_a_valid_colour(gateway: Any) -> None:
    client, fake = gateway
    good = fake.add_business("Good", color="#0a7d5a")
    bad = fake.add_business("Bad", color="red;}body{display:none")
    resp = await client.get(f"/test/brand/{good}.css")
    css = await resp.text()
    assert resp.content_type == "text/css" and "--accent: #0A7D5A;" in css
    css = await (await client.get(f"/test/brand/{bad}.css")).text()
    assert "display" not in css and "--accent: #4F46E5;" in css
    resp = await client.get("/test/static/portal.css")
    assert resp.status == 200 and "--accent" in await resp.text()


async def test_backend_down_is_a_503_page(gateway: Any) -> None:
    client, fake = gateway
    business_id = fake.add_business("Acme")
    _, _, csrf, cookies = await form_page(client, f"/test/login/{business_id}")
    fake.unavailable = True
    resp = await client.post(
        f"/test/login/{business_id}",
        data={"email": "a@example.com", "csrf_token": csrf},
        headers=cookie_header(cookies),
    )
    assert resp.status == 503
    assert "Temporarily unavailable" in await resp.text()
