"""Malformed bodies get a 400/413/415 (problem or error page) and reach no backend.

One module reads every body (``gateway.request_bodies``); these drive it
through the real app: the merchant API's JSON and the portal's forms.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from .conftest import FakeAuth
from .test_portal_pages import cookie_header, form_page, sign_in

Client = TestClient[Any, Any]

DEEP = 1000


def nested(depth: int) -> bytes:
    """``{"metadata": {"a": {"a": ... 1}}}`` nested ``depth`` objects deep."""
    return b'{"metadata": ' + b'{"a": ' * depth + b"1" + b"}" * depth + b"}"


async def assert_problem(resp: Any, statuses: tuple[int, ...]) -> dict[str, Any]:
    assert resp.status in statuses, await resp.text()
    assert resp.content_type == "application/problem+json"
    body: dict[str, Any] = await resp.json()
    assert body["status"] == resp.status and body["code"]
    return body


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        pytest.param(nested(DEEP), "application/json", 400, id="nested-1000-deep"),
        pytest.param(b"[" * DEEP + b"]" * DEEP, "application/json", 400, id="array-1000-deep"),
        pytest.param(b'{"email": NaN}', "application/json", 400, id="nan"),
        pytest.param(b'{"name": "\xff"}', "application/json", 400, id="not-utf8"),
        pytest.param(b"{}", "application/json; charset=bogus", 415, id="bogus-charset"),
    ],
)
async def test_malformed_json_is_a_4xx_problem_and_calls_nothing(
    gateway: tuple[Client, FakeAuth], body: bytes, content_type: str, status: int
) -> None:
    client, fake = gateway
    headers = {"Authorization": f"Bearer {fake.add_key('biz_1')}", "Content-Type": content_type}

    created = await client.post("/customers", data=body, headers=headers)
    updated = await client.patch("/customers/cus_1", data=body, headers=headers)

    await assert_problem(created, (status,))
    await assert_problem(updated, (status,))
    assert "CreateCustomer" not in fake.calls and "GetCustomer" not in fake.calls
    assert fake.portal.profile_updates == []  # type: ignore[attr-defined]


MALFORMED_FORMS = [
    pytest.param("application/x-www-form-urlencoded", b"email=\xff&csrf_token={csrf}", id="raw-ff"),
    pytest.param("application/x-www-form-urlencoded", b"email=%FF&csrf_token={csrf}", id="pct-ff"),
    pytest.param(
        "application/x-www-form-urlencoded; charset=bogus",
        b"email=a%40example.com&csrf_token={csrf}",
        id="charset-bogus",
    ),
    pytest.param(
        "application/x-www-form-urlencoded; charset=utf-16",
        b"email=a%40example.com&csrf_token={csrf}",
        id="charset-utf16",
    ),
    pytest.param("multipart/form-data", b"--x\r\nbroken", id="multipart-no-boundary"),
    pytest.param("multipart/form-data; boundary=x", b"--x\r\nbroken", id="multipart-broken"),
    pytest.param(
        "multipart/form-data; boundary=x",
        b'--x\r\nContent-Disposition: form-data; name="email"\r\n\r\n\xff\r\n--x--\r\n',
        id="multipart-not-utf8",
    ),
]


@pytest.mark.parametrize(("content_type", "body"), MALFORMED_FORMS)
async def test_malformed_sign_in_form_is_a_4xx_page_and_sends_nothing(
    gateway: tuple[Client, FakeAuth], content_type: str, body: bytes
) -> None:
    client, fake = gateway
    business_id = fake.add_business("Acme")
    _, _, csrf, cookies = await form_page(client, f"/test/login/{business_id}")

    resp = await client.post(
        f"/test/login/{business_id}",
        data=body.replace(b"{csrf}", csrf.encode()),
        headers={**cookie_header(cookies), "Content-Type": content_type},
    )

    assert resp.status in (400, 413, 415), await resp.text()
    assert resp.content_type == "text/html"
    assert 'data-status="' in await resp.text()
    assert fake.portal.sign_in_requests == []  # type: ignore[attr-defined]


@pytest.mark.parametrize(("content_type", "body"), MALFORMED_FORMS)
async def test_malformed_profile_form_is_a_4xx_page_and_writes_nothing(
    gateway: tuple[Client, FakeAuth], content_type: str, body: bytes
) -> None:
    client, fake = gateway
    acme = fake.add_business("Acme")
    customer_id = fake.add_customer(acme, "ada@example.com")
    _, cookies = await sign_in(client, fake, acme, customer_id)
    _, _, csrf, _ = await form_page(client, f"/test/b/{acme}/profile", cookies)
    body = body.replace(b"email=", b"name=").replace(b'name="email"', b'name="name"')

    resp = await client.post(
        f"/test/b/{acme}/profile",
        data=body.replace(b"{csrf}", csrf.encode()),
        headers={**cookie_header(cookies), "Content-Type": content_type},
    )

    assert resp.status in (400, 413, 415), await resp.text()
    assert resp.content_type == "text/html"
    assert fake.portal.profile_updates == []  # type: ignore[attr-defined]
    assert fake.customers[-1].name == "Ada Lovelace"


async def test_a_well_formed_multipart_form_still_works(gateway: tuple[Client, FakeAuth]) -> None:
    client, fake = gateway
    business_id = fake.add_business("Acme")
    _, _, csrf, cookies = await form_page(client, f"/test/login/{business_id}")
    body = (
        f'--x\r\nContent-Disposition: form-data; name="email"\r\n\r\nada@example.com\r\n'
        f'--x\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{csrf}\r\n--x--\r\n'
    ).encode()

    resp = await client.post(
        f"/test/login/{business_id}",
        data=body,
        headers={**cookie_header(cookies), "Content-Type": "multipart/form-data; boundary=x"},
    )

    assert resp.status == 200, await resp.text()
    assert len(fake.portal.sign_in_requests) == 1  # type: ignore[attr-defined]
