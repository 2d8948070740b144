"""Error pages never link off-site, whatever the request path looks like.

With the portals mounted at ``/`` (the Helm layout), an unknown URL such as
``/%2F%2Fevil.example`` gets the portal's 404 page. Its links (language
switcher included) must resolve to our own site: a link built from the
decoded path would read ``//evil.example?lang=en``, which browsers follow
to another host.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
from aiohttp.test_utils import TestClient, TestServer
from gateway.app import create_app
from yarl import URL

from .conftest import settings_for

HOSTS = {"live": "live.localhost:8443", "test": "test.localhost:8443", "all": "all.localhost:8443"}


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("href", "src", "action", "formaction") and value is not None:
                self.urls.append(value)


def links_of(html: str) -> list[str]:
    parser = _Links()
    parser.feed(html)
    return parser.urls


@pytest.fixture
async def root_gateway(fake_auth: Any) -> AsyncIterator[TestClient[Any, Any]]:
    """The three portals at ``/`` on three hosts, as the Helm chart deploys them."""
    _fake, port = fake_auth
    settings = settings_for(
        port,
        portal_live_base_url=f"https://{HOSTS['live']}",
        portal_test_base_url=f"https://{HOSTS['test']}",
        unified_base_url=f"https://{HOSTS['all']}",
    )
    async with TestClient(TestServer(create_app(settings))) as client:
        yield client


@pytest.mark.parametrize("raw_path", ["/%2F%2Fevil.example", "/%5Cevil.example"])
@pytest.mark.parametrize("site", ["live", "test", "all"])
async def test_not_found_page_at_the_root_links_only_to_its_own_site(
    root_gateway: TestClient[Any, Any], raw_path: str, site: str
) -> None:
    host = HOSTS[site]
    resp = await root_gateway.get(
        URL(raw_path, encoded=True), headers={"Host": host}, allow_redirects=False
    )
    assert resp.status == 404
    html = await resp.text()
    urls = links_of(html)
    assert any("lang=it" in url for url in urls), "the language switcher is on the page"
    page_url = f"https://{host}{raw_path}"
    for url in urls:
        # Browsers read a backslash as a slash in http(s) URLs.
        resolved = urlsplit(urljoin(page_url, url.replace("\\", "/")))
        assert (resolved.scheme, resolved.netloc) == ("https", host), url
