"""One rule for where a portal link may lead, answered the same by the API and the portal.

``https://user@host`` puts credentials in a URL (browsers show it misleadingly,
a classic phishing shape). Auth owns the rule (billing_kit.field_rules) and
refuses it with a reason and the field; the merchant API and the portal only
say so, each in its own way (issue 8.4).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import aiohttp
import grpc
import pytest
import pytest_asyncio
from billing.auth.v1 import auth_pb2
from devstack import Mailbox, Stack
from devstack.portal import PortalBusiness, PortalHttp, unique_email
from dodopayments import AsyncDodoPayments

pytestmark = pytest.mark.e2e

CREDENTIALS_URL = "https://user@host"


@pytest_asyncio.fixture(loop_scope="session")
async def raw(stack: Stack) -> AsyncIterator[aiohttp.ClientSession]:
    async with PortalHttp.new_session() as session:
        yield session


async def session_link(
    raw: aiohttp.ClientSession, stack: Stack, shop: PortalBusiness, customer_id: str, **query: str
) -> tuple[int, dict[str, object]]:
    async with raw.post(
        f"{stack.gateway_url}/customers/{customer_id}/customer-portal/session",
        params=query,
        headers={"Authorization": f"Bearer {shop.key('test')}"},
    ) as response:
        return response.status, json.loads(await response.text())


async def test_credentials_in_a_return_url_or_next_are_refused_by_the_api(
    stack: Stack, shop: PortalBusiness, shop_sdk: AsyncDodoPayments, raw: aiohttp.ClientSession
) -> None:
    customer = await shop_sdk.customers.create(email=unique_email("rule"), name="Ada Lovelace")

    for parameter in ("return_url", "next"):
        status, problem = await session_link(
            raw, stack, shop, customer.customer_id, **{parameter: CREDENTIALS_URL}
        )
        assert status == 422, problem
        assert problem["code"] == "INVALID_QUERY_PARAMETERS"
        assert [e["field"] for e in problem["errors"]] == [parameter]  # type: ignore[union-attr]

    status, _ = await session_link(
        raw, stack, shop, customer.customer_id, return_url="https://host/account"
    )
    assert status == 200


async def test_credentials_as_next_are_refused_by_the_portal_and_nothing_is_sent(
    stack: Stack, shop: PortalBusiness, shop_sdk: AsyncDodoPayments, mailbox: Mailbox
) -> None:
    email = unique_email("rule-portal")
    await shop_sdk.customers.create(email=email, name="Ada Lovelace")
    async with PortalHttp.new_session() as session:
        portal = PortalHttp(session)
        login = await portal.get(
            f"{stack.portal_urls.test}/login/{shop.business_id}?next={CREDENTIALS_URL}"
        )
        assert login.status == 200

        refused = await portal.submit(login, {"email": email, "next": CREDENTIALS_URL})

        assert refused.status == 422
        assert 'id="form-error"' in refused.text and "outside your portal" in refused.text
        assert CREDENTIALS_URL not in refused.text  # dropped, so sending again works
        sent = await portal.submit(refused, {"email": email}, cookies=login.set_cookies)
        assert sent.status == 200
    # Only the second request sent a link (the refused one would have arrived first).
    await mailbox.wait_for(email)
    assert await mailbox.count(email) == 1


async def test_credentials_in_a_business_return_url_are_refused_by_auth(stack: Stack) -> None:
    async with stack.auth_admin() as admin:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await admin.stub.CreateBusiness(
                auth_pb2.CreateBusinessRequest(
                    name="Credentials in URL", default_return_url=CREDENTIALS_URL, locale="en"
                ),
                timeout=10,
            )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
