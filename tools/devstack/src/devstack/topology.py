"""What the stack is made of: the six services, their ports and their environment.

One table here so `make run`, the e2e tests and the README agree on names,
ports and environment variables.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Literal

from billing_kit.mongo import embedded_mongo_url

ServiceName = Literal["auth", "subscriptions", "payments", "invoicing", "notifications", "gateway"]

BACKEND_SERVICES: tuple[ServiceName, ...] = (
    "auth",
    "subscriptions",
    "payments",
    "invoicing",
    "notifications",
)
ALL_SERVICES: tuple[ServiceName, ...] = (*BACKEND_SERVICES, "gateway")

# The fixed development ports (DESIGN + team conventions). Tests use free ports instead.
DEFAULT_GRPC_PORTS: dict[ServiceName, int] = {
    "auth": 50051,
    "subscriptions": 50052,
    "payments": 50053,
    "invoicing": 50054,
    "notifications": 50055,
}
DEFAULT_OPS_PORTS: dict[ServiceName, int] = {
    "auth": 9101,
    "subscriptions": 9102,
    "payments": 9103,
    "invoicing": 9104,
    "notifications": 9105,
    "gateway": 9106,
}
DEFAULT_GATEWAY_HTTP_PORT = 8080
# The hosted payment page (payments' own HTTP listener).
DEFAULT_PAYMENTS_HTTP_PORT = 8083
DEFAULT_MONGO_PORT = 27018
DEFAULT_SMTP_PORT = 1025
DEFAULT_EXCHANGE = "billing.events"
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
LOCALHOST = "127.0.0.1"
# The e2e stack's per-client rate limit (see service_environment's test_hooks).
TEST_RATE_LIMIT_PER_CLIENT = 100_000


def env_prefix(service: ServiceName) -> str:
    """The environment prefix of a service's settings, e.g. ``AUTH_``."""
    return f"{service.upper()}_"


