"""Every customer email is durable (issue 10.1) and a refused recipient is a clear 422 (9.6).

The outage tests run on a stack of their own (notifications is SIGKILLed, the
SMTP relay stopped); the refusal test uses the shared stack, whose SMTP sink
refuses every recipient starting with ``refuse-`` for good (550 on RCPT).
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from billing_kit.testing import eventually
from devstack import Mailbox, Stack, message_link
from devstack.portal import (
    CSRF_COOKIE,
    PortalBusiness,
    PortalHttp,
    Reply,
    create_portal_business,
    unique_email,
)
from dodopayments import AsyncDodoPayments, UnprocessableEntityError
from pymongo import AsyncMongoClient

pytestmark = pytest.mark.e2e

SIGN_INS_PER_KIND = 30
# Generous: a restarted notifications takes over emails whose attempt lease
# (30 s) was held by the killed process, and retries back off up to 15 s.
DELIVERY_WAIT_SECONDS = 120
OUTAGE_SECONDS = 60
# An email in any other state may still be (re)sent by notifications.
FINAL_EMAIL_STATUSES = ["sent", "rejected", "dead"]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def outage_stack(
    tmp_path_factory: pytest.TempPathFactory, amqp_url: str
) -> AsyncIterator[Stack]:
    """A stack the tests in this module may break (kill notifications, stop SMTP)."""
    stack = Stack.isolated(Path(tmp_path_factory.mktemp("durable-emails")), amqp_url=amqp_url)
    await stack.start()
    try:
        yield stack
    finally:
        await stack.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def outage_shop(outage_stack: Stack) -> PortalBusiness:
    """A business on the outage stack."""
    async with outage_stack.auth_admin() as admin:
        return await create_portal_business(admin, f"Durable {uuid.uuid4().hex[:6]}")


def sdk_for(stack: Stack, shop: PortalBusiness) -> AsyncDodoPayments:
    """The merchant's SDK in test mode, without retries (a failure must show)."""
    return AsyncDodoPayments(bearer_token=shop.test_key, base_url=stack.gateway_url, max_retries=0)


async def ask_for_sign_in_link(http: PortalHttp, login: Reply, email: str) -> Reply:
    """Post the static link's form once (reusing one page's CSRF pair)."""
    return await http.submit(
        login, {"email": email}, cookies={CSRF_COOKIE: login.set_cookies[CSRF_COOKIE]}
    )


async def create_customers(sdk: AsyncDodoPayments, label: str, count: int) -> list[tuple[str, str]]:
    """``count`` new customers as (customer_id, email)."""
    made = []
    for n in range(count):
        customer = await sdk.customers.create(email=unique_email(f"{label}{n}"), name=f"C {n}")
        made.append((customer.customer_id, customer.email))
    return made


async def nothing_left_to_send(stack: Stack) -> bool:
    """Whether every email notifications has queued reached a final state (read, not faked)."""
    url, prefix = stack.external_mongo or (stack.mongo_url, "")
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url, serverSelectionTimeoutMS=5000)
    try:
        emails = client[f"{prefix}notifications"]["emails"]
        return await emails.count_documents({"status": {"$nin": FINAL_EMAIL_STATUSES}}) == 0
    finally:
        await client.close()


async def assert_each_arrives_exactly_once(
    stack: Stack, mailbox: Mailbox, shop: PortalBusiness, addresses: list[str]
) -> None:
    """Every address gets one email, and its link signs in."""
    prefix = f"{stack.portal_urls.test}/link/cpt_"
    for address in addresses:
        await mailbox.wait_for(address, within_seconds=DELIVERY_WAIT_SECONDS)
    # Instead of sleeping: once notifications has nothing left to (re)send, a
    # second copy (say, of an email the killed process was sending, retaken
    # after its 30 s lease) has either arrived or never will.
    await eventually(
        lambda: nothing_left_to_send(stack),
        within=DELIVERY_WAIT_SECONDS,
        message="notifications still has emails to send",
    )
    counts = {address: await mailbox.count(address) for address in addresses}
    assert {a: c for a, c in counts.items() if c != 1} == {}
    async with PortalHttp.new_session() as session:
        http = PortalHttp(session)
        for address in addresses:
            [message] = await mailbox.messages_to(address)
            link = message_link(message, prefix)
            assert await http.sign_in_with_link(link, "test", shop.business_id)


