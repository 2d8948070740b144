"""Helpers for test suites: a throwaway database, an isolated broker namespace,
a TCP proxy that can simulate outages, and polling assertions.

These are importable by every service's tests (and the root ``conftest.py``);
they are not tests themselves.

* :func:`mongo_server` yields a MongoDB URL: ``MONGODB_URL`` from the
  environment when set (so suites also run against a real MongoDB), otherwise
  a SecantusDB process started on a free port with in-memory storage.
* :func:`broker_namespace` yields a unique exchange name and queue prefix on
  the shared RabbitMQ and deletes what was created under them afterwards.
* :class:`TcpProxy` sits between a client and a server; ``cut()`` drops every
  connection and refuses new ones until ``restore()``.
* :func:`running_service` starts a service's ``create_app(settings)`` on free
  ports against that database (and, when given, a broker namespace) and yields
  a :class:`RunningService`: the runtime, a channel to it, health and readiness.
  Every service's integration tests use it instead of their own copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import shutil
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import aio_pika
import aiohttp
import grpc
from aio_pika.abc import AbstractIncomingMessage
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError
from yarl import URL

from billing_kit.grpc_client import create_channel
from billing_kit.runtime import ServiceRuntime
from billing_kit.settings import ServiceSettings

log = logging.getLogger(__name__)

T = TypeVar("T")
S = TypeVar("S", bound=ServiceSettings)
R = TypeVar("R", bound=ServiceRuntime)

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def unique_name(prefix: str = "test") -> str:
    """A short name no other test run uses (database names, exchanges, queue prefixes)."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def amqp_url_from_env() -> str:
    """``AMQP_URL`` from the environment, or the local RabbitMQ."""
    return os.environ.get("AMQP_URL", DEFAULT_AMQP_URL)


def with_port(url: str, port: int, host: str = "127.0.0.1") -> str:
    """``url`` pointed at ``host:port`` (e.g. to route a client through a :class:`TcpProxy`)."""
    return str(URL(url).with_host(host).with_port(port))


def _secantusd_executable() -> str:
    beside_python = Path(sys.executable).with_name("secantusd-py")
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("secantusd-py")
    if found is None:
        raise RuntimeError("secantusd-py not found: run `uv sync` (secantusdb is a dev dependency)")
    return found


async def wait_until_mongo_answers(url: str, within: float = 30.0) -> None:
    """Poll ``ping`` until the server at ``url`` answers, or raise ``TimeoutError``."""
    deadline = time.monotonic() + within
    client: AsyncMongoClient[Any] = AsyncMongoClient(url, serverSelectionTimeoutMS=500)
    try:
        while True:
            try:
                await client.admin.command("ping")
                return
            except PyMongoError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no MongoDB answered at {url} within {within}s") from None
                await asyncio.sleep(0.1)
    finally:
        await client.close()


@contextlib.asynccontextmanager
async def secantusdb(
    *, enable_test_commands: bool = False, startup_timeout: float = 30.0
) -> AsyncIterator[str]:
    """Start SecantusDB on a free port with in-memory storage; yield its URL; kill it after."""
    port = free_port()
    args = [
        _secantusd_executable(),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--storage-path",
        ":memory:",
        "--log-level",
        "WARNING",
    ]
    if enable_test_commands:
        args.append("--enable-test-commands")
    # Output goes to a file, not a pipe nobody reads (a full pipe would block the server).
    with tempfile.TemporaryFile(prefix="secantusd-") as output:
        process = await asyncio.create_subprocess_exec(*args, stdout=output, stderr=output)
        url = f"mongodb://127.0.0.1:{port}/?directConnection=true"
        try:
            try:
                await wait_until_mongo_answers(url, startup_timeout)
            except TimeoutError:
                output.seek(0)
                tail = output.read()[-2000:].decode(errors="replace")
                raise RuntimeError(f"SecantusDB did not start on port {port}:\n{tail}") from None
            yield url
        finally:
            if process.returncode is None:
                process.terminate()
                try:
                    await asyncio.wait_for(process.wait(), timeout=10)
                except TimeoutError:
                    process.kill()
                    await process.wait()


@contextlib.asynccontextmanager
async def mongo_server(*, enable_test_commands: bool = False) -> AsyncIterator[str]:
    """``MONGODB_URL`` when set, else a fresh SecantusDB (see :func:`secantusdb`).

    Tests sharing one server isolate themselves with a unique database name.
    """
    external = os.environ.get("MONGODB_URL")
    if external:
        yield external
        return
    async with secantusdb(enable_test_commands=enable_test_commands) as url:
        yield url


@dataclass
class BrokerNamespace:
    """A private corner of the shared RabbitMQ: one exchange name and one queue prefix."""

    amqp_url: str
    exchange: str
    queue_prefix: str
    extra_queues: set[str] = field(default_factory=set)

    def queue(self, service: str, purpose: str) -> str:
        """The queue :class:`~billing_kit.consumer.EventConsumer` uses for (service, purpose)."""
        return f"{self.queue_prefix}{service}.{purpose}"

    def dead_letter_queue(self, service: str, purpose: str) -> str:
        """The dead-letter queue of (service, purpose)."""
        return f"{self.queue(service, purpose)}.dlq"

    def track_queue(self, name: str) -> str:
        """Remember a queue created outside the prefix so cleanup deletes it too."""
        self.extra_queues.add(name)
        return name


