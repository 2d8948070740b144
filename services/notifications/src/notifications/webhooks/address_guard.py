"""Keeps webhook deliveries away from internal addresses (SSRF guard).

A merchant chooses the URL, so without a guard the delivery worker could be
pointed at the cluster's own services, the cloud metadata endpoint
(169.254.169.254) or localhost. The worker's HTTP connector resolves names
through :class:`GuardedResolver`, which refuses loopback, link-local, private,
multicast, unspecified and other non-global addresses, and hands aiohttp only
the addresses it checked, so aiohttp connects to exactly those: a DNS answer
that changes between a check and the connect (rebinding) cannot slip through.
An IP literal in the URL is never resolved, so :func:`check_url_target` checks
it before the request. Redirects are not followed (a 3xx is a failed attempt).
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from aiohttp import ThreadedResolver
from aiohttp.abc import AbstractResolver, ResolveResult

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressRefused(Exception):
    """The target resolves to an address deliveries may not reach."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


def refusal(address: IPAddress) -> str | None:
    """Why ``address`` may not be reached, or None when it is a public address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    checks = (
        ("loopback", address.is_loopback),
        ("unspecified", address.is_unspecified),
        ("link_local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
        ("not_global", not address.is_global),
    )
    return next((name for name, hit in checks if hit), None)


def check_address(host: str) -> None:
    """Raise :class:`AddressRefused` when ``host`` is an IP literal we may not reach."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return  # a name: the resolver checks what it resolves to
    why = refusal(address)
    if why is not None:
        raise AddressRefused(why)


def check_url_target(url: str) -> None:
    """Refuse a URL whose host is a forbidden IP literal (names are checked on resolve)."""
    host = urlsplit(url).hostname or ""
    if not host:
        raise AddressRefused("no_host")
    check_address(host)


class GuardedResolver(AbstractResolver):
    """Resolves through the system resolver, then keeps only reachable addresses.

    Any forbidden address in the answer refuses the whole name: a name that
    points partly inside is not a merchant's public endpoint.
    """

    def __init__(self) -> None:
        self._inner = ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The checked addresses of ``host``; :class:`AddressRefused` if any is internal."""
        results = await self._inner.resolve(host, port, family)
        for result in results:
            why = refusal(ipaddress.ip_address(result["host"]))
            if why is not None:
                raise AddressRefused(why)
        return results

    async def close(self) -> None:
        """Close the inner resolver."""
        await self._inner.close()
