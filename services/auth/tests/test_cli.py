"""portalctl against the real auth service (over gRPC), as an operator would use it."""

from __future__ import annotations

import asyncio
import io
import json
import os
import shutil
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from auth.cli import EXIT_REFUSED, EXIT_UNAVAILABLE, EXIT_USAGE, run
from billing.auth.v1 import auth_pb2, portal_access_pb2
from billing.common.v1 import common_pb2
from billing_kit.testing import free_port

pytestmark = pytest.mark.integration


async def portalctl(auth: Any, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = await run(["--auth-target", auth.target, *argv], out, err)
    return code, out.getvalue(), err.getvalue()


class TestBusinessCommands:
    async def test_create_and_list(self, auth: Any) -> None:
        code, out, err = await portalctl(
            auth,
            "business",
            "create",
            "--name",
            "Gelateria Roma",
            "--color",
            "#00aa55",
            "--logo-url",
            "https://roma.test/logo.svg",
            "--support-email",
            "ciao@roma.example.com",
            "--return-url",
            "https://roma.test/",
            "--locale",
            "it",
            "--address",
            "Via del Corso 1\\n00186 Roma",
            "--tax-id",
            "IT09876543210",
            "--renewal-reminder-days",
            "5",
            "--license-grace-days",
            "14",
            "--json",
        )
        assert code == 0, err
        business = json.loads(out)
        assert business["renewal_reminder_days"] == 5
        assert business["license_grace_days"] == 14
        assert business["name"] == "Gelateria Roma"
        # The invoice's seller block: "\\n" typed in a shell separates the address lines.
        assert business["address"] == "Via del Corso 1\n00186 Roma"
        assert business["tax_id"] == "IT09876543210"
        assert business["branding"]["primary_color"] == "#00AA55"
        assert business["locale"] == "it"

        code, out, _ = await portalctl(auth, "business", "list")
        assert code == 0
        assert out.splitlines()[0].split()[:2] == ["BUSINESS", "NAME"]
        assert business["business_id"] in out

        # --json given before the command works too.
        code, out, _ = await portalctl(auth, "--json", "business", "list")
        assert business["business_id"] in [b["business_id"] for b in json.loads(out)]

    async def test_bad_color_is_a_clear_error(self, auth: Any) -> None:
        code, out, err = await portalctl(
            auth, "business", "create", "--name", "X", "--color", "red"
        )
        assert code == EXIT_REFUSED
        assert out == ""
        assert err.startswith("error: ") and "primary_color" in err

    @pytest.mark.parametrize(
        ("args", "expected"),
        [
            (["--name", "Acme <security@bank.example>"], 'must not contain "<" or ">"'),
            (["--name", "Acme\r\nBcc: x@y.example.com"], "line breaks"),
            (["--name", "Acme", "--support-email", "help@acme.test"], "reserved domain .test"),
            (["--name", "Acme", "--support-email", "hélp@acme.example.com"], "ASCII"),
            (["--name", "Acme", "--license-grace-days", "400"], "license_grace_days"),
        ],
    )
    async def test_values_that_can_never_be_mailed_are_refused(
        self, auth: Any, args: list[str], expected: str
    ) -> None:
        code, out, err = await portalctl(auth, "business", "create", *args)
        assert code == EXIT_REFUSED
        assert out == ""
        assert err.startswith("error: ") and expected in err


class TestBusinessSettingsCommands:
    async def test_show_and_set_portal_settings(self, auth: Any) -> None:
        business = await auth.stub.CreateBusiness(auth_pb2.CreateBusinessRequest(name="Settings"))
        code, out, err = await portalctl(auth, "business", "settings", business.business_id)
        assert code == 0, err
        assert out.splitlines()[1].split() == ["SETTING", "VALUE"]
        assert "allow_plan_change      yes" in out
        assert "downgrade_timing       next_billing_date" in out

        code, out, err = await portalctl(
            auth,
            "business",
            "set",
            business.business_id,
            "--no-allow-plan-change",
            "--no-ask-cancel-reason",
            "--downgrade-timing",
            "immediately",
            "--renewal-reminder-days",
            "7",
            "--json",
        )
        assert code == 0, err
        shown = json.loads(out)
        assert shown["portal_settings"] == {
            "allow_cancel": True,
            "allow_pause": True,
            "allow_plan_change": False,
            "allow_quantity_change": True,
            "ask_cancel_reason": False,
            "downgrade_timing": "immediately",
        }
        assert shown["renewal_reminder_days"] == 7
        # Auth kept it: a plain `settings` shows the same.
        code, out, _ = await portalctl(auth, "--json", "business", "settings", business.business_id)
        assert json.loads(out) == shown
        entry = await auth.db.audit_log.find_one(
            {"action": "business.updated", "resource.id": business.business_id}
        )
        assert entry is not None and entry["actor"] == {"kind": "operator", "id": "portalctl"}

    async def test_bad_values_are_clear_errors_and_change_nothing(self, auth: Any) -> None:
        business = await auth.stub.CreateBusiness(auth_pb2.CreateBusinessRequest(name="Bad"))
        code, _, err = await portalctl(
            auth,
            "business",
            "set",
            business.business_id,
            "--no-allow-cancel",
            "--license-grace-days",
            "400",
        )
        assert code == EXIT_REFUSED
        assert err.startswith("error: ") and "license_grace_days" in err
        code, _, err = await portalctl(
            auth, "business", "set", business.business_id, "--downgrade-timing", "later"
        )
        assert code == EXIT_USAGE
        fetched = await auth.stub.GetBusiness(
            auth_pb2.GetBusinessRequest(business_id=business.business_id)
        )
        assert fetched.portal_settings.allow_cancel is True
        code, _, err = await portalctl(auth, "business", "settings", "bus_missing")
        assert code == EXIT_REFUSED and "not found" in err


class TestApiKeyCommands:
    async def test_create_list_revoke(self, auth: Any) -> None:
        _, out, _ = await portalctl(auth, "business", "create", "--name", "Keys Inc", "--json")
        business_id = json.loads(out)["business_id"]

        code, out, err = await portalctl(
            auth, "api-key", "create", "--business", business_id, "--mode", "test", "--name", "ci"
        )
        assert code == 0
        secret = next(line.split()[1] for line in out.splitlines() if line.startswith("secret:"))
        assert secret.startswith("sk_test_")
        assert "will not be shown again" in err

        code, out, err = await portalctl(
            auth, "api-key", "create", "--business", business_id, "--mode", "live", "--json"
        )
        assert code == 0
        issued = json.loads(out)
        assert issued["secret"].startswith("sk_live_")
        key_id = issued["api_key"]["key_id"]

        code, out, _ = await portalctl(auth, "api-key", "list", "--business", business_id)
        assert code == 0
        assert key_id in out and "active" in out
        assert secret not in out and issued["secret"] not in out  # only prefixes are listed

        code, out, _ = await portalctl(auth, "api-key", "revoke", "--business", business_id, key_id)
        assert code == 0 and f"revoked API key {key_id}" in out
        _, out, _ = await portalctl(auth, "api-key", "list", "--business", business_id, "--json")
        keys = {k["key_id"]: k for k in json.loads(out)}
        assert "revoked_at" in keys[key_id]
        assert len(keys) == 2

    async def test_unknown_business_and_bad_mode(self, auth: Any) -> None:
        code, _, err = await portalctl(auth, "api-key", "list", "--business", "bus_missing")
        assert code == EXIT_REFUSED and "not found" in err
        code, _, err = await portalctl(
            auth, "api-key", "create", "--business", "bus_x", "--mode", "prod"
        )
        assert code == EXIT_USAGE and "invalid choice" in err

    async def test_revoke_unknown_key(self, auth: Any) -> None:
        _, out, _ = await portalctl(auth, "business", "create", "--name", "R", "--json")
        code, _, err = await portalctl(
            auth, "api-key", "revoke", "--business", json.loads(out)["business_id"], "key_nope"
        )
        assert code == EXIT_REFUSED and "not found" in err


class TestInvite:
    async def _customer(self, auth: Any, mode: int) -> tuple[str, str]:
        business = await auth.stub.CreateBusiness(auth_pb2.CreateBusinessRequest(name="Shop"))
        response = await auth.stub.CreateCustomer(
            auth_pb2.CreateCustomerRequest(
                business_id=business.business_id,
                mode=mode,
                email=f"invitee.{uuid.uuid4().hex[:8]}@example.test",
                name="Invitee",
            )
        )
        return business.business_id, response.customer.customer_id

    async def test_prints_the_static_link_and_a_working_one_time_link(self, auth: Any) -> None:
        business_id, customer_id = await self._customer(auth, common_pb2.MODE_LIVE)
        code, out, err = await portalctl(
            auth, "invite", customer_id, "--business", business_id, "--mode", "live"
        )
        assert code == 0, err
        static = f"{auth.settings.portal_live_base_url}/login/{business_id}"
        assert f"static link (never expires): {static}" in out
        link = out.split("one-time link", 1)[1].split(": ", 1)[1].strip()
        assert link.startswith(f"{auth.settings.portal_live_base_url}/link/cpt_")
        started = await auth.portal.ConsumeToken(
            portal_access_pb2.ConsumeTokenRequest(
                token=link.rsplit("/", 1)[1], mode=common_pb2.MODE_LIVE
            )
        )
        assert started.session.customer_id == customer_id

        # Each invite is a fresh link; --json for scripts.
        code, out, _ = await portalctl(
            auth, "invite", customer_id, "--business", business_id, "--mode", "live", "--json"
        )
        assert code == 0
        printed = json.loads(out)
        assert printed["static_link"] == static and printed["link"] != link

    async def test_wrong_mode_or_business_is_refused(self, auth: Any) -> None:
        business_id, customer_id = await self._customer(auth, common_pb2.MODE_TEST)
        code, _, err = await portalctl(
            auth, "invite", customer_id, "--business", business_id, "--mode", "live"
        )
        assert code == EXIT_REFUSED and "not found" in err
        code, _, err = await portalctl(auth, "invite", customer_id, "--business", business_id)
        assert code == EXIT_USAGE


async def test_unreachable_auth_exits_non_zero() -> None:
    out, err = io.StringIO(), io.StringIO()
    target = f"127.0.0.1:{free_port()}"
    code = await run(["--auth-target", target, "business", "list"], out, err)
    assert code == EXIT_UNAVAILABLE
    assert f"cannot reach auth at {target}" in err.getvalue()


async def test_console_script_uses_env_target(auth: Any) -> None:
    exe = Path(sys.executable).with_name("portalctl")
    exe_path = str(exe) if exe.exists() else shutil.which("portalctl")
    assert exe_path, "portalctl entry point is installed"
    process = await asyncio.create_subprocess_exec(
        exe_path,
        "business",
        "list",
        "--json",
        env={**os.environ, "PORTALCTL_AUTH_TARGET": auth.target},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0, err.decode()
    assert isinstance(json.loads(out), list)
