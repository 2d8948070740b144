"""The customer portal as the e2e tests reach it: merchants with both modes, raw HTTP.

Browsers are for journeys; many checks (every URL of an authorization
matrix, twenty concurrent POSTs, a burst of sign-in requests) are faster and
more exact as plain HTTP. :class:`PortalHttp` does what a browser does for
those pages — keeps the double-submit CSRF cookie, posts the hidden
``csrf_token`` — with the cookies in the caller's hands, so a test can also
present a stolen cookie under another name.
"""

from __future__ import annotations

import html
import re
import uuid
from dataclasses import dataclass, field
from urllib.parse import urljoin

import aiohttp
from billing_kit.scoping import Mode
from multidict import CIMultiDict, CIMultiDictProxy

from devstack.seed import AuthAdmin

CSRF_COOKIE = "__Host-csrf"
UNIFIED_COOKIE = "__Host-cu"
_HIDDEN_CSRF_RE = re.compile(r'name="csrf_token"\s+value="([^"]+)"')
_FORM_ACTION_RE = re.compile(r'<form[^>]*\saction="([^"]+)"')


def business_cookie(mode: Mode, business_id: str) -> str:
    """The per-business session cookie's name (one per business and mode)."""
    return f"__Host-cp_{mode}_{business_id}"


def unique_email(label: str) -> str:
    """An address no other test uses (rate limits count per address)."""
    return f"{label}-{uuid.uuid4().hex[:10]}@example.com"


@dataclass(frozen=True)
class PortalBusiness:
    """A business with one API key per mode."""

    business_id: str
    name: str
    test_key: str
    live_key: str

    def key(self, mode: Mode) -> str:
        """The API key secret of one mode."""
        return self.live_key if mode == "live" else self.test_key


async def create_portal_business(admin: AuthAdmin, name: str) -> PortalBusiness:
    """A new business with a test and a live API key (through auth's gRPC API)."""
    business = await admin.create_business(name, "support@example.com")
    _test_id, test_key = await admin.create_key(business.business_id, "e2e test", mode="test")
    _live_id, live_key = await admin.create_key(business.business_id, "e2e live", mode="live")
    return PortalBusiness(business.business_id, business.name, test_key, live_key)


@dataclass(frozen=True)
class Reply:
    """One HTTP answer, read completely (redirects are never followed)."""

    url: str
    status: int
    headers: CIMultiDictProxy[str]
    text: str
    set_cookies: dict[str, str] = field(default_factory=dict)

    @property
    def location(self) -> str:
        """The redirect target (absolute), or ``""``."""
        target = self.headers.get("Location", "")
        return urljoin(self.url, target) if target else ""

    def csrf_token(self) -> str:
        """The page's hidden ``csrf_token`` (AssertionError when the page has no form)."""
        found = _HIDDEN_CSRF_RE.search(self.text)
        assert found, f"no csrf_token field on {self.url} ({self.status})"
        return html.unescape(found.group(1))

    def form_action(self) -> str:
        """The absolute URL the page's first form posts to."""
        found = _FORM_ACTION_RE.search(self.text)
        assert found, f"no form on {self.url} ({self.status})"
        return urljoin(self.url, html.unescape(found.group(1)))


class PortalHttp:
    """A customer's browser without the browser: cookies are passed explicitly.

    Secure cookies are not kept by aiohttp over http://, and tests want to
    choose which cookie goes where anyway, so every call takes the cookies to send.
    """

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session

    @classmethod
    def new_session(cls) -> aiohttp.ClientSession:
        """A client session that stores no cookies and gives up after 20 s."""
        return aiohttp.ClientSession(
            cookie_jar=aiohttp.DummyCookieJar(), timeout=aiohttp.ClientTimeout(total=20)
        )

    async def request(
        self,
        method: str,
        url: str,
        *,
        cookies: dict[str, str] | None = None,
        form: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        """Send one request with exactly these cookies; never follows redirects."""
        sent: CIMultiDict[str] = CIMultiDict(headers or {})
        if cookies:
            sent["Cookie"] = "; ".join(f"{name}={value}" for name, value in cookies.items())
        async with self.session.request(
            method, url, data=form, headers=sent, allow_redirects=False
        ) as response:
            text = await response.text()
            return Reply(
                url=str(response.url),
                status=response.status,
                headers=response.headers,
                text=text,
                set_cookies={name: morsel.value for name, morsel in response.cookies.items()},
            )

    async def get(self, url: str, *, cookies: dict[str, str] | None = None) -> Reply:
        """GET a page."""
        return await self.request("GET", url, cookies=cookies)

    async def submit(
        self,
        page: Reply,
        fields: dict[str, str] | None = None,
        *,
        cookies: dict[str, str] | None = None,
        csrf_token: str | None = None,
    ) -> Reply:
        """POST the page's first form as a browser would: hidden CSRF token and CSRF cookie.

        ``csrf_token`` overrides the hidden field (a session's token when signed in);
        ``__Host-csrf`` from the page's Set-Cookie joins ``cookies``.
        """
        sent = dict(cookies or {})
        if CSRF_COOKIE in page.set_cookies:
            sent.setdefault(CSRF_COOKIE, page.set_cookies[CSRF_COOKIE])
        body = {"csrf_token": csrf_token or page.csrf_token(), **(fields or {})}
        return await self.request("POST", page.form_action(), cookies=sent, form=body)

    async def sign_in_with_link(self, link: str, mode: Mode, business_id: str) -> str:
        """Open a one-time link, confirm it and return the new session cookie's value."""
        confirm = await self.get(link)
        assert confirm.status == 200, f"confirm page answered {confirm.status}"
        entered = await self.submit(confirm)
        name = business_cookie(mode, business_id)
        assert entered.status == 303 and name in entered.set_cookies, (
            f"consuming the link answered {entered.status} without {name}"
        )
        return entered.set_cookies[name]