async def _list_queue_names() -> list[str]:
    """Queue names via ``rabbitmqctl`` when it is usable here (best effort)."""
    ctl = shutil.which("rabbitmqctl")
    if ctl is None:
        return []
    try:
        proc = await asyncio.create_subprocess_exec(
            ctl,
            "-q",
            "list_queues",
            "name",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=20)
    except (OSError, TimeoutError):
        return []
    if proc.returncode != 0:
        return []
    return [line.strip() for line in out.decode(errors="replace").splitlines() if line.strip()]


async def delete_broker_objects(amqp_url: str, queues: set[str], exchanges: set[str]) -> None:
    """Delete queues and exchanges, ignoring ones that do not exist."""
    connection = await aio_pika.connect(amqp_url)
    try:
        for name in sorted(queues):
            # A failed delete closes the channel, so each gets its own.
            channel = await connection.channel()
            with contextlib.suppress(Exception):
                await channel.queue_delete(name)
            with contextlib.suppress(Exception):
                await channel.close()
        for name in sorted(exchanges):
            channel = await connection.channel()
            with contextlib.suppress(Exception):
                await channel.exchange_delete(name)
            with contextlib.suppress(Exception):
                await channel.close()
    finally:
        await connection.close()


@contextlib.asynccontextmanager
async def broker_namespace(
    amqp_url: str | None = None, *, known_consumers: list[tuple[str, str]] | None = None
) -> AsyncIterator[BrokerNamespace]:
    """Yield a unique exchange + queue prefix; delete its queues and exchanges afterwards.

    Queues are found by prefix through ``rabbitmqctl`` when available; queues of
    ``known_consumers`` ((service, purpose) pairs) and tracked queues are
    deleted in any case.
    """
    url = amqp_url or amqp_url_from_env()
    token = uuid.uuid4().hex[:12]
    namespace = BrokerNamespace(
        amqp_url=url, exchange=f"test.{token}.events", queue_prefix=f"test.{token}."
    )
    try:
        yield namespace
    finally:
        queues = set(namespace.extra_queues)
        for service, purpose in known_consumers or []:
            queues |= {
                namespace.queue(service, purpose),
                namespace.dead_letter_queue(service, purpose),
            }
        queues |= {q for q in await _list_queue_names() if q.startswith(namespace.queue_prefix)}
        exchanges = {namespace.exchange, f"{namespace.exchange}.dlx"}
        try:
            await delete_broker_objects(url, queues, exchanges)
        except Exception as exc:  # cleanup must not hide the test's own result
            log.warning("broker namespace cleanup failed: %s", type(exc).__name__)


