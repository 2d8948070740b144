"""The authorization matrix: nobody reaches another customer's portal or data.

Customer A's session (per business, test mode) and a unified session for
another email try every portal URL of customer B — at another business, in
test and live mode, and A's own business in the other mode — with their own
secret presented under the cookie name that URL expects (the strongest thing
a thief can do with a cookie). Every attempt is a 404, never a 403 or a page.
Merchant API calls with A's business key on B's customers are 404 too.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from devstack import Mailbox, Stack, message_link
from devstack.portal import (
    UNIFIED_COOKIE,
    Mode,
    PortalBusiness,
    PortalHttp,
    Reply,
    business_cookie,
    create_portal_business,
    unique_email,
)
from dodopayments import AsyncDodoPayments, NotFoundError

pytestmark = pytest.mark.e2e

PAGES = ("", "subscriptions", "invoices", "payment-methods", "license-keys", "profile")
FORMS = ("profile", "profile/email", "logout")


@dataclass(frozen=True)
class Target:
    """One customer's portal: a business in a mode, and the customer there."""

    business: PortalBusiness
    mode: Mode
    customer_id: str
    email: str
    name: str


def sdk_for(stack: Stack, business: PortalBusiness, mode: Mode) -> AsyncDodoPayments:
    """The official SDK as this merchant in one mode."""
    return AsyncDodoPayments(
        bearer_token=business.key(mode), base_url=stack.gateway_url, max_retries=0
    )


async def new_target(stack: Stack, business: PortalBusiness, mode: Mode, label: str) -> Target:
    """A customer created by the merchant in that mode."""
    email, name = unique_email(label), f"{label} customer"
    async with sdk_for(stack, business, mode) as sdk:
        customer = await sdk.customers.create(email=email, name=name)
    return Target(business, mode, str(customer.customer_id), email, name)


def base_url(stack: Stack, mode: Mode) -> str:
    """The per-business portal base URL of a mode."""
    return stack.portal_urls.for_mode(mode)


def portal_url(stack: Stack, target: Target, page: str) -> str:
    """One of the target's portal URLs."""
    return f"{base_url(stack, target.mode)}/b/{target.business.business_id}/{page}"


async def business_session(stack: Stack, http: PortalHttp, target: Target) -> str:
    """A session for the target customer, from a magic link (returns the cookie value)."""
    async with sdk_for(stack, target.business, target.mode) as sdk:
        link = (await sdk.customers.customer_portal.create(target.customer_id)).link
    return await http.sign_in_with_link(link, target.mode, target.business.business_id)


async def unified_session(stack: Stack, http: PortalHttp, mailbox: Mailbox, email: str) -> str:
    """A unified session for this email (login form -> mailbox -> link)."""
    login = await http.get(f"{stack.portal_urls.unified}/login")
    sent = await http.submit(login, {"email": email})
    assert sent.status == 200, sent.status
    link = message_link(await mailbox.wait_for(email), f"{stack.portal_urls.unified}/link/cpt_")
    confirm = await http.get(link)
    entered = await http.submit(confirm)
    assert entered.status == 303 and UNIFIED_COOKIE in entered.set_cookies, entered.status
    return entered.set_cookies[UNIFIED_COOKIE]


async def own_csrf_token(stack: Stack, http: PortalHttp, target: Target, secret: str) -> str:
    """The CSRF token of the attacker's own session (read from its own profile page)."""
    cookie = {business_cookie(target.mode, target.business.business_id): secret}
    profile = await http.get(portal_url(stack, target, "profile"), cookies=cookie)
    assert profile.status == 200
    return profile.csrf_token()


def assert_not_found(reply: Reply, what: str, victim: Target) -> None:
    """404, and nothing of the victim on the page."""
    assert reply.status == 404, f"{what}: {reply.status}"
    assert victim.email not in reply.text and victim.customer_id not in reply.text, what


async def attack_portal(
    stack: Stack,
    http: PortalHttp,
    victim: Target,
    secret: str,
    csrf_token: str,
    label: str,
) -> None:
    """Every page and form of the victim's portal, with ``secret`` as the victim's cookie."""
    cookies = {business_cookie(victim.mode, victim.business.business_id): secret}
    for page in PAGES:
        reply = await http.get(portal_url(stack, victim, page), cookies=cookies)
        assert_not_found(reply, f"{label} GET {page or 'home'}", victim)
    fields = {
        "profile": {"name": "Mallory", "phone_number": "+15555550100"},
        "profile/email": {"new_email": unique_email("mallory")},
        "logout": {},
    }
    for form in FORMS:
        reply = await http.request(
            "POST",
            portal_url(stack, victim, form),
            cookies=cookies,
            form={"csrf_token": csrf_token, **fields[form]},
        )
        assert_not_found(reply, f"{label} POST {form}", victim)


