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
    every = [ports.mongo, ports.smtp, ports.gateway_http, *ports.grpc.values(), *ports.ops.values()]
    assert len(every) == len(set(every)) == 3 + len(BACKEND_SERVICES) + len(ALL_SERVICES)


def test_development_ports_follow_the_team_convention() -> None:
    ports = StackPorts.defaults()
    assert ports.grpc["auth"] == 50051 and ports.ops["auth"] == 9101
    assert ports.grpc["notifications"] == 50055 and ports.ops["gateway"] == 9106
    assert ports.gateway_url == "http://127.0.0.1:8080"
    assert ports.mongo_url == "mongodb://127.0.0.1:27018/?directConnection=true"


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
    assert broker.isolated
    assert not BrokerNamespace("amqp://broker/").isolated
