"""SIGTERM is honoured at any moment: during start-up and while the broker is down.

Each test runs one real service process (``python -m notifications``: it has a
consumer, the part that used to hang) against a dependency that does not
answer, and checks it exits cleanly within its grace period, as Kubernetes
expects before it sends SIGKILL.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from billing_kit.mongo import embedded_mongo_url
from billing_kit.testing import free_port, unique_name
from devstack.processes import base_environment, python_module
from devstack.topology import BrokerNamespace, StackPorts, service_environment

pytestmark = pytest.mark.e2e

GRACE_SECONDS = 5.0
# Only stops a process that ignores SIGTERM from hanging the test.
GUARD_SECONDS = 60.0


@contextlib.asynccontextmanager
async def silent_server() -> AsyncIterator[int]:
    """A TCP port that accepts connections and never answers (a hung dependency)."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    port = free_port()
    server = await asyncio.start_server(hold, "127.0.0.1", port)
    try:
        yield port
    finally:
        server.close()
        for writer in held:
            writer.transport.abort()


async def start_notifications(
    *, mongo_url: str, amqp_url: str, database: str
) -> tuple[asyncio.subprocess.Process, str]:
    """A notifications process with its own ports; returns it and its ops URL."""
    ports = StackPorts.free()
    env = base_environment() | service_environment(
        "notifications",
        ports,
        BrokerNamespace(amqp_url, exchange=f"{database}.events", queue_prefix=f"{database}."),
        smtp_port=ports.smtp,
        shutdown_grace_seconds=GRACE_SECONDS,
        external_mongo=(mongo_url, f"{database}_"),
    )
    process = await asyncio.create_subprocess_exec(
        *python_module("notifications"),
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    return process, ports.ops_url("notifications")


async def status_of(session: aiohttp.ClientSession, url: str) -> int | None:
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=3)) as response:
            return response.status
    except (aiohttp.ClientError, TimeoutError):
        return None


async def wait_for_status(process: asyncio.subprocess.Process, url: str, wanted: int = 200) -> None:
    deadline = time.monotonic() + GUARD_SECONDS
    async with aiohttp.ClientSession() as session:
        while await status_of(session, url) != wanted:
            if process.returncode is not None:
                stderr = await process.stderr.read() if process.stderr else b""
                pytest.fail(f"exited with {process.returncode}:\n{stderr.decode()[-3000:]}")
            if time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"{url} never answered {wanted}")
            await asyncio.sleep(0.1)  # poll pace; the loop waits for the answer, not the time


async def sigterm_and_wait(process: asyncio.subprocess.Process) -> tuple[int, float, str]:
    """SIGTERM, then wait for the exit: (exit code, seconds it took, stderr tail)."""
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        _, stderr = await asyncio.wait_for(process.communicate(), GUARD_SECONDS)
    except TimeoutError:
        process.kill()
        await process.wait()
        pytest.fail(f"still running {GUARD_SECONDS}s after SIGTERM")
    assert process.returncode is not None
    return process.returncode, time.monotonic() - sent, stderr.decode(errors="replace")[-3000:]


async def test_sigterm_during_start_up_exits_within_the_grace_period(
    mongo_url: str, amqp_url: str
) -> None:
    """The database does not answer, so start-up hangs on it: SIGTERM must still win."""
    async with silent_server() as db_port:
        process, ops = await start_notifications(
            mongo_url=embedded_mongo_url("127.0.0.1", db_port),
            amqp_url=amqp_url,
            database=unique_name("start"),
        )
        # The ops listener starts first: liveness answers while start-up waits.
        await wait_for_status(process, f"{ops}/healthz", 200)
        async with aiohttp.ClientSession() as session:
            assert await status_of(session, f"{ops}/readyz") == 503
        code, took, stderr = await sigterm_and_wait(process)
    assert code == 0, stderr
    assert took < GRACE_SECONDS, f"took {took:.1f}s\n{stderr}"
    assert "Traceback" not in stderr


async def test_started_without_the_broker_it_is_ready_and_sigterm_exits_within_grace(
    mongo_url: str,
) -> None:
    """No broker at all: the service serves (ready), and stops promptly."""
    dead_broker = f"amqp://guest:guest@127.0.0.1:{free_port()}/"
    process, ops = await start_notifications(
        mongo_url=mongo_url, amqp_url=dead_broker, database=unique_name("nobroker")
    )
    await wait_for_status(process, f"{ops}/readyz", 200)
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{ops}/readyz") as response:
            body = await response.json()
    assert body["info"]["broker:consumer:customer-directory"] is False
    code, took, stderr = await sigterm_and_wait(process)
    assert code == 0, stderr
    assert took < GRACE_SECONDS, f"took {took:.1f}s\n{stderr}"


async def test_sigterm_while_the_broker_hangs_exits_within_the_grace_period(
    mongo_url: str,
) -> None:
    """A broker that accepts the connection and never answers: every wait on it is bounded."""
    async with silent_server() as broker_port:
        process, ops = await start_notifications(
            mongo_url=mongo_url,
            amqp_url=f"amqp://guest:guest@127.0.0.1:{broker_port}/",
            database=unique_name("hung"),
        )
        await wait_for_status(process, f"{ops}/healthz", 200)
        code, took, stderr = await sigterm_and_wait(process)
    assert code == 0, stderr
    assert took < GRACE_SECONDS, f"took {took:.1f}s\n{stderr}"
