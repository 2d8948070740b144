"""One domain-error -> HTTP table: the merchant API and the portal pages give a backend's
refusal the same status, with the reason's message in the page's language; a page whose
session auth no longer accepts sends the customer to sign in."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from billing_kit.errors import (
    AlreadyExists,
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    RateLimited,
    Reason,
    Unauthenticated,
)

from .conftest import FakeAuth
from .test_portal_pages import cookie_header, sign_in

Client = TestClient[Any, Any]


async def _api_status(client: Client, fake: FakeAuth, refusal: DomainError) -> int:
    fake.refusals["CreateCustomer"] = refusal
    resp = await client.post(
        "/customers",
        json={"email": "a@example.com", "name": "A"},
        headers={"Authorization": f"Bearer {fake.add_key('biz_1')}"},
    )
    assert resp.content_type == "application/problem+json"
    return resp.status


@pytest.mark.parametrize(
    ("refusal", "status"),
    [
        (InvalidArgument("bad", reason=Reason.INVALID_NAME), 422),
        (NotFound("gone", reason=Reason.CUSTOMER_NOT_FOUND), 404),
        (AlreadyExists("dup", reason=Reason.EMAIL_TAKEN), 409),
        (FailedPrecondition("state", reason=Reason.TOKEN_USED), 409),
        (RateLimited("slow down"), 429),
    ],
    ids=lambda value: value.reason if isinstance(value, DomainError) else str(value),
)
async def test_a_refusal_has_the_same_status_on_the_api_and_on_a_page(
    gateway: tuple[Client, FakeAuth], refusal: DomainError, status: int
) -> None:
    client, fake = gateway
    acme = fake.add_business("Acme", locale="it")
    customer_id = fake.add_customer(acme, "ada@example.com")
    _, cookies = await sign_in(client, fake, acme, customer_id)

    assert await _api_status(client, fake, refusal) == status

    fake.refusals["GetCustomer"] = refusal
    resp = await client.get(
        f"/test/b/{acme}/profile", headers=cookie_header(cookies), allow_redirects=False
    )
    assert resp.status == status
    assert resp.content_type == "text/html"


async def test_a_page_shows_the_reasons_message_in_the_customers_language(
    gateway: tuple[Client, FakeAuth],
) -> None:
    client, fake = gateway
    acme = fake.add_business("Acme", locale="it")
    customer_id = fake.add_customer(acme, "ada@example.com")
    _, cookies = await sign_in(client, fake, acme, customer_id)
    fake.refusals["GetCustomer"] = FailedPrecondition("used", reason=Reason.TOKEN_USED)
    resp = await client.get(f"/test/b/{acme}/profile", headers=cookie_header(cookies))
    assert "Questo link è già stato usato." in await resp.text()


async def test_an_unauthenticated_page_sends_the_customer_to_sign_in(
    gateway: tuple[Client, FakeAuth],
) -> None:
    client, fake = gateway
    acme = fake.add_business("Acme")
    customer_id = fake.add_customer(acme, "ada@example.com")
    _, cookies = await sign_in(client, fake, acme, customer_id)
    fake.refusals["GetCustomer"] = Unauthenticated("ended", reason=Reason.SESSION_INVALID)
    resp = await client.get(
        f"/test/b/{acme}/profile", headers=cookie_header(cookies), allow_redirects=False
    )
    assert resp.status == 303
    assert resp.headers["Location"].endswith(f"/test/login/{acme}")