async def test_notifications_killed_during_sign_ins_loses_and_repeats_nothing(
    outage_stack: Stack, outage_shop: PortalBusiness
) -> None:
    stack, shop = outage_stack, outage_shop
    mailbox = Mailbox(stack.mail_dir)
    async with sdk_for(stack, shop) as sdk:
        static = await create_customers(sdk, "static", SIGN_INS_PER_KIND)
        magic = await create_customers(sdk, "magic", SIGN_INS_PER_KIND)
        async with PortalHttp.new_session() as session:
            http = PortalHttp(session)
            login = await http.get(f"{stack.portal_urls.test}/login/{shop.business_id}")
            assert login.status == 200
            killed = False
            for n in range(SIGN_INS_PER_KIND):
                if n == SIGN_INS_PER_KIND // 3:
                    # Mid-stream, with earlier emails still being delivered.
                    await stack.kill_service("notifications")
                    killed = True
                if n == 2 * SIGN_INS_PER_KIND // 3:
                    await stack.restart_service("notifications")
                    killed = False
                reply = await ask_for_sign_in_link(http, login, static[n][1])
                assert reply.status == 200
                portal = await sdk.customers.customer_portal.create(magic[n][0], send_email=True)
                assert portal.link.startswith(f"{stack.portal_urls.test}/link/cpt_")
            assert not killed
    await assert_each_arrives_exactly_once(
        stack, mailbox, shop, [email for _, email in static + magic]
    )


async def test_smtp_down_for_a_minute_delivers_each_email_once_afterwards(
    outage_stack: Stack, outage_shop: PortalBusiness
) -> None:
    stack, shop = outage_stack, outage_shop
    mailbox = Mailbox(stack.mail_dir)
    async with sdk_for(stack, shop) as sdk:
        static = await create_customers(sdk, "smtp-static", 5)
        magic = await create_customers(sdk, "smtp-magic", 5)
        addresses = [email for _, email in static + magic]
        await stack.stop_smtp()
        try:
            async with PortalHttp.new_session() as session:
                http = PortalHttp(session)
                login = await http.get(f"{stack.portal_urls.test}/login/{shop.business_id}")
                for (_, email), (magic_id, _) in zip(static, magic, strict=True):
                    assert (await ask_for_sign_in_link(http, login, email)).status == 200
                    # Answered once queued: the relay being down is not the merchant's problem.
                    await sdk.customers.customer_portal.create(magic_id, send_email=True)
            await asyncio.sleep(OUTAGE_SECONDS)  # the outage itself (the scenario)
            assert [a for a in addresses if await mailbox.count(a)] == []
        finally:
            await stack.start_smtp()
    await assert_each_arrives_exactly_once(stack, mailbox, shop, addresses)


async def test_a_permanently_refused_recipient_is_a_422_that_says_do_not_retry(
    stack: Stack, shop: PortalBusiness, shop_sdk: AsyncDodoPayments, http: PortalHttp
) -> None:
    refused = await shop_sdk.customers.create(
        email=f"refuse-{uuid.uuid4().hex[:10]}@example.com", name="Nobody Home"
    )
    with pytest.raises(UnprocessableEntityError) as caught:
        await shop_sdk.customers.customer_portal.create(refused.customer_id, send_email=True)
    response = caught.value.response
    assert response.status_code == 422
    assert response.headers["x-should-retry"] == "false"
    body = response.json()
    assert body["code"] == "EMAIL_RECIPIENT_REJECTED"
    assert "refused" in body["detail"]

    # The static link answers that address exactly like any other (no enumeration).
    login = await http.get(f"{stack.portal_urls.test}/login/{shop.business_id}")
    normal = await shop_sdk.customers.create(email=unique_email("normal"), name="Normal")
    to_refused = await ask_for_sign_in_link(http, login, refused.email)
    to_normal = await ask_for_sign_in_link(http, login, normal.email)
    assert (to_refused.status, without_csrf(to_refused.text)) == (
        to_normal.status,
        without_csrf(to_normal.text),
    )


def without_csrf(page: str) -> str:
    """A page with its CSRF token values blanked (they differ per response by design)."""
    return re.sub(r'(name="csrf_token" value=")[^"]*(")', r"\1\2", page)
