"""Ports and environment the stack hands to each service."""

from __future__ import annotations

from devstack.topology import (
    ALL_SERVICES,
    BACKEND_SERVICES,
    BrokerNamespace,
    StackPorts,
    service_environment,
)


def test_free_ports_are_distinct() -> None:
    ports = StackPorts.free()
    every = [
        ports.mongo,
        ports.smtp,
        ports.gateway_http,
        ports.payments_http,
        *ports.grpc.values(),
        *ports.ops.values(),
    ]
    assert len(every) == len(set(every)) == 4 + len(BACKEND_SERVICES) + len(ALL_SERVICES)


def test_development_ports_follow_the_team_convention() -> None:
    ports = StackPorts.defaults()
    assert ports.grpc["auth"] == 50051 and ports.ops["auth"] == 9101
    assert ports.grpc["notifications"] == 50055 and ports.ops["gateway"] == 9106
    assert ports.gateway_url == "http://127.0.0.1:8080"
    assert ports.mongo_url == "mongodb://127.0.0.1:27018/?directConnection=true&retryWrites=false"


def test_gateway_is_pointed_at_every_backend() -> None:
    ports = StackPorts.free()
    env = service_environment(
        "gateway", ports, BrokerNamespace("amqp://broker/"), smtp_port=ports.smtp
    )
    assert env["GATEWAY_HTTP_PORT"] == str(ports.gateway_http)
    assert env["GATEWAY_OPS_PORT"] == str(ports.ops["gateway"])
    for backend in BACKEND_SERVICES:
        assert env[f"GATEWAY_{backend.upper()}_TARGET"] == f"127.0.0.1:{ports.grpc[backend]}"
    assert "GATEWAY_GRPC_PORT" not in env


def test_backend_gets_its_own_ports_and_the_isolated_broker_namespace() -> None:
    ports = StackPorts.free()
    broker = BrokerNamespace("amqp://broker/", exchange="run1.events", queue_prefix="run1.")
    env = service_environment("payments", ports, broker, smtp_port=ports.smtp)
    assert env["PAYMENTS_GRPC_PORT"] == str(ports.grpc["payments"])
    assert env["PAYMENTS_OPS_PORT"] == str(ports.ops["payments"])
    assert env["PAYMENTS_EVENTS_EXCHANGE"] == "run1.events"
    assert env["PAYMENTS_QUEUE_PREFIX"] == "run1."
    assert env["PAYMENTS_MONGODB_URL"] == ports.mongo_url
    assert env["PAYMENTS_AUTH_TARGET"] == ports.grpc_target("auth")
    assert "PAYMENTS_PAYMENTS_TARGET" not in env
    # The hosted payment page: its own listener, and the URL browsers are sent to.
    assert env["PAYMENTS_HTTP_PORT"] == str(ports.payments_http)
    assert env["PAYMENTS_PUBLIC_URL"] == f"http://127.0.0.1:{ports.payments_http}"
    assert broker.isolated
    assert not BrokerNamespace("amqp://broker/").isolated


def test_auth_and_gateway_share_the_portal_base_urls() -> None:
    ports = StackPorts.free()
    broker = BrokerNamespace("amqp://broker/")
    auth = service_environment("auth", ports, broker, smtp_port=ports.smtp)
    gateway = service_environment("gateway", ports, broker, smtp_port=ports.smtp)
    for name, expected in (
        ("PORTAL_LIVE_BASE_URL", f"{ports.gateway_url}/live"),
        ("PORTAL_TEST_BASE_URL", f"{ports.gateway_url}/test"),
        ("UNIFIED_BASE_URL", f"{ports.gateway_url}/all"),
    ):
        assert auth[f"AUTH_{name}"] == gateway[f"GATEWAY_{name}"] == expected
    # Links in emails are sent through notifications' EmailService.
    assert auth["AUTH_NOTIFICATIONS_TARGET"] == ports.grpc_target("notifications")
    assert ports.portal_base_urls.for_mode("test") == f"{ports.gateway_url}/test"


def test_test_hooks_are_only_for_the_e2e_stack() -> None:
    ports = StackPorts.free()
    broker = BrokerNamespace("amqp://broker/")
    plain = service_environment("auth", ports, broker, smtp_port=ports.smtp)
    hooked = service_environment("auth", ports, broker, smtp_port=ports.smtp, test_hooks=True)
    assert "AUTH_TEST_CLOCK_ENABLED" not in plain
    assert "AUTH_RATE_LIMIT_PER_CLIENT" not in plain
    assert hooked["AUTH_TEST_CLOCK_ENABLED"] == "true"
    assert int(hooked["AUTH_RATE_LIMIT_PER_CLIENT"]) >= 10_000
    gateway = service_environment("gateway", ports, broker, smtp_port=ports.smtp, test_hooks=True)
    assert not [name for name in gateway if "TEST_CLOCK" in name]
