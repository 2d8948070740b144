"""License keys end to end: bought on the hosted page, used through the official SDK.

A paid checkout of a license product issues one key per unit; the software
activates it up to the limit, a deactivation frees a slot, validation follows
the merchant's disable and, for a subscription, the paid period after a cancel
(test clock). A burst against the public API gets 429 while another key works.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from billing_kit.testing import eventually
from devstack import Mailbox, Stack, message_link
from devstack.browser import open_and_confirm_link, request_sign_in_link
from devstack.portal import PortalBusiness, create_portal_business, unique_email
from dodopayments import AsyncDodoPayments, ConflictError, NotFoundError, RateLimitError
from playwright.async_api import Page, expect
from standardwebhooks import Webhook

from .conftest import merchant_sdk
from .test_checkouts import _back, _pay
from .test_portal_subscriptions import sign_in_at
from .test_subscriptions_api import BILLING, MONTHLY, Cards, _advance

pytestmark = [pytest.mark.e2e, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

DAY = 86_400
ONE_TIME: Any = {"type": "one_time_price", "currency": "EUR", "price": 900}


async def _buy(
    stack: Stack, sdk: AsyncDodoPayments, page: Page, product_id: str, quantity: int
) -> list[Any]:
    """Pay a cart of ``quantity`` units on the hosted page; the keys it issued."""
    email = f"lic-{uuid.uuid4().hex[:8]}@example.com"
    session = await sdk.checkout_sessions.create(
        product_cart=[{"product_id": product_id, "quantity": quantity}],
        customer={"email": email, "name": "Ada Lovelace"},
        billing_address={"country": "IT"},
        return_url=_back(stack),
    )
    back = await _pay(page, stack, session.checkout_url)
    assert back["status"] == "succeeded"
    payment = await sdk.payments.retrieve(back["payment_id"])
    customer_id = payment.customer.customer_id

    async def issued() -> list[Any] | None:
        keys = [k async for k in sdk.license_keys.list(customer_id=customer_id)]
        return keys if len(keys) == quantity else None

    return await eventually(issued, within=30, message="no license key issued")


async def test_a_bought_key_activates_up_to_its_limit_and_stops_when_disabled(
    stack: Stack, shop: PortalBusiness, shop_sdk: AsyncDodoPayments, page: Page, mailbox: Mailbox
) -> None:
    product = await shop_sdk.products.create(
        name=f"Desktop app {uuid.uuid4().hex[:6]}",
        tax_category="saas",
        price=ONE_TIME,
        license_key_enabled=True,
        license_key_activations_limit=2,
        license_key_activation_message="Thanks! Paste the key in Settings.",
    )
    keys = await _buy(stack, shop_sdk, page, product.product_id, 2)
    assert len({k.key for k in keys}) == 2
    key = keys[0]
    assert (key.status, key.source, key.activations_limit, key.instances_count) == (
        "active",
        "auto",
        2,
        0,
    )
    assert key.payment_id and key.product_id == product.product_id
    await _each_key_emailed_once(shop_sdk, mailbox, keys, "Thanks! Paste the key in Settings.")

    first = await shop_sdk.licenses.activate(license_key=key.key, name="laptop")
    await shop_sdk.licenses.activate(license_key=key.key, name="desktop")
    assert first.license_key_id == key.id and first.product.product_id == product.product_id
    with pytest.raises(ConflictError):
        await shop_sdk.licenses.activate(license_key=key.key, name="one too many")
    assert (await shop_sdk.license_keys.retrieve(key.id)).instances_count == 2

    await shop_sdk.licenses.deactivate(license_key=key.key, license_key_instance_id=first.id)
    third = await shop_sdk.licenses.activate(license_key=key.key, name="tablet")
    assert (await shop_sdk.licenses.validate(license_key=key.key)).valid
    assert (
        await shop_sdk.licenses.validate(license_key=key.key, license_key_instance_id=third.id)
    ).valid
    assert not (
        await shop_sdk.licenses.validate(license_key=key.key, license_key_instance_id=first.id)
    ).valid

    await shop_sdk.license_keys.update(key.id, disabled=True)
    assert not (await shop_sdk.licenses.validate(license_key=key.key)).valid
    # A disabled key answers exactly like one that never existed.
    answers = []
    for presented in (key.key, "NOPE-" + uuid.uuid4().hex):
        with pytest.raises(NotFoundError) as refused:
            await shop_sdk.licenses.activate(license_key=presented, name="x")
        answers.append(refused.value.body)
    assert answers[0] == answers[1]
    # The other unit's key is untouched.
    assert (await shop_sdk.licenses.validate(license_key=keys[1].key)).valid


async def _each_key_emailed_once(
    sdk: AsyncDodoPayments, mailbox: Mailbox, keys: list[Any], activation_message: str
) -> None:
    """Every key reaches its customer in one key-delivered email, with the activation
    message, and no second copy follows."""
    address = (await sdk.customers.retrieve(keys[0].customer_id)).email

    async def delivered() -> list[Any] | None:
        found = [m for m in await mailbox.messages_to(address) if "license key" in m.subject]
        return found if len(found) >= len(keys) else None

    emails = await eventually(delivered, within=60, message="no key-delivered email")
    bodies = []
    for message in emails:
        text = message.message.get_body(preferencelist=("plain",))
        html = message.message.get_body(preferencelist=("html",))
        assert text is not None and html is not None
        body = str(text.get_content())  # type: ignore[attr-defined]
        assert activation_message in body
        assert activation_message in str(html.get_content())  # type: ignore[attr-defined]
        bodies.append(body)
    assert sorted(k.key for k in keys) == sorted(
        next(k.key for k in keys if k.key in body) for body in bodies
    )
    # No second copy follows (other emails, such as the receipt, may).
    await asyncio.sleep(3)
    again = [m for m in await mailbox.messages_to(address) if "license key" in m.subject]
    assert len(again) == len(keys)


async def test_a_cancelled_subscription_key_validates_until_the_paid_period_ends(
    stack: Stack, page: Page
) -> None:
    async with stack.auth_admin() as admin:
        business = await create_portal_business(admin, f"Licenze {uuid.uuid4().hex[:6]}")
    async with merchant_sdk(stack, business) as sdk, aiohttp.ClientSession() as http:
        plan = await sdk.products.create(
            name=f"Pro plan {uuid.uuid4().hex[:6]}",
            tax_category="saas",
            price=MONTHLY,
            license_key_enabled=True,
        )
        [key] = await _buy(stack, sdk, page, plan.product_id, 1)
        assert key.subscription_id
        await sdk.subscriptions.update(key.subscription_id, status="cancelled")
        # Paid for a month: still valid in the middle of it, not after it.
        assert await _advance(stack, business, http, 10 * DAY) == 200
        assert (await sdk.licenses.validate(license_key=key.key)).valid
        assert await _advance(stack, business, http, 25 * DAY) == 200
        assert not (await sdk.licenses.validate(license_key=key.key)).valid


async def test_a_trial_gets_its_key_with_its_first_paid_renewal_not_before(
    stack: Stack, mailbox: Mailbox
) -> None:
    """Also: the merchant's ``license_key.created`` webhook is ``GET /license_keys/{id}``."""
    async with stack.auth_admin() as admin:
        business = await create_portal_business(admin, f"Prova {uuid.uuid4().hex[:6]}")
    async with merchant_sdk(stack, business) as sdk, aiohttp.ClientSession() as http:
        plan = await sdk.products.create(
            name=f"Trial plan {uuid.uuid4().hex[:6]}",
            tax_category="saas",
            price=MONTHLY,
            license_key_enabled=True,
            license_key_activation_message="Sign in to the app with this key.",
        )
        received: list[tuple[dict[str, str], str]] = []
        url, receiver = await _receiver(received)
        endpoint = await sdk.webhooks.create(url=url, filter_types=["license_key.created"])
        address = unique_email("trial")
        customer = await sdk.customers.create(email=address, name="Ada")
        card = await Cards(stack, business.business_id, http).save(
            customer.customer_id, "4242424242424242"
        )
        created = await sdk.subscriptions.create(
            billing=BILLING,
            customer={"customer_id": customer.customer_id},
            product_id=plan.product_id,
            quantity=1,
            payment_method_id=card,
            trial_period_days=7,
        )
        sid = created.subscription_id
        assert (await sdk.subscriptions.retrieve(sid)).status == "active"

        async def keys() -> list[Any]:
            return [k async for k in sdk.license_keys.list(customer_id=customer.customer_id)]

        # Active on its trial, nothing paid: no key, and no key email.
        await asyncio.sleep(4)
        assert await keys() == []
        subjects = [m.subject for m in await mailbox.messages_to(address)]
        assert not [s for s in subjects if "license key" in s], subjects

        # The trial ends, the first renewal is charged: now the key is issued and emailed.
        assert await _advance(stack, business, http, 8 * DAY) == 200

        async def issued() -> list[Any] | None:
            found = await keys()
            return found or None

        [key] = await eventually(issued, within=30, message="no key after the paid renewal")
        assert key.subscription_id == sid and key.payment_id
        assert (await sdk.licenses.validate(license_key=key.key)).valid
        await _each_key_emailed_once(sdk, mailbox, [key], "Sign in to the app with this key.")

        # The merchant hears of it once, signed, with the key, in the API's shape.
        await eventually(lambda: received, within=30, message="no license_key.created webhook")
        [(headers, body)] = received
        secret = (await sdk.webhooks.retrieve_secret(endpoint.id)).secret
        Webhook(secret).verify(body, headers)
        payload = json.loads(body)
        assert payload["type"] == "license_key.created"
        api = await sdk.license_keys.with_raw_response.retrieve(key.id)
        assert payload["data"] == await api.json()
        assert payload["data"]["key"] == key.key
        await receiver.cleanup()


