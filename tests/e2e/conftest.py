"""The whole system, started once per test session on free ports.

Black-box: tests talk to it only as a merchant (HTTP, the official SDK), an
operator (auth's gRPC API) or a monitoring system (gRPC health, /readyz)
would. Nothing here reaches into a service's database, except the end-of-suite
check that no card number was ever stored (:func:`card_numbers_in_databases`).
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from devstack import BusinessWithKey, Mailbox, Stack, message_links
from devstack.browser import launch_chromium
from devstack.portal import Mode, PortalBusiness, PortalHttp, create_portal_business
from devstack.smtp_sink import read_message
from dodopayments import AsyncDodoPayments
from playwright.async_api import Browser, BrowserContext, Page, async_playwright
from pymongo import AsyncMongoClient


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def stack(tmp_path_factory: pytest.TempPathFactory, amqp_url: str) -> AsyncIterator[Stack]:
    """Every service, SecantusDB and the SMTP sink, in their own broker namespace.

    After the last test, with every process stopped (logs and spans flushed),
    no secret the suite produced may appear in any log or span file
    (:func:`assert_no_secrets_written`).
    """
    running = Stack.isolated(tmp_path_factory.mktemp("stack"), amqp_url=amqp_url)
    await running.start()
    stored: list[str] = []
    try:
        yield running
        stored = await card_numbers_in_databases(running)
    finally:
        await running.stop()
    assert not stored, "card numbers stored in the databases:\n" + "\n".join(stored)
    await asyncio.to_thread(assert_no_secrets_written, running)


# A secret value of any kind: one-time tokens (magic link, sign-in, email change,
# unified, hand-off) are ``cpt_``, session secrets (the cookies) ``cps_``, API keys
# ``sk_test_``/``sk_live_``; each is 43 random characters after the prefix.
SECRET_VALUE = re.compile(r"(?<![A-Za-z0-9])(?:cpt|cps|sk_test|sk_live)_[A-Za-z0-9_-]{20,}")


# The documented test cards (services/payments/README.md), as typed with and without spaces.
TEST_CARD_NUMBERS = (
    "4242424242424242",
    "4000000000000002",
    "4000000000009995",
    "4000000000000069",
    "4000000000000341",
    "4000002500003155",
    "4000002760003184",
)
CARD_NUMBER_SPELLINGS = tuple(
    spelling
    for number in TEST_CARD_NUMBERS
    for spelling in (number, " ".join(number[i : i + 4] for i in range(0, 16, 4)))
)
_SYSTEM_DATABASES = {"admin", "local", "config"}


async def card_numbers_in_databases(stack: Stack) -> list[str]:
    """Where a test card number appears in any collection of any database of the stack."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        stack.mongo_url, serverSelectionTimeoutMS=5000
    )
    prefix = stack.external_mongo[1] if stack.external_mongo else ""
    found: list[str] = []
    scanned: set[str] = set()
    try:
        for name in await client.list_database_names():
            if name in _SYSTEM_DATABASES or not name.startswith(prefix):
                continue
            database = client[name]
            for collection in await database.list_collection_names():
                scanned.add(f"{name.removeprefix(prefix)}.{collection}")
                async for document in database[collection].find({}):
                    text = repr(document)
                    found += [
                        f"{name}.{collection}: {number[:4]}…{number[-4:]}"
                        for number in CARD_NUMBER_SPELLINGS
                        if number in text
                    ]
    finally:
        await client.close()
    saved_a_card = "POST /pay/{session_id} 303" in (stack.log_dir / "payments.log").read_text(
        errors="replace"
    )
    assert not saved_a_card or "payments.payment_methods" in scanned, (
        "the hosted page saved cards but their collection was not scanned: the check would "
        "prove nothing"
    )
    return found


def assert_no_secrets_written(stack: Stack) -> None:
    """No token, session secret or API key the suite produced is in a log or span file.

    The values come from every email the suite received (every emailed link)
    plus anything shaped like a secret (hand-off tokens and session cookies
    never travel by email, so their shape is what finds them).
    """
    emailed: set[str] = set()
    for path in stack.mail_dir.glob("*.eml"):
        for link in message_links(read_message(path)):
            emailed.update(SECRET_VALUE.findall(link))
    served = '"gateway.access"' in (stack.log_dir / "gateway.log").read_text(errors="replace")
    spans = stack.spans_path("gateway")
    assert not served or (spans.exists() and "http.route" in spans.read_text()), (
        "the gateway served requests but exported no spans: the check would prove nothing"
    )
    leaks: list[str] = []
    for path in sorted(stack.log_dir.iterdir()):
        text = path.read_text(errors="replace")
        found = set(SECRET_VALUE.findall(text)) | {value for value in emailed if value in text}
        leaks += [f"{path.name}: {value[:8]}…" for value in sorted(found)]
        # Card numbers (typed only on the hosted payment page) in any log or span file.
        leaks += [
            f"{path.name}: card {number[:4]}…{number[-4:]}"
            for number in CARD_NUMBER_SPELLINGS
            if number in text
        ]
    assert not leaks, "secrets written to logs or spans:\n" + "\n".join(leaks)


