"""The whole system on one machine: SecantusDB, the SMTP sink and the six services.

``Stack.development()`` is what ``make run`` starts (fixed ports, data under
``.data/``); ``Stack.isolated()`` is what the e2e tests start (free ports, a
temporary data dir, an in-memory database and a broker namespace of its own
that is deleted again on stop).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from types import TracebackType
from typing import IO
from urllib.parse import unquote, urlsplit

import aiohttp
import grpc
from billing_kit.telemetry import TRACES_FILE_ENV
from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError

from devstack.demo_catalogue import seed_catalogue
from devstack.processes import ManagedProcess, base_environment, python_module, venv_script
from devstack.seed import DEMO_CUSTOMERS, AuthAdmin, BusinessWithKey, seed_demo
from devstack.topology import (
    ALL_SERVICES,
    BACKEND_SERVICES,
    DEFAULT_AMQP_URL,
    LOCALHOST,
    BrokerNamespace,
    PortalBaseUrls,
    ServiceName,
    StackPorts,
    service_environment,
)

log = logging.getLogger("devstack")

READY_TIMEOUT_SECONDS = 60.0
_POLL_SECONDS = 0.2


class StackError(RuntimeError):
    """The stack could not start (the message says which piece and why)."""


async def _port_open(port: int) -> bool:
    try:
        _reader, writer = await asyncio.wait_for(asyncio.open_connection(LOCALHOST, port), 1.0)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


class Stack:
    """Starts, watches and stops every process of the system."""

    def __init__(
        self,
        *,
        data_dir: Path,
        ports: StackPorts,
        broker: BrokerNamespace,
        mongo_storage: str | None = None,
        console: IO[str] | None = None,
        log_level: str = "INFO",
        service_grace_seconds: float = 10.0,
        cwd: Path | None = None,
        test_hooks: bool = False,
        external_mongo: tuple[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir.resolve()
        # (url, database prefix) of a server this stack did not start, or None.
        self.external_mongo = external_mongo
        self.ports = ports
        self.broker = broker
        self.mongo_storage = mongo_storage or str(self.data_dir / "mongo")
        self.console = console
        self.log_level = log_level
        self.service_grace_seconds = service_grace_seconds
        self.cwd = cwd
        self.test_hooks = test_hooks
        self.mongo: ManagedProcess | None = None
        self.smtp: ManagedProcess | None = None
        self.services: dict[ServiceName, ManagedProcess] = {}
        self.startup_seconds: float | None = None

    # -- construction -----------------------------------------------------------------

    @classmethod
    def development(
        cls, data_dir: Path, *, amqp_url: str | None = None, console: IO[str] | None = None
    ) -> Stack:
        """The `make run` stack: well-known ports, persistent data, the real exchange."""
        return cls(
            data_dir=data_dir,
            ports=StackPorts.defaults(),
            broker=BrokerNamespace(amqp_url or os.environ.get("AMQP_URL") or DEFAULT_AMQP_URL),
            console=console,
        )

    @classmethod
    def isolated(
        cls, data_dir: Path, *, amqp_url: str | None = None, own_database: bool = False
    ) -> Stack:
        """A throwaway stack: free ports, its own broker namespace, and an in-memory
        SecantusDB — or, when ``MONGODB_URL`` is set (tests against a real MongoDB),
        databases of its own on that server. ``own_database`` forces a SecantusDB
        the stack starts itself (a test that kills the database needs one).
        """
        namespace = f"devstack-{uuid.uuid4().hex[:10]}"
        external_url = None if own_database else os.environ.get("MONGODB_URL")
        return cls(
            data_dir=data_dir,
            ports=StackPorts.free(),
            broker=BrokerNamespace(
                amqp_url or os.environ.get("AMQP_URL") or DEFAULT_AMQP_URL,
                exchange=f"{namespace}.events",
                queue_prefix=f"{namespace}.",
            ),
            mongo_storage=":memory:",
            service_grace_seconds=10.0,
            # Tests move auth's clock (expired links) and share one client address.
            test_hooks=True,
            external_mongo=(external_url, namespace.replace("-", "_") + "_")
            if external_url
            else None,
        )

    # -- where things are -------------------------------------------------------------

    @property
    def mail_dir(self) -> Path:
        """Where the SMTP sink stores messages (one .eml file each)."""
        return self.data_dir / "mail"

    @property
    def log_dir(self) -> Path:
        """One log file per process."""
        return self.data_dir / "logs"

    def spans_path(self, service: ServiceName) -> Path:
        """Where a service of a test stack writes its finished spans (one JSON line each)."""
        return self.log_dir / f"{service}.spans.jsonl"

    @property
    def gateway_url(self) -> str:
        """Base URL of the gateway."""
        return self.ports.gateway_url

    @property
    def payments_page_url(self) -> str:
        """Base URL of the hosted payment page."""
        return self.ports.payments_page_url

    @property
    def mongo_url(self) -> str:
        """Connection string of the stack's database server."""
        return self.external_mongo[0] if self.external_mongo else self.ports.mongo_url

    def grpc_target(self, service: ServiceName) -> str:
        """``host:port`` of a backend service's gRPC listener."""
        return self.ports.grpc_target(service)

    @property
    def portal_urls(self) -> PortalBaseUrls:
        """Base URLs of the live, test and unified portals (as auth and the gateway know them)."""
        return self.ports.portal_base_urls

    def ops_url(self, service: ServiceName) -> str:
        """Base URL of a service's ops endpoints."""
        return self.ports.ops_url(service)

    # -- lifecycle --------------------------------------------------------------------

    async def __aenter__(self) -> Stack:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self, limit_seconds: float = READY_TIMEOUT_SECONDS) -> float:
        """Start everything and wait until every service's /readyz answers 200.

        Returns the seconds it took. On failure everything started so far is
        stopped again and :class:`StackError` names the culprit.
        """
        started = time.monotonic()
        try:
            await self._check_ports_free()
            if self.external_mongo is None:
                await self._start_database()
            await self._start_smtp_sink()
            await self._start_services()
            await self.wait_ready(limit_seconds - (time.monotonic() - started))
        except BaseException:
            await self.stop()
            raise
        self.startup_seconds = time.monotonic() - started
        return self.startup_seconds

    async def _check_ports_free(self) -> None:
        wanted = {
            "SMTP sink": self.ports.smtp,
            "gateway HTTP": self.ports.gateway_http,
            "payments page HTTP": self.ports.payments_http,
        }
        if self.external_mongo is None:
            wanted["SecantusDB"] = self.ports.mongo
        wanted |= {f"{name} gRPC": port for name, port in self.ports.grpc.items()}
        wanted |= {f"{name} ops": port for name, port in self.ports.ops.items()}
        busy = [f"{what} ({port})" for what, port in wanted.items() if await _port_open(port)]
        if busy:
            raise StackError(
                "ports already in use: " + ", ".join(busy) + " (is another stack running?)"
            )

    def _process(self, name: str, argv: list[str], env: dict[str, str]) -> ManagedProcess:
        return ManagedProcess(
            name,
            argv,
            env=env,
            log_path=self.log_dir / f"{name}.log",
            cwd=self.cwd,
            console=self.console,
        )

    async def _start_database(self) -> None:
        if self.mongo_storage != ":memory:":
            await asyncio.to_thread(Path(self.mongo_storage).mkdir, parents=True, exist_ok=True)
        self.mongo = self._process(
            "secantusdb",
            [
                venv_script("secantusd-py"),
                "--host",
                LOCALHOST,
                "--port",
                str(self.ports.mongo),
                "--storage-path",
                self.mongo_storage,
                "--log-level",
                "WARNING",
            ],
            base_environment(),
        )
        await self.mongo.start()
        await self._wait_port(self.mongo, self.ports.mongo, 30)

    async def _start_smtp_sink(self) -> None:
        await asyncio.to_thread(self.mail_dir.mkdir, parents=True, exist_ok=True)
        self.smtp = self._process(
            "smtp-sink",
            python_module(
                "devstack",
                "smtp-sink",
                "--port",
                str(self.ports.smtp),
                "--maildir",
                str(self.mail_dir),
            ),
            base_environment(),
        )
        await self.smtp.start()
        await self._wait_port(self.smtp, self.ports.smtp, 30)

    async def _start_services(self) -> None:
        base = base_environment()
        for name in ALL_SERVICES:
            env = base | service_environment(
                name,
                self.ports,
                self.broker,
                smtp_port=self.ports.smtp,
                log_level=self.log_level,
                shutdown_grace_seconds=self.service_grace_seconds,
                test_hooks=self.test_hooks,
                external_mongo=self.external_mongo,
            )
            if self.test_hooks:
                # Spans as JSON lines beside the log, so tests can read what leaves a process.
                env[TRACES_FILE_ENV] = str(self.spans_path(name))
            process = self._process(name, python_module(name), env)
            self.services[name] = process
            await process.start()

    async def _wait_port(self, process: ManagedProcess, port: int, limit_seconds: float) -> None:
        deadline = time.monotonic() + limit_seconds
        while not await _port_open(port):
            if not process.running:
                raise StackError(
                    f"{process.name} exited with code {process.returncode}:\n{process.tail()}"
                )
            if time.monotonic() > deadline:
                raise StackError(
                    f"{process.name} did not listen on port {port} in {limit_seconds:.0f}s"
                )
            await asyncio.sleep(_POLL_SECONDS)

    async def readyz(self, service: ServiceName, session: aiohttp.ClientSession) -> int | None:
        """HTTP status of a service's /readyz, or None when it does not answer.

        The bound is well above the services' own per-check timeout (2 s), so a
        dead dependency shows up as 503 rather than as no answer.
        """
        try:
            async with session.get(
                f"{self.ops_url(service)}/readyz", timeout=aiohttp.ClientTimeout(total=6)
            ) as response:
                return response.status
        except (aiohttp.ClientError, TimeoutError):
            return None

    async def wait_ready(self, limit_seconds: float = READY_TIMEOUT_SECONDS) -> None:
        """Poll every service's /readyz until all answer 200 (or one dies, or time runs out)."""
        deadline = time.monotonic() + max(limit_seconds, 1.0)
        pending = set(self.services)
        async with aiohttp.ClientSession() as session:
            while pending:
                for name in sorted(pending):
                    process = self.services[name]
                    if not process.running:
                        raise StackError(
                            f"{name} exited with code {process.returncode} before it was ready:\n"
                            f"{process.tail()}"
                        )
                    if await self.readyz(name, session) == 200:
                        pending.discard(name)
                if not pending:
                    return
                if time.monotonic() > deadline:
                    details = "\n".join(
                        f"--- {name} ---\n{self.services[name].tail(15)}"
                        for name in sorted(pending)
                    )
                    raise StackError(
                        f"not ready after {limit_seconds:.0f}s: "
                        f"{', '.join(sorted(pending))}\n{details}"
                    )
                await asyncio.sleep(_POLL_SECONDS)

    async def stop_service(
        self, service: ServiceName, grace_seconds: float | None = None
    ) -> int | None:
        """SIGTERM one service and wait (then SIGKILL); returns its exit code."""
        grace = grace_seconds if grace_seconds is not None else self.service_grace_seconds + 5
        return await self.services[service].stop(grace)

    async def kill_service(self, service: ServiceName) -> None:
        """SIGKILL one service (a crash: no shutdown steps run) and wait for it to die."""
        process = self.services[service]
        process.send_signal(signal.SIGKILL)
        await process.wait(10)

    async def restart_service(self, service: ServiceName, limit_seconds: float = 60) -> None:
        """Start a stopped or killed service again and wait until it is ready."""
        await self.services[service].start()
        await self._wait_ready_one(service, limit_seconds)

    async def _wait_ready_one(self, service: ServiceName, limit_seconds: float) -> None:
        deadline = time.monotonic() + limit_seconds
        async with aiohttp.ClientSession() as session:
            while await self.readyz(service, session) != 200:
                process = self.services[service]
                if not process.running:
                    raise StackError(f"{service} exited with code {process.returncode}")
                if time.monotonic() > deadline:
                    raise StackError(f"{service} not ready after {limit_seconds:.0f}s")
                await asyncio.sleep(_POLL_SECONDS)

    async def stop_smtp(self) -> None:
        """Stop the SMTP sink (the relay is down: connections are refused)."""
        if self.smtp is not None:
            await self.smtp.stop(10)

    async def start_smtp(self) -> None:
        """Start the SMTP sink again on the same port and mail directory."""
        if self.smtp is not None and not self.smtp.running:
            await self.smtp.start()
            await self._wait_port(self.smtp, self.ports.smtp, 30)

    async def stop(self) -> dict[str, int | None]:
        """Stop everything this stack started; returns each process's exit code.

        The gateway goes first (no new requests), then the backends together,
        then the SMTP sink and the database they depended on.
        """
        codes: dict[str, int | None] = {}
        grace = self.service_grace_seconds + 5
        if "gateway" in self.services:
            codes["gateway"] = await self.services["gateway"].stop(grace)
        backends = [name for name in BACKEND_SERVICES if name in self.services]
        results = await asyncio.gather(*(self.services[name].stop(grace) for name in backends))
        codes.update(zip(backends, results, strict=True))
        for process in (self.smtp, self.mongo):
            if process is not None:
                codes[process.name] = await process.stop(10)
        if self.broker.isolated:
            await self._delete_broker_namespace()
        if self.external_mongo is not None:
            await self._drop_external_databases()
        return codes

    async def _drop_external_databases(self) -> None:
        """Drop this run's databases from a server the stack did not start."""
        assert self.external_mongo is not None
        url, prefix = self.external_mongo
        client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
            url, serverSelectionTimeoutMS=5000
        )
        try:
            for name in await client.list_database_names():
                if name.startswith(prefix):
                    await client.drop_database(name)
        except PyMongoError as exc:
            log.warning("could not drop this run's databases: %s", type(exc).__name__)
        finally:
            await client.close()

    async def kill_database(self) -> None:
        """SIGKILL the database (tests: readiness must notice a dead dependency)."""
        if self.mongo is not None:
            self.mongo.send_signal(signal.SIGKILL)
            await self.mongo.wait(10)

    async def _delete_broker_namespace(self) -> None:
        """Delete this stack's queues and exchanges from the shared broker.

        AMQP cannot list queues, so the names come from rabbitmqctl when the
        broker is local; elsewhere the queues are left (they are empty and
        named after this run).
        """
        namespace = self.broker.queue_prefix.rstrip(".")
        rabbitmqctl = shutil.which("rabbitmqctl")
        if not namespace or rabbitmqctl is None:
            return
        vhost = unquote(urlsplit(self.broker.amqp_url).path.lstrip("/")) or "/"
        queues = await _rabbitmqctl_names(rabbitmqctl, "list_queues", vhost)
        exchanges = await _rabbitmqctl_names(rabbitmqctl, "list_exchanges", vhost)
        queues = [q for q in queues if q.startswith(namespace)]
        exchanges = [e for e in exchanges if e.startswith(namespace)]
        if not queues and not exchanges:
            return
        import aio_pika  # only needed here; keeps `import devstack` light

        try:
            connection = await aio_pika.connect(self.broker.amqp_url, timeout=5)
        except Exception as exc:
            log.warning("could not clean up broker namespace %s: %s", namespace, exc)
            return
        async with connection:
            channel = await connection.channel()
            for queue in queues:
                with contextlib.suppress(Exception):
                    await channel.queue_delete(queue)
            for exchange in exchanges:
                with contextlib.suppress(Exception):
                    await channel.exchange_delete(exchange)

    # -- data -------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def auth_admin(self) -> AsyncIterator[AuthAdmin]:
        """An :class:`AuthAdmin` on a channel to this stack's auth service."""
        async with grpc.aio.insecure_channel(self.grpc_target("auth")) as channel:
            yield AuthAdmin(channel)

    async def create_business(self, name: str) -> BusinessWithKey:
        """A new business with a test-mode API key (through auth's gRPC API)."""
        async with self.auth_admin() as admin:
            return await admin.business_with_key(name, "support@example.com")

    async def seed_demo(self) -> BusinessWithKey:
        """The idempotent demo business, key, customers, plans and subscriptions.

        State (the key's secret) in data_dir/demo.json; the catalogue and the demo
        subscriptions go through the merchant API and the hosted payment page.
        """
        demo = await seed_demo(self.grpc_target("auth"), self.data_dir / "demo.json")
        async with aiohttp.ClientSession() as http:
            await seed_catalogue(
                http,
                gateway_url=self.gateway_url,
                payments_target=self.grpc_target("payments"),
                business_id=demo.business_id,
                api_key=demo.api_key_secret,
                customers=dict(
                    zip((email for email, _ in DEMO_CUSTOMERS), demo.customer_ids, strict=True)
                ),
            )
        return demo


async def _rabbitmqctl_names(rabbitmqctl: str, command: str, vhost: str) -> list[str]:
    try:
        proc = await asyncio.create_subprocess_exec(
            rabbitmqctl,
            "-q",
            command,
            "-p",
            vhost,
            "name",
            "--no-table-headers",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
    except OSError:
        return []
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return []
    if proc.returncode != 0:
        return []
    return [line.strip() for line in out.decode().splitlines() if line.strip()]
