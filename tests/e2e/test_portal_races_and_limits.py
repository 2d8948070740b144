"""One token, twenty tabs: one session. One email, a burst of requests: 429."""

from __future__ import annotations

import asyncio

import pytest
from devstack import Mailbox, Stack, message_link
from devstack.portal import (
    CSRF_COOKIE,
    PortalBusiness,
    PortalHttp,
    Reply,
    business_cookie,
    unique_email,
)
from dodopayments import AsyncDodoPayments

pytestmark = pytest.mark.e2e

CONCURRENT_POSTS = 20
# AUTH_RATE_LIMIT_PER_EMAIL's default: sign-in requests per address per window.
PER_EMAIL_LIMIT = 5


async def test_twenty_concurrent_posts_of_one_token_start_exactly_one_session(
    stack: Stack, shop: PortalBusiness, shop_sdk: AsyncDodoPayments
) -> None:
    customer = await shop_sdk.customers.create(email=unique_email("race"), name="Racer")
    link = (await shop_sdk.customers.customer_portal.create(customer.customer_id)).link
    cookie_name = business_cookie("test", shop.business_id)

    # Twenty browsers (own connections, own CSRF cookies) press Continue at once.
    sessions = [PortalHttp.new_session() for _ in range(CONCURRENT_POSTS)]
    try:
        clients = [PortalHttp(session) for session in sessions]
        confirms = await asyncio.gather(*(client.get(link) for client in clients))
        assert {page.status for page in confirms} == {200}
        start = asyncio.Event()

        async def press_continue(client: PortalHttp, page: Reply) -> Reply:
            await start.wait()
            return await client.submit(page)

        pressing = [
            asyncio.create_task(press_continue(client, page))
            for client, page in zip(clients, confirms, strict=True)
        ]
        await asyncio.sleep(0)  # a yield: every task reaches start.wait() before the start
        start.set()
        replies = await asyncio.gather(*pressing)
    finally:
        await asyncio.gather(*(session.close() for session in sessions))

    winners = [reply for reply in replies if cookie_name in reply.set_cookies]
    assert len(winners) == 1, [reply.status for reply in replies]
    assert winners[0].status == 303
    losers = [reply for reply in replies if reply is not winners[0]]
    assert {reply.status for reply in losers} == {410}
    assert all('data-state="used"' in reply.text for reply in losers)
    # Only sign-in cookies were handed out, and only once: the losers got no session.
    assert not [r for r in losers if any(n.startswith("__Host-cp_") for n in r.set_cookies)]

    async with PortalHttp.new_session() as session:
        home = await PortalHttp(session).get(
            f"{stack.portal_urls.test}/b/{shop.business_id}/",
            cookies={cookie_name: winners[0].set_cookies[cookie_name]},
        )
    assert home.status == 200


async def ask_for_link(http: PortalHttp, login: Reply, email: str) -> Reply:
    """Post the static link form once (reusing one page's CSRF pair)."""
    return await http.submit(login, {"email": email}, cookies={CSRF_COOKIE: login_csrf(login)})


def login_csrf(login: Reply) -> str:
    """The double-submit cookie the login page set."""
    return login.set_cookies[CSRF_COOKIE]


async def test_a_burst_for_one_email_is_rate_limited_while_others_still_work(
    stack: Stack,
    shop: PortalBusiness,
    shop_sdk: AsyncDodoPayments,
    http: PortalHttp,
    mailbox: Mailbox,
) -> None:
    target, bystander = unique_email("burst"), unique_email("bystander")
    await shop_sdk.customers.create(email=target, name="Burst")
    await shop_sdk.customers.create(email=bystander, name="Bystander")
    login = await http.get(f"{stack.portal_urls.test}/login/{shop.business_id}")
    assert login.status == 200

    burst = await asyncio.gather(
        *(ask_for_link(http, login, target) for _ in range(PER_EMAIL_LIMIT + 3))
    )

    statuses = sorted(reply.status for reply in burst)
    assert statuses == [200] * PER_EMAIL_LIMIT + [429] * 3
    limited = next(reply for reply in burst if reply.status == 429)
    assert 'data-status="429"' in limited.text
    assert int(limited.headers["Retry-After"]) > 0
    # The same address in other capitals is the same address.
    shouted = await ask_for_link(http, login, f" {target.upper()} ")
    assert shouted.status == 429

    # Someone else, from the same client, is not affected.
    other = await ask_for_link(http, login, bystander)
    assert other.status == 200
    message_link(await mailbox.wait_for(bystander), f"{stack.portal_urls.test}/link/cpt_")
    # Exactly one email per accepted request reached the burst's address.
    await mailbox.wait_for(target, skip=PER_EMAIL_LIMIT - 1)
    await mailbox.assert_nothing_new(target, skip=PER_EMAIL_LIMIT, seconds=1.0)
