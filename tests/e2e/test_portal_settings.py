"""What a business lets its customers do in the portal (issue 14 item 6), end to end.

Through the merchant API's extension ``PATCH /business`` the business turns off plan
change and cancel: its portal then shows no Cancel action, the cancel route refuses
(403) and the subscription stays active; a cancellation scheduled earlier through
the official SDK can still be undone from the portal. ``portalctl`` (the operator's
command, run as a process) shows and sets the same settings.

Set ``E2E_SCREENSHOTS`` to a directory to keep screenshots of the detail page with
its actions hidden, at desktop and phone widths.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from devstack import Stack
from devstack.portal import PortalBusiness, create_portal_business, unique_email
from playwright.async_api import Page, expect

from .conftest import merchant_sdk
from .test_portal_subscriptions import sign_in_at, subscribed
from .test_subscriptions_api import Cards

pytestmark = pytest.mark.e2e


@pytest_asyncio.fixture(loop_scope="session")
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest_asyncio.fixture(loop_scope="session")
async def strict_shop(stack: Stack) -> PortalBusiness:
    """A business of this test alone: its settings change, nobody else's."""
    async with stack.auth_admin() as admin:
        return await create_portal_business(admin, f"Regole e2e {uuid.uuid4().hex[:6]}")


async def patch_business(
    stack: Stack, http: aiohttp.ClientSession, key: str, body: Any
) -> tuple[int, Any, Any]:
    async with http.patch(
        f"{stack.gateway_url}/business", json=body, headers={"Authorization": f"Bearer {key}"}
    ) as reply:
        return reply.status, await reply.json(), reply.headers


async def portalctl(stack: Stack, *argv: str) -> tuple[int, str, str]:
    exe = Path(sys.executable).with_name("portalctl")
    exe_path = str(exe) if exe.exists() else shutil.which("portalctl")
    assert exe_path, "portalctl entry point is installed"
    process = await asyncio.create_subprocess_exec(
        exe_path,
        *argv,
        env={**os.environ, "PORTALCTL_AUTH_TARGET": stack.grpc_target("auth")},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_cancel_and_plan_change_disabled_hide_and_refuse_but_undo_still_works(
    stack: Stack, strict_shop: PortalBusiness, http: aiohttp.ClientSession, page: Page
) -> None:
    shop = strict_shop
    async with merchant_sdk(stack, shop) as sdk:
        customer = await sdk.customers.create(email=unique_email("rules"), name="Ada Lovelace")
        card = await Cards(stack, shop.business_id, http).save(
            customer.customer_id, "4242424242424242"
        )
        kept = await subscribed(sdk, customer.customer_id, card)
        ending = await subscribed(sdk, customer.customer_id, card)
        # Scheduled before the business turns cancelling off.
        await sdk.subscriptions.update(ending, cancel_at_next_billing_date=True)

        # A bad value is refused, naming the field, and changes nothing.
        status, problem, headers = await patch_business(
            stack, http, shop.test_key, {"portal_settings": {"allow_cancel": "no"}}
        )
        assert status == 422 and headers["x-should-retry"] == "false"
        assert [e["field"] for e in problem["errors"]] == ["portal_settings.allow_cancel"]

        status, settings, _ = await patch_business(
            stack,
            http,
            shop.test_key,
            {"portal_settings": {"allow_plan_change": False, "allow_cancel": False}},
        )
        assert status == 200, settings
        assert settings["portal_settings"]["allow_plan_change"] is False
        assert settings["portal_settings"]["allow_cancel"] is False
        assert settings["portal_settings"]["allow_pause"] is True

        base = f"/b/{shop.business_id}"
        await sign_in_at(page, stack, shop, sdk, customer.customer_id, f"{base}/subscriptions")
        detail = f"{stack.portal_urls.test}{base}/subscriptions/{kept}"
        await page.goto(detail)
        await expect(page.locator("#page-title")).to_be_visible()
        await expect(page.locator("#cancel-subscription")).to_have_count(0)
        await expect(page.locator("#pause-subscription")).to_be_visible()  # still allowed
        # Plan change is off too: whatever its page becomes, no link to it is offered.
        change_plan = page.get_by_role("link", name=re.compile("change plan", re.I))
        await expect(change_plan).to_have_count(0)
        shots = os.environ.get("E2E_SCREENSHOTS")
        if shots:
            await asyncio.to_thread(Path(shots).mkdir, parents=True, exist_ok=True)
            for width, height in ((1280, 900), (390, 844)):
                await page.set_viewport_size({"width": width, "height": height})
                await page.screenshot(
                    path=str(Path(shots) / f"detail-no-cancel-{width}.png"), full_page=True
                )

        # The cancel route refuses, even with a valid session and CSRF token.
        csrf = await page.locator("input[name=csrf_token]").first.get_attribute("value")
        assert csrf
        refused = await page.request.post(
            f"{detail}/cancel",
            form={"csrf_token": csrf, "when": "now", "confirm": "yes"},
            max_redirects=0,
        )
        assert refused.status == 403
        assert "not available in the portal" in await refused.text()
        await page.goto(f"{detail}/cancel")
        await expect(page.locator("#not-offered")).to_be_visible()
        await expect(page.locator("#confirm-cancel")).to_have_count(0)
        if shots:
            await page.screenshot(path=str(Path(shots) / "cancel-not-offered-390.png"))
        still = await sdk.subscriptions.retrieve(kept)
        assert still.status == "active" and not still.cancel_at_next_billing_date

        # Undoing the cancellation scheduled earlier is always allowed.
        await page.goto(f"{stack.portal_urls.test}{base}/subscriptions/{ending}")
        await page.locator("#undo-cancel").click()
        await page.wait_for_url(f"**/subscriptions/{ending}?done=undone")
        await expect(page.locator("#notice")).to_contain_text("continue and renew")
        await expect(page.locator("#cancel-subscription")).to_have_count(0)
        undone = await sdk.subscriptions.retrieve(ending)
        assert undone.status == "active" and not undone.cancel_at_next_billing_date


async def test_portalctl_shows_and_sets_what_the_merchant_api_sees(
    stack: Stack, strict_shop: PortalBusiness, http: aiohttp.ClientSession
) -> None:
    shop = strict_shop
    code, out, err = await portalctl(
        stack,
        "business",
        "set",
        shop.business_id,
        "--no-allow-pause",
        "--no-ask-cancel-reason",
        "--downgrade-timing",
        "immediately",
        "--json",
    )
    assert code == 0, err
    assert json.loads(out)["portal_settings"]["allow_pause"] is False
    async with http.get(
        f"{stack.gateway_url}/business", headers={"Authorization": f"Bearer {shop.live_key}"}
    ) as reply:
        assert reply.status == 200
        seen = await reply.json()
    assert seen["portal_settings"] == {
        "allow_cancel": True,
        "allow_pause": False,
        "allow_plan_change": True,
        "allow_quantity_change": True,
        "ask_cancel_reason": False,
        "downgrade_timing": "immediately",
    }
    status, _, _ = await patch_business(
        stack, http, shop.test_key, {"portal_settings": {"allow_quantity_change": False}}
    )
    assert status == 200
    code, out, err = await portalctl(stack, "business", "settings", shop.business_id)
    assert code == 0, err
    assert "allow_quantity_change  no" in out and "allow_pause            no" in out
    code, _, err = await portalctl(
        stack, "business", "set", shop.business_id, "--renewal-reminder-days", "99"
    )
    assert code == 1 and "renewal_reminder_days" in err
