"""The access log names the route, never the one-time token in the path."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from billing.auth.v1 import portal_access_pb2
from billing.common.v1 import common_pb2
from billing_kit.logging import JsonFormatter


def access_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    formatter = JsonFormatter("gateway")
    return [
        json.loads(formatter.format(record))
        for record in caplog.records
        if record.name == "gateway.access"
    ]


async def test_token_pages_are_logged_by_route_with_the_token_left_out(
    gateway: Any, caplog: pytest.LogCaptureFixture
) -> None:
    client, fake = gateway
    business_id = fake.add_business("Acme")
    token = fake.portal.issue(
        portal_access_pb2.TOKEN_PURPOSE_SIGN_IN, business_id, common_pb2.MODE_TEST
    )
    unknown = "not-a-token-but-still-a-secret-shaped-value"
    caplog.set_level(logging.INFO, logger="gateway.access")
    for path in (
        f"/test/link/{token}",
        f"/test/email-change/{token}",
        f"/live/handoff/{token}",
        f"/all/link/{token}",
        f"/test/link/{unknown}",
        # A token pasted into a URL that matches no route.
        f"/test/nowhere/{token}",
    ):
        await client.get(path, allow_redirects=False)
    lines = access_lines(caplog)
    assert len(lines) == 6
    for line in lines:
        text = json.dumps(line)
        assert token[4:] not in text and unknown not in text, text
    assert [line["http_path"] for line in lines[:5]] == [
        "/test/link/{token}",
        "/test/email-change/{token}",
        "/live/handoff/{token}",
        "/all/link/{token}",
        "/test/link/{token}",
    ]
    assert lines[0]["http_route"] == "/test/link/{token}"
    assert lines[5]["http_path"] == "/test/nowhere/cpt_[REDACTED]"
