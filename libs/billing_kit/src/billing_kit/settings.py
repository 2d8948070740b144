"""Settings shared by every service: environment only, validated at start.

Each service subclasses :class:`ServiceSettings` with its own ``env_prefix``
(``AUTH_``, ``SUBSCRIPTIONS_`` …). A bad value stops the process with one
clear line instead of a traceback (see :func:`load_settings`).
"""

from __future__ import annotations

import ipaddress
import re
import sys
from typing import Annotated, Literal, TypeVar

from pydantic import AfterValidator, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from pymongo.errors import ConfigurationError, InvalidURI
from pymongo.uri_parser import parse_uri
from yarl import URL

from billing_kit.mongo import embedded_mongo_url

# RFC 1123 host names (underscores allowed: some service discovery uses them).
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})(\.[A-Za-z0-9_-]{1,63})*\.?$"
)


def _valid_host(host: str) -> bool:
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return bool(_HOSTNAME.match(host))
    return True


def _valid_port(text: str) -> bool:
    return text.isdigit() and 0 < int(text) <= 65535


def check_mongodb_url(value: SecretStr) -> SecretStr:
    """A ``mongodb://`` or ``mongodb+srv://`` connection string PyMongo accepts.

    Parsed without connecting and without DNS look-ups (an SRV URL is checked
    as if it were a plain one), so a typo stops the process at start instead
    of surfacing as a traceback from the first query. The message never
    repeats the URL: it may hold a password.
    """
    url = value.get_secret_value()
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("mongodb", "mongodb+srv"):
        raise ValueError("must be a mongodb:// or mongodb+srv:// connection string")
    try:
        # The SRV form would resolve DNS here; its syntax is the plain form's.
        parse_uri(f"mongodb://{rest}", validate=True, warn=False)
    except (InvalidURI, ConfigurationError, ValueError) as exc:
        raise ValueError(f"not a valid MongoDB connection string ({_without(url, exc)})") from None
    return value


def check_amqp_url(value: SecretStr) -> SecretStr:
    """An ``amqp://`` or ``amqps://`` URL with a host and, if given, a valid port."""
    try:
        url = URL(value.get_secret_value())
        port = url.explicit_port
    except ValueError:
        raise ValueError("not a valid URL") from None
    if url.scheme not in ("amqp", "amqps"):
        raise ValueError("must be an amqp:// or amqps:// URL")
    if not url.host or not _valid_host(url.raw_host or ""):
        raise ValueError("must name the broker's host")
    if port is not None and not 0 < port <= 65535:
        raise ValueError("port must be between 1 and 65535")
    return value


def check_grpc_target(value: str) -> str:
    """A gRPC target: ``host:port``, ``[v6]:port``, ``dns:///host:port`` or ``unix:path``.

    grpc.aio accepts any string and only fails (quietly, by retrying) on the
    first call, so a typo would show up as a backend that never answers.
    """
    target = value.strip()
    if target.startswith(("unix:", "unix-abstract:")):
        if target.partition(":")[2]:
            return target
        raise ValueError("unix: target needs a path")
    if target.startswith("dns:"):
        target = target[4:].lstrip("/")
        if "/" in target:  # dns://authority/host:port
            target = target.split("/", 1)[1]
    if target.startswith("["):
        host, _, port = target[1:].partition("]:")
        ok = _valid_port(port) and _valid_ip6(host)
    else:
        host, sep, port = target.rpartition(":")
        ok = bool(sep) and _valid_port(port) and _valid_host(host)
    if not ok:
        raise ValueError("must be host:port, [ipv6]:port, dns:///host:port or unix:path")
    return value


def _valid_ip6(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).version == 6
    except ValueError:
        return False


def _without(url: str, exc: Exception) -> str:
    """``exc``'s message with the URL's password (if any) blanked out."""
    message = str(exc)
    userinfo = url.partition("://")[2].rpartition("@")[0]
    password = userinfo.partition(":")[2]
    if password:
        message = message.replace(password, "***")
    return message.splitlines()[0] if message else type(exc).__name__


MongoUrl = Annotated[SecretStr, AfterValidator(check_mongodb_url)]
AmqpUrl = Annotated[SecretStr, AfterValidator(check_amqp_url)]
GrpcTarget = Annotated[str, AfterValidator(check_grpc_target)]


class CommonSettings(BaseSettings):
    """What every process has: mode of operation, ops listener, logging, shutdown."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    environment: Literal["development", "production"] = "development"
    ops_host: str = "127.0.0.1"
    ops_port: int = Field(default=9100, ge=0, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    shutdown_grace_seconds: float = Field(default=10.0, gt=0, le=300)


class ServiceSettings(CommonSettings):
    """A backend service: its own database, the broker and a gRPC listener."""

    mongodb_url: MongoUrl = SecretStr(embedded_mongo_url("127.0.0.1", 27018))
    mongodb_database: str = Field(default="", description="defaults to the service name")
    amqp_url: AmqpUrl = SecretStr("amqp://guest:guest@127.0.0.1:5672/")
    events_exchange: str = "billing.events"
    # Prepended to queue names; tests use it to isolate runs on a shared broker.
    queue_prefix: str = ""
    grpc_host: str = "127.0.0.1"
    grpc_port: int = Field(default=50051, ge=0, le=65535)
    # Quorum queues redeliver a failing message this many times before dead-lettering it.
    consumer_delivery_limit: int = Field(default=5, ge=1, le=100)
    consumer_prefetch: int = Field(default=16, ge=1, le=1000)
    outbox_poll_seconds: float = Field(default=1.0, gt=0, le=60)

    @model_validator(mode="after")
    def _production_needs_explicit_secrets(self) -> ServiceSettings:
        if self.environment == "production":
            for name in ("mongodb_url", "amqp_url"):
                if name not in self.model_fields_set:
                    raise ValueError(f"{name} must be set explicitly in production")
        return self


S = TypeVar("S", bound=BaseSettings)


def _describe_settings_error(exc: ValidationError, prefix: str) -> str:
    """One line naming every bad setting by its environment variable."""
    parts = []
    for err in exc.errors():
        loc = "_".join(str(p) for p in err["loc"]).upper()
        var = f"{prefix}{loc}" if loc else prefix.rstrip("_")
        parts.append(f"{var}: {err['msg']}")
    return "; ".join(parts)


def load_settings(cls: type[S]) -> S:
    """Build settings from the environment or exit(2) with one clear line."""
    try:
        return cls()
    except ValidationError as exc:
        prefix = str(cls.model_config.get("env_prefix", ""))
        print(f"configuration error: {_describe_settings_error(exc, prefix)}", file=sys.stderr)
        raise SystemExit(2) from None