async def new_merchant(stack: Stack, label: str) -> BusinessWithKey:
    """A business of its own (unique name) with a test-mode API key."""
    return await stack.create_business(f"{label} {uuid.uuid4().hex[:8]}")


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def merchant(stack: Stack) -> BusinessWithKey:
    """The business most tests act as."""
    return await new_merchant(stack, "Acme e2e")


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def other_merchant(stack: Stack) -> BusinessWithKey:
    """A second business, whose data the first must never see."""
    return await new_merchant(stack, "Globex e2e")


@pytest_asyncio.fixture(loop_scope="session")
async def sdk(stack: Stack, merchant: BusinessWithKey) -> AsyncIterator[AsyncDodoPayments]:
    """The official Dodo Payments SDK pointed at our gateway (no retries: see failures)."""
    client = AsyncDodoPayments(
        bearer_token=merchant.api_key_secret, base_url=stack.gateway_url, max_retries=0
    )
    async with client:
        yield client


@pytest.fixture
def mini_stack_dir(tmp_path: Path) -> Path:
    """Data dir for a throwaway stack that a test may break."""
    return tmp_path / "mini-stack"


# --- the customer portal: browser, mailbox, businesses with both modes ------------------

# Generous for one page step on a loaded 2-core machine, short enough to fail fast.
PAGE_TIMEOUT_MS = 15_000


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    """Debian's Chromium driven by Playwright (`playwright install` cannot download here)."""
    async with async_playwright() as playwright:
        launched = await launch_chromium(playwright)
        try:
            yield launched
        finally:
            await launched.close()


@pytest_asyncio.fixture(loop_scope="session")
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    """A fresh browser profile per test: no cookies from other tests."""
    ctx = await browser.new_context(locale="en-US")
    ctx.set_default_timeout(PAGE_TIMEOUT_MS)
    try:
        yield ctx
    finally:
        await ctx.close()


BrowserContextFactory = Callable[[], Awaitable[BrowserContext]]


@pytest_asyncio.fixture(loop_scope="session")
async def browser_context_factory(browser: Browser) -> AsyncIterator[BrowserContextFactory]:
    """More browser profiles for one test (a second device, another person)."""
    opened: list[BrowserContext] = []

    async def new_context() -> BrowserContext:
        ctx = await browser.new_context(locale="en-US")
        ctx.set_default_timeout(PAGE_TIMEOUT_MS)
        opened.append(ctx)
        return ctx

    try:
        yield new_context
    finally:
        for ctx in opened:
            await ctx.close()


@pytest_asyncio.fixture(loop_scope="session")
async def page(context: BrowserContext) -> Page:
    """One tab in the test's own browser profile."""
    return await context.new_page()


@pytest.fixture(scope="session")
def mailbox(stack: Stack) -> Mailbox:
    """The SMTP sink's mailbox, read like the customers' inboxes."""
    return Mailbox(stack.mail_dir)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def shop(stack: Stack) -> PortalBusiness:
    """The business whose customers walk through the portal (keys for both modes)."""
    async with stack.auth_admin() as admin:
        return await create_portal_business(admin, f"Bottega e2e {uuid.uuid4().hex[:6]}")


@pytest_asyncio.fixture(loop_scope="session")
async def http() -> AsyncIterator[PortalHttp]:
    """Raw HTTP to the portal pages, cookies passed explicitly."""
    async with PortalHttp.new_session() as session:
        yield PortalHttp(session)


def merchant_sdk(stack: Stack, business: PortalBusiness, mode: Mode = "test") -> AsyncDodoPayments:
    """The official SDK as this merchant in one mode (``async with`` it)."""
    return AsyncDodoPayments(
        bearer_token=business.key(mode), base_url=stack.gateway_url, max_retries=0
    )


@pytest_asyncio.fixture(loop_scope="session")
async def shop_sdk(stack: Stack, shop: PortalBusiness) -> AsyncIterator[AsyncDodoPayments]:
    """The SDK as ``shop`` in test mode."""
    async with merchant_sdk(stack, shop) as client:
        yield client