def free_ports(count: int) -> list[int]:
    """Ask the kernel for `count` distinct free TCP ports on loopback.

    The sockets stay open until all ports are chosen, so the kernel never hands
    out the same port twice within one call.
    """
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((LOCALHOST, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@dataclass(frozen=True)
class StackPorts:
    """Every port the stack listens on."""

    mongo: int
    smtp: int
    gateway_http: int
    grpc: dict[ServiceName, int] = field(default_factory=dict)
    ops: dict[ServiceName, int] = field(default_factory=dict)
    payments_http: int = DEFAULT_PAYMENTS_HTTP_PORT

    @classmethod
    def defaults(cls) -> StackPorts:
        """The well-known development ports used by `make run`."""
        return cls(
            mongo=DEFAULT_MONGO_PORT,
            smtp=DEFAULT_SMTP_PORT,
            gateway_http=DEFAULT_GATEWAY_HTTP_PORT,
            grpc=dict(DEFAULT_GRPC_PORTS),
            ops=dict(DEFAULT_OPS_PORTS),
        )

    @classmethod
    def free(cls) -> StackPorts:
        """Free ports for an isolated stack (tests, several stacks side by side)."""
        ports = iter(free_ports(4 + len(BACKEND_SERVICES) + len(ALL_SERVICES)))
        return cls(
            mongo=next(ports),
            smtp=next(ports),
            gateway_http=next(ports),
            grpc={name: next(ports) for name in BACKEND_SERVICES},
            ops={name: next(ports) for name in ALL_SERVICES},
            payments_http=next(ports),
        )

    def grpc_target(self, service: ServiceName) -> str:
        """``host:port`` of a backend service's gRPC listener."""
        return f"{LOCALHOST}:{self.grpc[service]}"

    def ops_url(self, service: ServiceName) -> str:
        """Base URL of a service's ops listener (/healthz, /readyz, /metrics)."""
        return f"http://{LOCALHOST}:{self.ops[service]}"

    @property
    def gateway_url(self) -> str:
        """Base URL of the gateway (merchant API, portal)."""
        return f"http://{LOCALHOST}:{self.gateway_http}"

    @property
    def payments_page_url(self) -> str:
        """Base URL of the hosted payment page (payments' own HTTP listener)."""
        return f"http://{LOCALHOST}:{self.payments_http}"

    @property
    def mongo_url(self) -> str:
        """Connection string for the stack's SecantusDB."""
        return embedded_mongo_url(LOCALHOST, self.mongo)

    @property
    def portal_base_urls(self) -> PortalBaseUrls:
        """Where the gateway serves the live, test and unified portals."""
        return PortalBaseUrls.under(self.gateway_url)


@dataclass(frozen=True)
class PortalBaseUrls:
    """The three portal sites: one value for auth (email links) and the gateway (routing).

    Both services must agree, or emailed links point where the gateway serves
    nothing (or, worse, under the other mode's site).
    """

    live: str
    test: str
    unified: str

    @classmethod
    def under(cls, gateway_url: str) -> PortalBaseUrls:
        """The conventional path prefixes /live, /test and /all under the gateway."""
        root = gateway_url.rstrip("/")
        return cls(live=f"{root}/live", test=f"{root}/test", unified=f"{root}/all")

    def for_mode(self, mode: Literal["test", "live"]) -> str:
        """The per-business portal base URL of one mode."""
        return self.live if mode == "live" else self.test

    def environment(self, prefix: str) -> dict[str, str]:
        """``<PREFIX>PORTAL_LIVE_BASE_URL`` and friends."""
        return {
            f"{prefix}PORTAL_LIVE_BASE_URL": self.live,
            f"{prefix}PORTAL_TEST_BASE_URL": self.test,
            f"{prefix}UNIFIED_BASE_URL": self.unified,
        }


@dataclass(frozen=True)
class BrokerNamespace:
    """Where on the broker this stack's events live.

    Tests share one RabbitMQ, so each stack gets its own exchange and queue
    prefix; the development stack uses the real names.
    """

    amqp_url: str
    exchange: str = DEFAULT_EXCHANGE
    queue_prefix: str = ""

    @property
    def isolated(self) -> bool:
        """True when the namespace belongs to this stack alone (and may be deleted)."""
        return bool(self.queue_prefix) and self.exchange != DEFAULT_EXCHANGE


def service_environment(
    service: ServiceName,
    ports: StackPorts,
    broker: BrokerNamespace,
    *,
    smtp_port: int,
    log_level: str = "INFO",
    shutdown_grace_seconds: float = 10.0,
    test_hooks: bool = False,
    external_mongo: tuple[str, str] | None = None,
) -> dict[str, str]:
    """The environment variables one service needs to join this stack.

    Every service also gets a ``<SVC>_<PEER>_TARGET`` for every backend peer
    (so auth finds notifications' EmailService at ``AUTH_NOTIFICATIONS_TARGET``);
    settings classes ignore the variables they do not declare, so a service
    that later starts calling a peer finds the address already there. Auth and
    the gateway get the same portal base URLs.

    ``test_hooks`` (the e2e stack only, never production) turns on auth's
    movable clock and lifts the per-client rate limit: every test request comes
    from 127.0.0.1, so one client key would otherwise throttle the whole suite
    (the per-email limit stays at its default and is what the tests exercise).

    ``external_mongo`` is ``(url, database_prefix)`` for a stack that uses a
    database server it did not start (``MONGODB_URL`` in tests): each service
    gets its own ``<prefix><service>`` database there.
    """
    prefix = env_prefix(service)
    env: dict[str, str] = {
        f"{prefix}ENVIRONMENT": "development",
        f"{prefix}LOG_LEVEL": log_level,
        f"{prefix}OPS_HOST": LOCALHOST,
        f"{prefix}OPS_PORT": str(ports.ops[service]),
        f"{prefix}SHUTDOWN_GRACE_SECONDS": str(shutdown_grace_seconds),
        f"{prefix}MONGODB_URL": external_mongo[0] if external_mongo else ports.mongo_url,
        f"{prefix}AMQP_URL": broker.amqp_url,
        f"{prefix}EVENTS_EXCHANGE": broker.exchange,
        f"{prefix}QUEUE_PREFIX": broker.queue_prefix,
        f"{prefix}SMTP_HOST": LOCALHOST,
        f"{prefix}SMTP_PORT": str(smtp_port),
    }
    if external_mongo is not None:
        env[f"{prefix}MONGODB_DATABASE"] = f"{external_mongo[1]}{service}"
    if service in ("auth", "gateway"):
        env |= ports.portal_base_urls.environment(prefix)
    if test_hooks and service == "auth":
        env[f"{prefix}TEST_CLOCK_ENABLED"] = "true"
        env[f"{prefix}RATE_LIMIT_PER_CLIENT"] = str(TEST_RATE_LIMIT_PER_CLIENT)
    if service == "gateway":
        env[f"{prefix}HTTP_HOST"] = LOCALHOST
        env[f"{prefix}HTTP_PORT"] = str(ports.gateway_http)
        env[f"{prefix}PORT"] = str(ports.gateway_http)
        env[f"{prefix}PUBLIC_BASE_URL"] = ports.gateway_url
        env[f"{prefix}BASE_URL"] = ports.gateway_url
        # The portal's forms redirect to the hosted payment page (CSP form-action).
        env[f"{prefix}PAYMENTS_PAGE_URL"] = ports.payments_page_url
    else:
        env[f"{prefix}GRPC_HOST"] = LOCALHOST
        env[f"{prefix}GRPC_PORT"] = str(ports.grpc[service])
    if service == "payments":
        env[f"{prefix}HTTP_HOST"] = LOCALHOST
        env[f"{prefix}HTTP_PORT"] = str(ports.payments_http)
        env[f"{prefix}PUBLIC_URL"] = ports.payments_page_url
    for peer in BACKEND_SERVICES:
        if peer != service:
            env[f"{prefix}{peer.upper()}_TARGET"] = ports.grpc_target(peer)
    return env