class TcpProxy:
    """An asyncio TCP proxy to simulate network outages between a client and a server.

    ``cut()`` closes every open connection and stops listening, so new
    connections are refused; ``restore()`` listens again on the same port.
    """

    def __init__(self, listen_port: int, target_host: str, target_port: int) -> None:
        self.listen_port = listen_port
        self.target_host = target_host
        self.target_port = target_port
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def is_cut(self) -> bool:
        """True while the proxy refuses connections."""
        return self._server is None

    async def start(self) -> None:
        """Start listening on 127.0.0.1:``listen_port``."""
        if self._server is None:
            self._server = await asyncio.start_server(
                self._accept, "127.0.0.1", self.listen_port, reuse_address=True
            )

    async def cut(self) -> None:
        """Drop all current connections and refuse new ones."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            with contextlib.suppress(Exception):
                transport = writer.transport
                # abort() sends RST at once, like a dead link, instead of a polite FIN.
                transport.abort()
        self._writers.clear()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if server is not None:
            await server.wait_closed()

    async def restore(self) -> None:
        """Accept connections again."""
        await self.start()

    async def stop(self) -> None:
        """Cut everything and stop for good."""
        await self.cut()

    async def __aenter__(self) -> TcpProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._server is None:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(src, dst))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()


async def eventually(
    check: Callable[[], T | Awaitable[T]],
    *,
    within: float = 10.0,
    interval: float = 0.05,
    message: str = "condition not met",
) -> T:
    """Call ``check()`` (sync or async) until it returns a truthy value.

    Returns that value; raises ``AssertionError`` after ``within`` seconds.
    """
    deadline = time.monotonic() + within
    while True:
        result = check()
        value: T = await result if inspect.isawaitable(result) else result  # type: ignore[assignment]
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{message} within {within}s (last value: {value!r})")
        await asyncio.sleep(interval)


class MessageTap:
    """Messages seen by a private queue bound to an exchange (see :func:`tap_exchange`)."""

    def __init__(self) -> None:
        self.messages: list[AbstractIncomingMessage] = []

    @property
    def message_ids(self) -> list[str | None]:
        """``message_id`` of every message received, in arrival order."""
        return [m.message_id for m in self.messages]


@contextlib.asynccontextmanager
async def tap_exchange(
    amqp_url: str, exchange: str, binding: str = "#"
) -> AsyncIterator[MessageTap]:
    """Record every message published to ``exchange`` (topic) while the block runs."""
    recorder = MessageTap()
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        ex = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(ex, routing_key=binding)

        async def record(message: AbstractIncomingMessage) -> None:
            recorder.messages.append(message)
            await message.ack()

        await queue.consume(record)
        yield recorder
    finally:
        await connection.close()


async def take_queue_messages(
    amqp_url: str, queue_name: str, *, wait_seconds: float = 0.5
) -> list[AbstractIncomingMessage]:
    """Take (and ack) every message currently in an existing queue."""
    taken: list[AbstractIncomingMessage] = []
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(queue_name, passive=True)
        while True:
            message = await queue.get(fail=False, timeout=wait_seconds)
            if message is None:
                return taken
            await message.ack()
            taken.append(message)
    finally:
        await connection.close()


@dataclass
class RunningService(Generic[R]):
    """A service started by :func:`running_service`: its runtime and a channel to it."""

    runtime: R
    channel: grpc.aio.Channel

    @property
    def grpc_target(self) -> str:
        """``127.0.0.1:<port>`` of its gRPC listener."""
        return f"127.0.0.1:{self.runtime.grpc_port}"

    @property
    def ops_url(self) -> str:
        """Base URL of its ops listener (``/healthz``, ``/readyz``, ``/metrics``)."""
        return f"http://127.0.0.1:{self.runtime.ops_port}"

    async def health(self, service: str = "") -> int:
        """The gRPC health status of ``service`` (``""``: the whole server)."""
        reply = await health_pb2_grpc.HealthStub(self.channel).Check(
            health_pb2.HealthCheckRequest(service=service)
        )
        return int(reply.status)

    async def is_serving(self, service: str = "") -> bool:
        """True when gRPC health says SERVING for ``service``."""
        return bool(await self.health(service) == health_pb2.HealthCheckResponse.SERVING)

    async def readyz(self) -> int:
        """The HTTP status of its ``/readyz``."""
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{self.ops_url}/readyz") as response,
        ):
            return response.status


@contextlib.asynccontextmanager
async def running_service(
    create_app: Callable[[S], R],
    settings_class: type[S],
    *,
    mongo_url: str,
    broker: BrokerNamespace | None = None,
    **settings: Any,
) -> AsyncIterator[RunningService[R]]:
    """Start ``create_app(settings)`` on free ports; stop it afterwards.

    The service gets its own fresh database on ``mongo_url``, and, with
    ``broker``, that namespace's exchange and queue prefix; ``settings``
    override anything else. The yielded channel has the kit's default deadline
    and leaves error statuses raw, so tests can assert the wire contract.
    """
    values: dict[str, Any] = {
        "mongodb_url": mongo_url,
        "mongodb_database": unique_name("svc"),
        "grpc_port": 0,
        "ops_port": 0,
    }
    if broker is not None:
        values |= {
            "amqp_url": broker.amqp_url,
            "events_exchange": broker.exchange,
            "queue_prefix": broker.queue_prefix,
        }
    runtime = create_app(settings_class(**(values | settings)))
    await runtime.start()
    try:
        channel = create_channel(f"127.0.0.1:{runtime.grpc_port}", domain_errors=False)
        try:
            yield RunningService(runtime=runtime, channel=channel)
        finally:
            await channel.close()
    finally:
        await runtime.stop()


def service_fixture(
    create_app: Callable[[S], R],
    settings_class: type[S],
    *,
    with_broker: bool = False,
    **settings: Any,
) -> Any:
    """A pytest fixture yielding a :class:`RunningService` of ``create_app`` per test.

    ``service = service_fixture(create_app, InvoicingSettings)`` in a test module
    is the whole scaffolding. It uses the ``mongo_url`` fixture (root
    ``conftest.py``) and, ``with_broker=True``, an ``ns`` fixture yielding the
    test's :class:`BrokerNamespace` (pytest resolves fixtures by parameter name,
    so the two variants are two functions).
    """
    import pytest_asyncio  # a test-only dependency: imported only by test modules

    if with_broker:

        @pytest_asyncio.fixture
        async def service_on_broker(
            mongo_url: str, ns: BrokerNamespace
        ) -> AsyncIterator[RunningService[R]]:
            async with running_service(
                create_app, settings_class, mongo_url=mongo_url, broker=ns, **settings
            ) as running:
                yield running

        return service_on_broker

    @pytest_asyncio.fixture
    async def service(mongo_url: str) -> AsyncIterator[RunningService[R]]:
        async with running_service(
            create_app, settings_class, mongo_url=mongo_url, **settings
        ) as running:
            yield running

    return service