async def test_sessions_never_reach_another_customers_portal(
    stack: Stack, shop: PortalBusiness, http: PortalHttp, mailbox: Mailbox
) -> None:
    async with stack.auth_admin() as admin:
        other = await create_portal_business(admin, "Victim Shop")
    attacker = await new_target(stack, shop, "test", "attacker")
    victims = [
        await new_target(stack, other, "test", "victim-test"),
        await new_target(stack, other, "live", "victim-live"),
        # Same business as the attacker, the other mode.
        await new_target(stack, shop, "live", "victim-same-shop-live"),
    ]
    # Victims are signed in too: their sessions must be of no use to anyone else.
    for victim in victims:
        await business_session(stack, http, victim)
    secret = await business_session(stack, http, attacker)
    csrf = await own_csrf_token(stack, http, attacker, secret)
    own = await http.get(
        portal_url(stack, attacker, ""),
        cookies={business_cookie("test", shop.business_id): secret},
    )
    assert own.status == 200  # the session is good: refusals below are authorization

    for victim in victims:
        await attack_portal(stack, http, victim, secret, csrf, f"A's session on {victim.email}")

    # A unified session for an address that is nobody's customer at the victims' shops.
    outsider_email = unique_email("outsider")
    async with stack.auth_admin() as admin:
        elsewhere = await create_portal_business(admin, "Elsewhere")
    await new_target(stack, elsewhere, "live", "x")  # a live customer somewhere, another email
    async with sdk_for(stack, elsewhere, "live") as sdk:
        await sdk.customers.create(email=outsider_email, name="Outsider")
    unified = await unified_session(stack, http, mailbox, outsider_email)
    accounts = await http.get(f"{stack.portal_urls.unified}/", cookies={UNIFIED_COOKIE: unified})
    assert accounts.status == 200
    unified_csrf = accounts.csrf_token()
    for victim in victims:
        await attack_portal(
            stack, http, victim, unified, unified_csrf, f"unified session on {victim.email}"
        )
        if victim.mode == "live":
            opened = await http.request(
                "POST",
                f"{stack.portal_urls.unified}/open/{victim.business.business_id}",
                cookies={UNIFIED_COOKIE: unified},
                form={"csrf_token": unified_csrf},
            )
            # Open goes through the live site (which binds this browser) back to the
            # unified site, where the hand-off would be minted: that step refuses.
            assert opened.status == 303, opened.status
            bind = await http.get(opened.location)
            assert bind.status == 303, bind.status
            minted = await http.get(bind.location, cookies={UNIFIED_COOKIE: unified})
            assert_not_found(minted, f"unified open of {victim.email}", victim)
            for step in (opened, bind, minted):
                assert not any(name.startswith("__Host-cp_live") for name in step.set_cookies)

    # Nothing the attacks posted changed the victims.
    for victim in victims:
        async with sdk_for(stack, victim.business, victim.mode) as sdk:
            after = await sdk.customers.retrieve(victim.customer_id)
        assert (after.email, after.name, after.phone_number) == (victim.email, victim.name, None)


async def test_a_link_of_one_mode_does_not_exist_under_the_other(
    stack: Stack, shop: PortalBusiness, http: PortalHttp
) -> None:
    target = await new_target(stack, shop, "test", "cross-mode")
    async with sdk_for(stack, shop, "test") as sdk:
        link = (await sdk.customers.customer_portal.create(target.customer_id)).link
    token = link.rsplit("/", 1)[1]
    live_link = f"{stack.portal_urls.live}/link/{token}"

    shown = await http.get(live_link)
    assert shown.status == 404
    assert 'data-state="unknown"' in shown.text
    confirm = await http.get(link)  # a real confirm page, for a valid CSRF pair
    posted = await http.request(
        "POST",
        live_link,
        cookies={"__Host-csrf": confirm.set_cookies["__Host-csrf"]},
        form={"csrf_token": confirm.csrf_token()},
    )
    assert posted.status == 404
    assert not any(name.startswith("__Host-cp_") for name in posted.set_cookies)

    # Trying it under live did not use it up: it still works where it belongs.
    assert await http.sign_in_with_link(link, "test", shop.business_id)


async def test_merchant_api_keys_only_reach_their_own_business_and_mode(
    stack: Stack, shop: PortalBusiness
) -> None:
    async with stack.auth_admin() as admin:
        other = await create_portal_business(admin, "Other Merchant")
    mine_test = await new_target(stack, shop, "test", "mine-test")
    cases = [
        # (key of shop in mode, someone else's customer)
        ("test", await new_target(stack, other, "test", "theirs-test")),
        ("test", await new_target(stack, other, "live", "theirs-live")),
        ("test", await new_target(stack, shop, "live", "mine-live")),
        ("live", mine_test),
    ]
    for mode, victim in cases:
        label = f"{mode} key of {shop.name} on {victim.email}"
        async with sdk_for(stack, shop, mode) as sdk:
            with pytest.raises(NotFoundError) as fetched:
                await sdk.customers.retrieve(victim.customer_id)
            assert fetched.value.status_code == 404, label
            with pytest.raises(NotFoundError):
                await sdk.customers.update(victim.customer_id, name="Mallory")
            with pytest.raises(NotFoundError):
                await sdk.customers.customer_portal.create(victim.customer_id, send_email=True)
            listed = await sdk.customers.list(email=victim.email)
            assert list(listed.items) == [], label
        async with sdk_for(stack, victim.business, victim.mode) as owner:
            assert (await owner.customers.retrieve(victim.customer_id)).name == victim.name
