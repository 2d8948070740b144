"""The email-change form tells a signed-in customer nothing about other customers (issue 9.3).

Taken and free addresses get byte-identical answers (CSRF token aside) and
share one rate limit; the owner of a taken address is told by email.
"""

from __future__ import annotations

import re

import pytest
from devstack import Mailbox, Stack
from devstack.portal import PortalBusiness, PortalHttp, Reply, business_cookie, unique_email
from dodopayments import AsyncDodoPayments

pytestmark = pytest.mark.e2e

PER_CUSTOMER_LIMIT = 5  # AUTH_RATE_LIMIT_PER_EMAIL's default: email-change requests per window


def without_csrf(page: str) -> str:
    """A page with its CSRF token values blanked."""
    return re.sub(r'(name="csrf_token" value=")[^"]*(")', r"\1\2", page)


def answer(reply: Reply) -> tuple[int, str, str, str]:
    """What the requester can observe of one answer."""
    retry_after = reply.headers.get("Retry-After", "")
    return reply.status, reply.headers.get("Location", ""), retry_after, without_csrf(reply.text)


async def test_taken_and_free_addresses_look_the_same_and_the_owner_is_told(
    stack: Stack,
    shop: PortalBusiness,
    shop_sdk: AsyncDodoPayments,
    http: PortalHttp,
    mailbox: Mailbox,
) -> None:
    me = await shop_sdk.customers.create(email=unique_email("prober"), name="Prober")
    owner = await shop_sdk.customers.create(email=unique_email("owner"), name="Olga Owner")
    link = (await shop_sdk.customers.customer_portal.create(me.customer_id)).link
    cookies = {
        business_cookie("test", shop.business_id): await http.sign_in_with_link(
            link, "test", shop.business_id
        )
    }
    profile_url = f"{stack.portal_urls.test}/b/{shop.business_id}/profile"

    async def change_to(address: str) -> tuple[Reply, Reply | None]:
        profile = await http.get(profile_url, cookies=cookies)
        posted = await http.request(
            "POST",
            f"{profile_url}/email",
            cookies=cookies,
            form={"csrf_token": profile.csrf_token(), "new_email": address},
        )
        shown = await http.get(posted.location, cookies=cookies) if posted.location else None
        return posted, shown

    taken_post, taken_page = await change_to(owner.email)
    free_post, free_page = await change_to(unique_email("free"))
    assert taken_post.status == 303
    assert answer(taken_post) == answer(free_post)
    assert taken_page is not None and free_page is not None
    assert answer(taken_page) == answer(free_page)
    assert 'id="email-change-sent"' in taken_page.text

    notice = await mailbox.wait_for(owner.email, subject_contains="tried to use your email")
    assert "nothing was changed" in notice.text()
    # No link goes to the owner: nothing there could move the address.
    assert "/email-change/" not in notice.text()

    # One rate limit for both kinds: the window fills with a mix, then both are refused alike.
    for n in range(PER_CUSTOMER_LIMIT - 2):
        await change_to(owner.email if n % 2 else unique_email("free"))
    limited_taken, _ = await change_to(owner.email)
    limited_free, _ = await change_to(unique_email("free"))
    assert limited_taken.status == 429
    assert answer(limited_taken) == answer(limited_free)
