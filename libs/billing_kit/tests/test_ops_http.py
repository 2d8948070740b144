"""The ops listener answers as an orchestrator expects."""

from __future__ import annotations

import aiohttp
from billing_kit.metrics import EVENTS_HANDLED
from billing_kit.ops_http import OpsServer


async def test_readyz_follows_dependencies_and_draining() -> None:
    state = {"db": True}

    async def db_check() -> bool:
        return state["db"]

    ops = OpsServer(host="127.0.0.1", port=0)
    ops.add_check("mongodb", db_check)
    port = await ops.start()
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/healthz") as resp:
                assert resp.status == 200
            async with http.get(f"{base}/readyz") as resp:
                assert resp.status == 503  # still starting
            ops.accepting = True
            async with http.get(f"{base}/readyz") as resp:
                assert resp.status == 200
                assert (await resp.json())["checks"] == {"mongodb": True}
            state["db"] = False
            async with http.get(f"{base}/readyz") as resp:
                assert resp.status == 503
                assert (await resp.json())["checks"] == {"mongodb": False}
            EVENTS_HANDLED.labels("test", "ops", "handled").inc()
            async with http.get(f"{base}/metrics") as resp:
                assert resp.status == 200
                text = await resp.text()
                assert (
                    'events_handled_total{handler="ops",outcome="handled",service="test"}' in text
                )
    finally:
        await ops.stop()


async def test_a_dependency_shown_as_info_never_makes_the_process_unready() -> None:
    """The broker is reported (operators see it) but an outage keeps /readyz at 200."""

    async def up() -> bool:
        return True

    async def broker_down() -> bool:
        return False

    ops = OpsServer(host="127.0.0.1", port=0)
    ops.add_check("mongodb", up)
    ops.add_info("broker:publisher", broker_down)
    ops.accepting = True
    port = await ops.start()
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{port}/readyz") as resp,
        ):
            assert resp.status == 200
            body = await resp.json()
        assert body["checks"] == {"mongodb": True}
        assert body["info"] == {"broker:publisher": False}
    finally:
        await ops.stop()
