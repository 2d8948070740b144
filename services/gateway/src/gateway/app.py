"""Wiring: the aiohttp application and the process runtime around it."""

from __future__ import annotations

from aiohttp import web
from billing_kit.runtime import Runtime

from gateway.backends import (
    auth_client,
    invoicing_client,
    is_serving,
    notifications_client,
    payments_client,
    subscriptions_client,
)
from gateway.config import GatewaySettings
from gateway.keys import AUTH_CHANNEL, CATALOGS, SETTINGS, SITES
from gateway.middleware import observe, problems, security_headers
from gateway.routes import ROUTES
from gateway.web.i18n import compile_catalogs
from gateway.web.rendering import setup_templates
from gateway.web.routes import portal_routes
from gateway.web.sites import build_sites

# A query string may carry a return URL of up to 2,048 characters, which percent-encoded
# can be several times longer; aiohttp's default 8 KiB request line would refuse such a
# request with a bare text 400 before the API could answer with its problem (422).
MAX_REQUEST_LINE_BYTES = 64 * 1024


def create_app(settings: GatewaySettings) -> web.Application:
    """The gateway's HTTP application; tests build exactly this."""
    app = web.Application(
        middlewares=[observe, security_headers, problems],
        client_max_size=settings.max_body_bytes,
    )
    app[SETTINGS] = settings
    sites = build_sites(
        settings.portal_live_base_url, settings.portal_test_base_url, settings.unified_base_url
    )
    app[SITES] = sites
    app[CATALOGS] = compile_catalogs()
    setup_templates(app)
    app.cleanup_ctx.append(auth_client)
    app.cleanup_ctx.append(subscriptions_client)
    app.cleanup_ctx.append(payments_client)
    app.cleanup_ctx.append(invoicing_client)
    app.cleanup_ctx.append(notifications_client)
    app.router.add_routes(ROUTES)
    app.router.add_routes(portal_routes(sites))
    return app


async def auth_ready(app: web.Application) -> bool:
    """Readiness: auth answers its gRPC health check."""
    channel = app.get(AUTH_CHANNEL)
    return channel is not None and await is_serving(channel)


class HttpSite:
    """The aiohttp application served on ``http_host:http_port``."""

    def __init__(self, app: web.Application, settings: GatewaySettings) -> None:
        self.app = app
        self.settings = settings
        self.port = settings.http_port
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Run the app's startup (opens the gRPC channels) and listen."""
        # The access log is the JSON line the observe middleware writes.
        self._runner = web.AppRunner(
            self.app,
            access_log=None,
            shutdown_timeout=self.settings.shutdown_grace_seconds,
            max_line_size=MAX_REQUEST_LINE_BYTES,
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.http_host, self.settings.http_port)
        await site.start()
        for address in self._runner.addresses:
            self.port = int(address[1])

    async def stop(self) -> None:
        """Stop listening, let in-flight requests finish, close the channels."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


class GatewayRuntime(Runtime):
    """The gateway process: the HTTP site as a start step, plus the kit's ops listener."""

    def __init__(self, settings: GatewaySettings) -> None:
        super().__init__(settings, name="gateway")
        self.app = create_app(settings)
        self.site = HttpSite(self.app, settings)
        self.add_step("http", self.site.start, self.site.stop)
        self.add_readiness_check("auth", lambda: auth_ready(self.app))

    @property
    def http_port(self) -> int:
        """The HTTP listener's bound port (after start)."""
        return self.site.port


def create_runtime(settings: GatewaySettings) -> GatewayRuntime:
    """What ``python -m gateway`` serves."""
    return GatewayRuntime(settings)
