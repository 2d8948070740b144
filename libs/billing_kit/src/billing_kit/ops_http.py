"""The ops listener every process has: ``/healthz``, ``/readyz``, ``/metrics``.

``/healthz`` answers while the event loop runs (liveness). ``/readyz`` runs
every readiness check concurrently with a short timeout and answers 503 when
one fails or while the process is starting or draining, so a load balancer
stops sending work before it is refused. Dependencies the process can serve
without (the broker: events wait in the outbox) are reported under ``info``
and never turn it unready.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

ReadinessCheck = Callable[[], Awaitable[bool]]
CHECK_TIMEOUT_SECONDS = 2.0


class OpsServer:
    """A tiny aiohttp app on its own port, separate from the traffic listener."""

    def __init__(self, *, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.accepting = False
        self._checks: dict[str, ReadinessCheck] = {}
        self._info: dict[str, ReadinessCheck] = {}
        self._runner: web.AppRunner | None = None

    def add_check(self, name: str, check: ReadinessCheck) -> None:
        """Add a dependency check that must pass for ``/readyz`` to answer 200."""
        self._checks[name] = check

    def add_info(self, name: str, check: ReadinessCheck) -> None:
        """Add a dependency shown on ``/readyz`` that readiness does not need."""
        self._info[name] = check

    async def _run_check(self, check: ReadinessCheck) -> bool:
        try:
            return await asyncio.wait_for(check(), CHECK_TIMEOUT_SECONDS)
        except Exception:
            return False

    async def readiness(self) -> tuple[bool, dict[str, bool]]:
        """Run every check; ready only when accepting work and all pass."""
        names = list(self._checks)
        results = await asyncio.gather(*(self._run_check(self._checks[n]) for n in names))
        checks = dict(zip(names, results, strict=True))
        return self.accepting and all(results), checks

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _readyz(self, request: web.Request) -> web.Response:
        ready, checks = await self.readiness()
        body: dict[str, object] = {"status": "ready" if ready else "unavailable", "checks": checks}
        if self._info:
            names = list(self._info)
            states = await asyncio.gather(*(self._run_check(self._info[n]) for n in names))
            body["info"] = dict(zip(names, states, strict=True))
        if not self.accepting:
            body["draining_or_starting"] = True
        return web.json_response(body, status=200 if ready else 503)

    async def _metrics(self, request: web.Request) -> web.Response:
        data = await asyncio.to_thread(generate_latest, REGISTRY)
        return web.Response(body=data, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def start(self) -> int:
        """Start listening; returns the bound port."""
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        for address in self._runner.addresses:
            self.port = int(address[1])
        return self.port

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
