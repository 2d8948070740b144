"""Which address the per-client rate limit counts: never a forgeable header by default."""

from __future__ import annotations

from ipaddress import ip_network
from unittest import mock

import pytest
from aiohttp.test_utils import make_mocked_request
from gateway.config import GatewaySettings
from gateway.web.security import client_address

INGRESS = (ip_network("10.0.0.0/8"),)


def request_from(peer: str, forwarded: str | None = None):  # type: ignore[no-untyped-def]
    transport = mock.Mock()
    transport.get_extra_info.side_effect = lambda name, default=None: (
        (peer, 40000) if name == "peername" else default
    )
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    return make_mocked_request("POST", "/test/login/bus_1", headers=headers, transport=transport)


def test_without_trusted_proxies_the_header_is_ignored() -> None:
    assert client_address(request_from("203.0.113.9", "198.51.100.1"), ()) == "203.0.113.9"


def test_a_peer_that_is_not_a_trusted_proxy_cannot_choose_its_address() -> None:
    request = request_from("203.0.113.9", "198.51.100.1")
    assert client_address(request, INGRESS) == "203.0.113.9"


def test_behind_the_ingress_the_client_is_the_hop_the_ingress_saw() -> None:
    # The client forged the left-most hop; the ingress appended what it saw.
    request = request_from("10.1.2.3", "1.1.1.1, 198.51.100.7, 10.9.9.9")
    assert client_address(request, INGRESS) == "198.51.100.7"


def test_two_clients_behind_one_ingress_get_different_addresses() -> None:
    first = client_address(request_from("10.1.2.3", "198.51.100.7"), INGRESS)
    second = client_address(request_from("10.1.2.3", "198.51.100.8"), INGRESS)
    assert first != second


def test_bad_networks_stop_the_settings() -> None:
    with pytest.raises(ValueError, match="not an IP network"):
        GatewaySettings(trusted_proxies="10.0.0.0/8, ingress")
    parsed = GatewaySettings(trusted_proxies="10.0.0.0/8, fd00::/8").trusted_proxy_networks
    assert [str(n) for n in parsed] == ["10.0.0.0/8", "fd00::/8"]
