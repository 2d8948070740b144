"""Process lifecycle: start everything in order, stop it in reverse on SIGTERM.

:class:`Runtime` is what every process has (logging, tracing, the ops
listener, start/stop hooks, signal handling). :class:`ServiceRuntime` adds
what a backend service has: its MongoDB database, the outbox relay, event
consumers and the gRPC server.

Health: ``/healthz`` (liveness) answers while the event loop runs.
Readiness (``/readyz`` and gRPC health) is what the process needs to serve
its requests now: for a backend, its database. The broker is not part of it:
reads need no broker and writes go through the outbox, so a broker outage
only delays events. A service starts without the broker; its relay and
consumers connect when it appears (``/readyz`` reports their state under
``info`` without failing on it).

Shutdown is bounded: SIGTERM at any moment, during start-up too, stops the
started steps in reverse within ``shutdown_grace_seconds``, each step under
the deadline that is left; a step that overruns is abandoned and a watchdog
ends the process if the interpreter itself cannot exit in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from pymongo import AsyncMongoClient, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from billing_kit.broker import EventPublisher
from billing_kit.consumer import EventConsumer, Handler
from billing_kit.grpc_server import GrpcServer, Register
from billing_kit.logging import setup_logging
from billing_kit.mongo import create_mongo_client, ensure_indexes, ping
from billing_kit.ops_http import OpsServer, ReadinessCheck
from billing_kit.outbox import OUTBOX_INDEXES, upgrade_outbox
from billing_kit.outbox_relay import OutboxRelay
from billing_kit.settings import CommonSettings, ServiceSettings, load_settings

log = logging.getLogger(__name__)
Hook = Callable[[], Awaitable[None]]
HEALTH_WATCH_SECONDS = 2.0
# Part of the grace period kept for the interpreter to exit after the last step.
EXIT_MARGIN_SECONDS = 1.0


class Runtime:
    """Start hooks run in order; stop hooks run in reverse, each only if its start ran."""

    def __init__(self, settings: CommonSettings, *, name: str) -> None:
        from billing_kit.telemetry import setup_tracing

        self.settings = settings
        self.name = name
        setup_logging(name, settings.log_level)
        setup_tracing(name)
        self.ops = OpsServer(host=settings.ops_host, port=settings.ops_port)
        self._steps: list[tuple[str, Hook, Hook | None]] = []
        self._started: list[tuple[str, Hook | None]] = []
        self._stop_requested = asyncio.Event()
        self._stop_deadline: float | None = None

    @property
    def ops_port(self) -> int:
        """The ops listener's bound port."""
        return self.ops.port

    def add_step(self, name: str, start: Hook, stop: Hook | None = None) -> None:
        """A resource with a start and (optional) stop, like aiohttp's cleanup_ctx."""
        self._steps.append((name, start, stop))

    def add_readiness_check(self, name: str, check: ReadinessCheck) -> None:
        """A dependency that must be reachable for ``/readyz`` to answer 200."""
        self.ops.add_check(name, check)

    def add_status(self, name: str, check: ReadinessCheck) -> None:
        """A dependency shown on ``/readyz`` (under ``info``) that readiness does not need."""
        self.ops.add_info(name, check)

    def stop_time_left(self) -> float:
        """Seconds left of the shutdown budget (the whole grace period before stop)."""
        budget = max(self.settings.shutdown_grace_seconds - EXIT_MARGIN_SECONDS, 0.5)
        if self._stop_deadline is None:
            return budget
        return max(self._stop_deadline - time.monotonic(), 0.0)

    async def start(self) -> None:
        """Start the ops listener, then every step; ready only when all have started."""
        await self.ops.start()
        self._started.append(("ops", self.ops.stop))
        try:
            for name, start, stop in self._steps:
                await start()
                self._started.append((name, stop))
        except BaseException:
            await self.stop()
            raise
        self.ops.accepting = True
        log.info("%s ready", self.name, extra={"ops_port": self.ops.port})

    async def stop(self) -> None:
        """Stop taking work, then stop every started step in reverse order.

        The whole stop fits in ``shutdown_grace_seconds`` (less a margin to
        exit): each step gets what is left of it, and one that overruns is
        cancelled and logged so the steps after it (closing the database)
        still run.
        """
        self.ops.accepting = False
        if self._stop_deadline is None:
            self._stop_deadline = time.monotonic() + self.stop_time_left()
        while self._started:
            name, stop = self._started.pop()
            if stop is None:
                continue
            try:
                # At least a moment even when the budget is spent, so a quick
                # close (a socket) still happens.
                await asyncio.wait_for(stop(), timeout=max(self.stop_time_left(), 0.2))
            except TimeoutError:
                log.warning("stopping %s took too long; abandoned", name)
            except Exception:
                log.exception("error while stopping %s", name)
        log.info("%s stopped", self.name)

    def request_stop(self) -> None:
        """Ask :meth:`serve_forever` to shut down (what SIGTERM does)."""
        if not self._stop_requested.is_set():
            _arm_exit_watchdog(self.settings.shutdown_grace_seconds)
        self._stop_requested.set()

    async def serve_forever(self) -> None:
        """Start, wait for SIGTERM or SIGINT, stop cleanly.

        SIGTERM during start-up (a dependency that does not answer, a slow
        index build) cancels the start and stops what had started.
        """
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        starting = asyncio.create_task(self.start(), name=f"{self.name}-start")
        stop_requested = asyncio.create_task(self._stop_requested.wait())
        await asyncio.wait({starting, stop_requested}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            log.info("%s stopping during start-up", self.name)
            starting.cancel()
            # start() stops what it had started when it is cancelled.
            with contextlib.suppress(asyncio.CancelledError):
                await starting
            stop_requested.cancel()
            await self.stop()
            return
        if starting.exception() is not None:
            stop_requested.cancel()
            starting.result()  # a failed start raises here (start() stopped what it had started)
        await stop_requested
        log.info("%s stopping", self.name)
        await self.stop()


def _arm_exit_watchdog(grace_seconds: float) -> None:
    """End the process if it is still alive when the grace period is over.

    The last resort behind the bounded stop: a thread, so it fires even if
    the event loop is blocked or interpreter shutdown waits on a stuck
    thread. The orchestrator would SIGKILL us at that point anyway; exiting
    ourselves keeps the exit code and the log line ours.
    """

    def expire() -> None:
        log.error("shutdown did not finish within the grace period; exiting now")
        logging.shutdown()
        os._exit(1)

    timer = threading.Timer(max(grace_seconds - 0.2, 0.5), expire)
    timer.daemon = True
    timer.start()


class ServiceRuntime(Runtime):
    """A backend service: database, optional outbox relay, consumers and gRPC."""

    settings: ServiceSettings

    def __init__(
        self,
        settings: ServiceSettings,
        *,
        name: str,
        indexes: Mapping[str, Sequence[IndexModel]] | None = None,
        outbox: bool = False,
    ) -> None:
        super().__init__(settings, name=name)
        # PyMongo connects lazily, so repositories can be built before start().
        self.client: AsyncMongoClient[dict[str, Any]] = create_mongo_client(
            settings.mongodb_url.get_secret_value(), app_name=name
        )
        self.db: AsyncDatabase[dict[str, Any]] = self.client[settings.mongodb_database or name]
        self.grpc = GrpcServer(service=name, host=settings.grpc_host, port=settings.grpc_port)
        self._indexes: dict[str, list[IndexModel]] = {
            k: list(v) for k, v in (indexes or {}).items()
        }
        self.publisher: EventPublisher | None = None
        self.relay: OutboxRelay | None = None
        self.consumers: list[EventConsumer] = []
        self._health_task: asyncio.Task[None] | None = None
        if outbox:
            for coll, models in OUTBOX_INDEXES.items():
                self._indexes.setdefault(coll, []).extend(models)
            self.publisher = EventPublisher(
                settings.amqp_url.get_secret_value(), settings.events_exchange, service=name
            )
            self.relay = OutboxRelay(
                self.db, self.publisher, service=name, poll_seconds=settings.outbox_poll_seconds
            )
        self.add_readiness_check("mongodb", lambda: ping(self.client))

    @property
    def grpc_port(self) -> int:
        """The gRPC listener's bound port."""
        return self.grpc.port

    def add_grpc_service(self, register: Register, full_name: str) -> None:
        """Register a servicer on the gRPC server."""
        self.grpc.add_service(register, full_name)

    def add_consumer(self, purpose: str, bindings: Sequence[str], handler: Handler) -> None:
        """Consume events matching ``bindings`` into ``handler`` (exactly-once effects)."""
        s = self.settings
        self.consumers.append(
            EventConsumer(
                amqp_url=s.amqp_url.get_secret_value(),
                exchange=s.events_exchange,
                service=self.name,
                purpose=purpose,
                bindings=bindings,
                handler=handler,
                client=self.client,
                db=self.db,
                delivery_limit=s.consumer_delivery_limit,
                prefetch=s.consumer_prefetch,
                queue_prefix=s.queue_prefix,
            )
        )

    async def start(self) -> None:
        """Indexes, relay, consumers, then gRPC last, so work arrives only when ready.

        Nothing here waits for the broker: the relay publishes (and the
        consumers consume) once it can be reached.
        """
        # Registered first so it closes last.
        self.add_step("mongodb", _noop, self._close_mongo)
        self.add_step("indexes", lambda: ensure_indexes(self.db, self._indexes))
        if self.publisher is not None and self.relay is not None:
            publisher, relay = self.publisher, self.relay
            self.add_step("outbox-upgrade", lambda: upgrade_outbox(self.db))
            self.add_step("publisher", _noop, publisher.close)
            self.add_status("broker:publisher", _as_check(publisher.is_connected))
            self.add_step("outbox-relay", relay.start, self._stop_relay)
        for consumer in self.consumers:
            self.add_step(
                f"consumer:{consumer.purpose}", _starter(consumer), self._stopper(consumer)
            )
            self.add_status(f"broker:consumer:{consumer.purpose}", _as_check(consumer.is_connected))
        self.add_step("grpc", self._start_grpc, self._stop_grpc)
        self.add_step("health-watch", self._start_health_watch, self._stop_health_watch)
        await super().start()

    async def _stop_relay(self) -> None:
        if self.relay is not None:
            await self.relay.stop(timeout=self.stop_time_left() / 2)

    async def _start_health_watch(self) -> None:
        self._health_task = asyncio.create_task(self._watch_health(), name="grpc-health-watch")

    async def _stop_health_watch(self) -> None:
        if self._health_task is not None:
            self._health_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._health_task

    async def _watch_health(self) -> None:
        # gRPC health (what Kubernetes probes) must say what /readyz says: a
        # service whose database is down is NOT_SERVING, not just "process up".
        serving = True
        while True:
            await asyncio.sleep(HEALTH_WATCH_SECONDS)
            ready, _ = await self.ops.readiness()
            if ready != serving:
                serving = ready
                await self.grpc.set_serving(ready)
                log.warning("%s health is now %s", self.name, "SERVING" if ready else "NOT_SERVING")

    def _stopper(self, consumer: EventConsumer) -> Hook:
        async def stop() -> None:
            # Bounded: a handler stuck on a dead database must not block shutdown;
            # its unacked message is redelivered to another replica.
            await consumer.stop(grace_seconds=self.stop_time_left() / 2)

        return stop

    async def _start_grpc(self) -> None:
        await self.grpc.start()

    async def _stop_grpc(self) -> None:
        # In-flight RPCs get most of what is left; the rest is for the steps
        # after this one (consumers, relay, database).
        await self.grpc.stop(self.stop_time_left() * 0.6)

    async def _close_mongo(self) -> None:
        await self.client.close()


async def _noop() -> None:
    return None


def _starter(consumer: EventConsumer) -> Hook:
    async def start() -> None:
        await consumer.start_or_keep_trying()

    return start


def _as_check(fn: Callable[[], bool]) -> ReadinessCheck:
    async def check() -> bool:
        return fn()

    return check


AppT = TypeVar("AppT", bound=Runtime)
SettingsT = TypeVar("SettingsT", bound=CommonSettings)


def run_main(create_app: Callable[[SettingsT], AppT], settings_cls: type[SettingsT]) -> None:
    """The whole ``__main__`` of a service: settings, app, serve until SIGTERM."""
    settings = load_settings(settings_cls)

    async def main() -> None:
        app = create_app(settings)
        await app.serve_forever()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
