"""The three public sites of the portal and how a request is matched to one.

A *site* is a configured base URL: the live per-business portal, the test
per-business portal and the unified portal (live only). A request belongs to
the site whose path prefix it came in under; when several sites share a path
prefix on different hosts (production: ``https://portal.example.com``,
``https://test.portal.example.com``, ``https://my.portal.example.com``), the
Host header tells them apart, and a host that is none of them gets nothing.
The mode of a page is the mode of its site, so a test link or session can
never reach live data through a live URL, and the reverse.

Links that leave the gateway (redirects, emails via auth) are built from the
configured base URLs only, never from the request's Host header.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from aiohttp import web
from billing_kit.scoping import Mode as Mode  # re-exported: the domain spelling of a mode

SiteKind = Literal["business", "unified"]

# Business ids come from auth ("biz_" + random); anything else in a path is a 404.
BUSINESS_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True, slots=True)
class Site:
    """One configured base URL."""

    kind: SiteKind
    mode: Mode
    base_url: str  # no trailing slash
    scheme: str
    host: str  # host[:port] as configured, lower case
    prefix: str  # path prefix without trailing slash ("" for the root)

    @property
    def secure(self) -> bool:
        """Served over https: pages then carry HSTS."""
        return self.scheme == "https"

    @property
    def origin(self) -> str:
        """``scheme://host[:port]``."""
        return f"{self.scheme}://{self.host}"

    def url(self, path: str) -> str:
        """An absolute URL on this site for a path starting with ``/``."""
        return f"{self.base_url}{path}"

    def path(self, path: str) -> str:
        """The request path (prefix included) of ``path`` on this site."""
        return f"{self.prefix}{path}"


@dataclass(frozen=True, slots=True)
class Sites:
    """The live and test per-business portals and the unified portal."""

    live: Site
    test: Site
    unified: Site

    def all(self) -> tuple[Site, Site, Site]:
        """Every site, live first."""
        return (self.live, self.test, self.unified)

    def portal(self, mode: Mode) -> Site:
        """The per-business portal of ``mode``."""
        return self.live if mode == "live" else self.test

    def prefixes(self, kind: SiteKind | None = None) -> list[str]:
        """The distinct path prefixes the sites (of ``kind``, if given) are served under."""
        return list(dict.fromkeys(s.prefix for s in self.all() if kind is None or s.kind == kind))

    def at_prefix(self, prefix: str) -> list[Site]:
        """Every site served under ``prefix`` (on different hosts when several)."""
        return [s for s in self.all() if s.prefix == prefix]

    def match(
        self, request: web.Request, kind: SiteKind | Collection[SiteKind], prefix: str
    ) -> Site | None:
        """The site a request under ``prefix`` belongs to, if it is of ``kind``.

        With one site on that prefix the prefix decides (the gateway may sit
        behind a proxy that rewrites Host); with several, the Host header does,
        so ``/link/…`` on the unified host is the unified portal's page and the
        same path on the live host the live portal's.
        """
        kinds = {kind} if isinstance(kind, str) else set(kind)
        candidates = self.at_prefix(prefix)
        site: Site | None = None
        if len(candidates) == 1:
            site = candidates[0]
        else:
            host = request.host.lower()
            site = next((s for s in candidates if s.host == host), None)
        return site if site is not None and site.kind in kinds else None

    def for_unrouted(self, request: web.Request) -> Site | None:
        """The site an unknown URL was meant for (its error page), if any.

        A path under a site's own prefix is that site's; a site served at the
        root claims only requests to its own host, so the merchant API's
        unknown URLs on the API host stay JSON problems.
        """
        path = request.path
        under = [
            s
            for s in self.all()
            if not s.prefix or path == s.prefix or path.startswith(s.prefix + "/")
        ]
        if not under:
            return None
        longest = max(len(s.prefix) for s in under)
        under = [s for s in under if len(s.prefix) == longest]
        if len(under) == 1 and longest:
            return under[0]
        host = request.host.lower()
        return next((s for s in under if s.host == host), None)


def parse_site(kind: SiteKind, mode: Mode, base_url: str) -> Site:
    """Validate one base URL (http(s), a host, no query or fragment)."""
    parts = urlsplit(base_url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{kind} {mode} base URL must be an absolute http(s) URL: {base_url!r}")
    if parts.query or parts.fragment or "@" in parts.netloc:
        raise ValueError(f"{kind} {mode} base URL must not carry credentials, query or fragment")
    prefix = parts.path.rstrip("/")
    if prefix and not re.fullmatch(r"(/[A-Za-z0-9_\-.]+)+", prefix):
        raise ValueError(f"{kind} {mode} base URL has an unusable path: {parts.path!r}")
    host = parts.netloc.lower()
    return Site(
        kind=kind,
        mode=mode,
        base_url=f"{parts.scheme}://{host}{prefix}",
        scheme=parts.scheme,
        host=host,
        prefix=prefix,
    )


def build_sites(live_url: str, test_url: str, unified_url: str) -> Sites:
    """The three sites; refuses base URLs that could not be told apart."""
    sites = Sites(
        live=parse_site("business", "live", live_url),
        test=parse_site("business", "test", test_url),
        unified=parse_site("unified", "live", unified_url),
    )
    # Pages are matched by (host, prefix): two sites there could not be told apart.
    seen: dict[tuple[str, str], Site] = {}
    for site in sites.all():
        other = seen.setdefault((site.host, site.prefix), site)
        if other is not site:
            raise ValueError(
                f"the {other.kind} {other.mode} and {site.kind} {site.mode} base URLs "
                "must differ in host or path"
            )
    return sites


def valid_business_id(business_id: str) -> bool:
    """A syntactically possible business id."""
    return bool(BUSINESS_ID_RE.match(business_id))