async def _receiver(
    received: list[tuple[dict[str, str], str]],
) -> tuple[str, web.AppRunner]:
    """A merchant's endpoint on this machine (test mode may deliver there): URL, runner."""

    async def hook(request: web.Request) -> web.Response:
        received.append((dict(request.headers.items()), await request.text()))
        return web.Response(status=200, text="ok")

    app = web.Application()
    app.router.add_post("/hooks/dodo", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return f"http://127.0.0.1:{port}/hooks/dodo", runner


async def test_a_burst_gets_429_while_another_key_still_works(
    stack: Stack, shop: PortalBusiness, shop_sdk: AsyncDodoPayments
) -> None:
    customer = await shop_sdk.customers.create(
        email=f"burst-{uuid.uuid4().hex[:8]}@example.com", name="Ada"
    )
    product = await shop_sdk.products.create(
        name="Burst app", tax_category="saas", price=ONE_TIME, license_key_enabled=True
    )
    burst, calm = (f"BURST-{uuid.uuid4().hex}", f"CALM-{uuid.uuid4().hex}")
    for text in (burst, calm):
        await shop_sdk.license_keys.create(
            customer_id=customer.customer_id, product_id=product.product_id, key=text
        )
    # The software needs no API key: an SDK without a valid one gets the same answers.
    async with AsyncDodoPayments(
        bearer_token="not-a-key", base_url=stack.gateway_url, max_retries=0
    ) as public:
        with pytest.raises(RateLimitError):
            for _ in range(100):
                assert (await public.licenses.validate(license_key=burst)).valid
        assert (await public.licenses.validate(license_key=calm)).valid


async def test_the_portal_lists_the_key_and_a_deactivation_frees_a_slot(
    stack: Stack, shop: PortalBusiness, shop_sdk: AsyncDodoPayments, page: Page
) -> None:
    product = await shop_sdk.products.create(
        name=f"Studio {uuid.uuid4().hex[:6]}",
        tax_category="saas",
        price=ONE_TIME,
        license_key_enabled=True,
        license_key_activations_limit=1,
        license_key_activation_message="Open Studio, then Help > Activate.",
    )
    [key] = await _buy(stack, shop_sdk, page, product.product_id, 1)
    laptop = await shop_sdk.licenses.activate(license_key=key.key, name="Ada's laptop")
    with pytest.raises(ConflictError):
        await shop_sdk.licenses.activate(license_key=key.key, name="desktop")
    # Another customer's key and instance, in the same business.
    stranger = await shop_sdk.customers.create(
        email=f"other-{uuid.uuid4().hex[:8]}@example.com", name="Bob"
    )
    theirs = await shop_sdk.license_keys.create(
        customer_id=stranger.customer_id, product_id=product.product_id, key=uuid.uuid4().hex
    )
    their_instance = await shop_sdk.licenses.activate(license_key=theirs.key, name="Bob's PC")

    base = f"/b/{shop.business_id}/license-keys"
    await sign_in_at(page, stack, shop, shop_sdk, key.customer_id, base)
    card = page.locator(f"#key-{key.id}")
    await expect(card.locator(".license-product")).to_have_text(product.name)
    await expect(card.locator(f"#key-text-{key.id}")).to_have_value(key.key)
    await expect(card).to_contain_text("1 of 1")
    await expect(card).to_contain_text("Open Studio, then Help > Activate.")
    await expect(card.locator(f"#instance-{laptop.id}")).to_contain_text("Ada's laptop")
    await expect(page.locator(f"#key-{theirs.id}")).to_have_count(0)
    for width in (1280, 390):
        await page.set_viewport_size({"width": width, "height": 900})
        await page.screenshot(path=f"/tmp/license-keys-{width}.png", full_page=True)
    await page.set_viewport_size({"width": 1280, "height": 900})

    # Another customer's instance: 404 on the confirm page and on its form.
    foreign = f"{stack.portal_urls.test}{base}/instances/{their_instance.id}/deactivate"
    assert (await page.goto(foreign)).status == 404  # type: ignore[union-attr]
    assert (await page.request.post(foreign, form={"csrf_token": "x"})).status == 404
    assert (await shop_sdk.licenses.validate(license_key=theirs.key)).valid

    await page.goto(f"{stack.portal_urls.test}{base}")
    await page.locator(f"#deactivate-{laptop.id}").click()
    await expect(page.locator("#page-title")).to_contain_text("Ada's laptop")
    await page.locator("#confirm-deactivate").click()
    await expect(page.locator("#notice")).to_be_visible()
    await expect(page.locator(f"#key-{key.id}")).to_contain_text("0 of 1")
    await expect(page.locator(f"#instance-{laptop.id}")).to_have_count(0)
    assert (await shop_sdk.licenses.activate(license_key=key.key, name="desktop")).id


async def test_the_unified_portal_lists_the_keys_of_every_business_of_the_email(
    stack: Stack, mailbox: Mailbox, page: Page
) -> None:
    suffix = uuid.uuid4().hex[:4]
    async with stack.auth_admin() as admin:
        first = await create_portal_business(admin, f"Alpha Soft {suffix}")
        second = await create_portal_business(admin, f"Beta Tools {suffix}")
    email = unique_email("allkeys")
    keys: list[tuple[PortalBusiness, Any]] = []
    for business, owner in ((first, email), (second, email), (second, unique_email("other"))):
        async with merchant_sdk(stack, business, "live") as sdk:
            customer = await sdk.customers.create(email=owner, name="Ada")
            product = await sdk.products.create(
                name=f"App {business.name}",
                tax_category="saas",
                price=ONE_TIME,
                license_key_enabled=True,
            )
            made = await sdk.license_keys.create(
                customer_id=customer.customer_id,
                product_id=product.product_id,
                key=uuid.uuid4().hex,
                activations_limit=3,
            )
            instance = await sdk.licenses.activate(license_key=made.key, name=f"PC {business.name}")
            keys.append((business, (made, instance)))
    (_, (mine_a, _)), (_, (mine_b, instance_b)), (_, (theirs, _)) = keys

    await request_sign_in_link(page, f"{stack.portal_urls.unified}/login", email)
    link = message_link(await mailbox.wait_for(email), f"{stack.portal_urls.unified}/link/cpt_")
    await open_and_confirm_link(page, link)
    await page.wait_for_url(f"{stack.portal_urls.unified}/")
    await page.locator("#all-license-keys").click()
    await page.wait_for_url(f"{stack.portal_urls.unified}/license-keys")
    for business, made in ((first, mine_a), (second, mine_b)):
        card = page.locator(f"#key-{made.id}")
        await expect(card.locator(".business-tag-name")).to_have_text(business.name)
        await expect(card.locator(f"#key-text-{made.id}")).to_have_value(made.key)
        await expect(card).to_contain_text("1 of 3")
    assert await page.locator(f"#key-{theirs.id}").count() == 0
    await page.screenshot(path="/tmp/license-keys-unified-1280.png", full_page=True)

    await page.locator(f"#deactivate-{instance_b.id}").click()
    await page.locator("#confirm-deactivate").click()
    await expect(page.locator("#notice")).to_be_visible()
    async with merchant_sdk(stack, second, "live") as sdk:
        assert (await sdk.license_keys.retrieve(mine_b.id)).instances_count == 0
