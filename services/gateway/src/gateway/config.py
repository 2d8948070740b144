"""Gateway settings: environment only, prefix ``GATEWAY_``."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network, ip_network

from billing_kit.settings import CommonSettings, GrpcTarget
from pydantic import Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict


class GatewaySettings(CommonSettings):
    """The HTTP edge: where it listens and which backends it calls."""

    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore", frozen=True)

    ops_port: int = Field(default=9106, ge=0, le=65535)
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)

    auth_target: GrpcTarget = "127.0.0.1:50051"
    subscriptions_target: GrpcTarget = "127.0.0.1:50052"
    payments_target: GrpcTarget = "127.0.0.1:50053"
    invoicing_target: GrpcTarget = "127.0.0.1:50054"
    notifications_target: GrpcTarget = "127.0.0.1:50055"

    # How long an API key's authentication is reused without asking auth again.
    # A revoked key stops working within this window, so it stays short.
    api_key_cache_seconds: float = Field(default=5.0, ge=0, le=60)
    api_key_cache_max_entries: int = Field(default=10_000, ge=1)
    # Per-call deadline for backend RPCs made while answering a request.
    backend_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    # Requests larger than this are refused before parsing (bytes).
    max_body_bytes: int = Field(default=64 * 1024, ge=1024, le=10 * 1024 * 1024)

    # Where customers reach the portal. A request's mode is the mode of the base
    # URL (host + path prefix) it came in under; auth builds the links in emails
    # from the same values (AUTH_PORTAL_*), never from a request's Host header.
    portal_live_base_url: str = "http://localhost:8080/live"
    portal_test_base_url: str = "http://localhost:8080/test"
    unified_base_url: str = "http://localhost:8080/all"
    # The payments service's hosted card page and 3-D Secure challenge (its own
    # listener): the portal's forms redirect there, so its origin joins the
    # pages' CSP form-action. Empty: no redirect target outside our sites.
    payments_page_url: str = ""
    # How long a resolved portal session is reused without asking auth again;
    # logout drops the entry at once, revocation elsewhere is honoured within it.
    session_cache_seconds: float = Field(default=5.0, ge=0, le=60)
    session_cache_max_entries: int = Field(default=50_000, ge=1)
    # Business branding changes rarely; pages and brand CSS reuse it this long.
    business_cache_seconds: float = Field(default=30.0, ge=0, le=3600)
    # Comma-separated networks of the proxies in front of the gateway (the
    # ingress controller). Only for a peer in these is X-Forwarded-For believed;
    # otherwise every client behind the proxy would share one rate-limit key,
    # and anyone could forge the header. Empty: trust nobody.
    trusted_proxies: str = ""

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        for part in filter(None, (p.strip() for p in value.split(","))):
            try:
                ip_network(part, strict=False)
            except ValueError:
                raise ValueError(f"{part!r} is not an IP network (e.g. 10.0.0.0/8)") from None
        return value

    @property
    def trusted_proxy_networks(self) -> tuple[IPv4Network | IPv6Network, ...]:
        """The parsed ``trusted_proxies``."""
        parts = filter(None, (p.strip() for p in self.trusted_proxies.split(",")))
        return tuple(ip_network(p, strict=False) for p in parts)

    @model_validator(mode="after")
    def _base_urls_are_distinct_sites(self) -> GatewaySettings:
        # Imported here: web.sites depends on nothing in this module but the values.
        from gateway.web.sites import build_sites

        build_sites(self.portal_live_base_url, self.portal_test_base_url, self.unified_base_url)
        return self
