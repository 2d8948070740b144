"""Process handling the stack relies on: stop escalation and clear start-up errors."""

from __future__ import annotations

import asyncio
import socket
import sys
import time
from pathlib import Path

import pytest
from devstack import Stack, StackError, StackPorts
from devstack.processes import ManagedProcess, base_environment
from devstack.topology import BrokerNamespace

IGNORES_SIGTERM = (
    "import signal, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('stubborn child up', flush=True)\n"
    "time.sleep(60)\n"
)


async def test_a_child_that_ignores_sigterm_is_killed_after_the_grace(tmp_path: Path) -> None:
    child = ManagedProcess(
        "stubborn",
        [sys.executable, "-c", IGNORES_SIGTERM],
        env=base_environment(),
        log_path=tmp_path / "stubborn.log",
    )
    await child.start()
    for _ in range(200):  # the child must be past signal() before we test it
        if "stubborn child up" in child.tail():
            break
        await asyncio.sleep(0.05)

    started = time.monotonic()
    code = await child.stop(grace_seconds=0.5)

    assert code == -9
    assert time.monotonic() - started < 5
    assert not child.running


async def test_start_refuses_busy_ports_and_names_them(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        free = StackPorts.free()
        ports = StackPorts(
            mongo=busy.getsockname()[1],
            smtp=free.smtp,
            gateway_http=free.gateway_http,
            grpc=free.grpc,
            ops=free.ops,
            payments_http=free.payments_http,
        )
        stack = Stack(data_dir=tmp_path, ports=ports, broker=BrokerNamespace("amqp://x/"))

        with pytest.raises(StackError, match=rf"SecantusDB \({ports.mongo}\)"):
            await stack.start()

    assert stack.mongo is None and stack.services == {}


def test_base_environment_drops_service_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH_GRPC_PORT", "1")
    monkeypatch.setenv("GATEWAY_HTTP_PORT", "2")
    monkeypatch.setenv("UNRELATED", "kept")

    env = base_environment()

    assert "AUTH_GRPC_PORT" not in env and "GATEWAY_HTTP_PORT" not in env
    assert env["UNRELATED"] == "kept"
