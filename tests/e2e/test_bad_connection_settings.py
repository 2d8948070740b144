"""A bad connection setting stops the real process at start: exit code 2 and one line
naming the variable (no traceback, no retrying forever, no secret repeated)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest
from devstack.processes import base_environment, python_module

pytestmark = pytest.mark.e2e

# A process that does not exit on its own by then is the failure being tested
# (it retries or waits); this only stops the test from hanging on it.
EXIT_GUARD_SECONDS = 60.0


@dataclass(frozen=True)
class BadSetting:
    service: str
    variable: str
    value: str

    def __str__(self) -> str:
        return f"{self.variable}={self.value}"


CASES = [
    BadSetting("auth", "AUTH_MONGODB_URL", "not-a-mongodb-url"),
    BadSetting("auth", "AUTH_MONGODB_URL", "mongodb://127.0.0.1:notaport/"),
    BadSetting("subscriptions", "SUBSCRIPTIONS_MONGODB_URL", "mongodb://127.0.0.1:99999/"),
    BadSetting("notifications", "NOTIFICATIONS_AMQP_URL", "garbage://x"),
    BadSetting("payments", "PAYMENTS_AMQP_URL", "amqp://:5672/"),
    BadSetting("auth", "AUTH_NOTIFICATIONS_TARGET", "::::garbage"),
    BadSetting("gateway", "GATEWAY_AUTH_TARGET", "::::garbage"),
    BadSetting("gateway", "GATEWAY_SUBSCRIPTIONS_TARGET", "subscriptions"),
    BadSetting("gateway", "GATEWAY_PAYMENTS_TARGET", "payments:notaport"),
    BadSetting("gateway", "GATEWAY_INVOICING_TARGET", "[::1:50054"),
    BadSetting("gateway", "GATEWAY_NOTIFICATIONS_TARGET", "dns:///"),
]


async def run_with(setting: BadSetting, *, extra: dict[str, str] | None = None) -> tuple[int, str]:
    """Start ``python -m <service>`` with the bad setting; its exit code and stderr."""
    env = base_environment() | {setting.variable: setting.value} | (extra or {})
    process = await asyncio.create_subprocess_exec(
        *python_module(setting.service),
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, stderr = await asyncio.wait_for(process.communicate(), EXIT_GUARD_SECONDS)
    except TimeoutError:
        process.kill()
        await process.wait()
        pytest.fail(f"{setting}: {setting.service} still running after {EXIT_GUARD_SECONDS}s")
    assert process.returncode is not None
    return process.returncode, stderr.decode(errors="replace")


@pytest.mark.parametrize("setting", CASES, ids=str)
async def test_bad_connection_setting_exits_2_with_one_line_naming_it(
    setting: BadSetting,
) -> None:
    code, stderr = await run_with(setting)
    lines = stderr.strip().splitlines()
    assert code == 2, f"{setting}: exit {code}\n{stderr}"
    assert len(lines) == 1, f"{setting}: expected one line, got:\n{stderr}"
    assert setting.variable in lines[0]
    assert "Traceback" not in stderr


async def test_the_line_does_not_repeat_the_password() -> None:
    setting = BadSetting(
        "auth", "AUTH_MONGODB_URL", "mongodb://portal:hunter2-secret@127.0.0.1:99999/"
    )
    code, stderr = await run_with(setting)
    assert code == 2
    assert "AUTH_MONGODB_URL" in stderr
    assert "hunter2-secret" not in stderr
