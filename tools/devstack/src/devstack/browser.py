"""The portal in a real browser: Debian's Chromium driven by Playwright.

`playwright install` downloads browser builds of its own, which this network
does not allow, so the tests launch the system's Chromium (``CHROMIUM_PATH``,
else ``chromium`` on PATH). The steps below are what a customer does; they
wait on the page structure the gateway README keeps stable (ids, headings).
"""

from __future__ import annotations

import os
import shutil

from playwright.async_api import Browser, Page, Playwright, Response

CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def chromium_path() -> str:
    """Where the system Chromium is (``CHROMIUM_PATH`` wins)."""
    return os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"


async def launch_chromium(playwright: Playwright) -> Browser:
    """A headless system Chromium."""
    return await playwright.chromium.launch(
        executable_path=chromium_path(), args=list(CHROMIUM_ARGS)
    )


async def heading(page: Page) -> str:
    """The page's ``h1#page-title`` text, whitespace collapsed."""
    return " ".join((await page.locator("h1#page-title").inner_text()).split())


async def submit_with(page: Page, button: str) -> Response:
    """Click a form's submit button and wait until the answer to its POST has loaded.

    Waiting on the POST (not just "load") matters: right after the click the old
    page is still there, so reading it would see the page before the submit.
    """
    async with page.expect_response(lambda r: r.request.method == "POST") as posted:
        await page.locator(button).click()
    response = await posted.value
    await page.wait_for_load_state()
    return response


async def request_sign_in_link(page: Page, login_url: str, email: str) -> Response:
    """On a static link page (per business or unified): type the email, ask for a link.

    Returns the answer to the POST (its status and headers matter to tests).
    """
    await page.goto(login_url)
    await page.locator("input#email").fill(email)
    return await submit_with(page, "button#send-link")


async def open_and_confirm_link(page: Page, link: str) -> Response | None:
    """Open a one-time link from an email and press Continue on the confirm page.

    Returns the answer to the GET of the link (the confirm page).
    """
    shown = await page.goto(link)
    await submit_with(page, "button#confirm-link")
    return shown
