"""Prefixed secrets never reach a log line or an exported span."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from billing_kit.logging import JsonFormatter
from billing_kit.redaction import contains_secret, redact_secrets
from billing_kit.telemetry import JsonLinesSpanExporter, RedactingSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

TOKEN = "cpt_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8S9t0U1v"
SESSION = "cps_" + "Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss2Rr1Qq0Pp9Oo8Nn7Mm6"
API_KEY = "sk_live_" + "q" * 40


class TestRedactSecrets:
    def test_every_kind_of_prefixed_secret_is_redacted(self) -> None:
        text = f"GET /live/link/{TOKEN}?x=1 cookie={SESSION}; key {API_KEY}"
        redacted = redact_secrets(text)
        for secret in (TOKEN, SESSION, API_KEY):
            assert secret not in redacted
            assert secret[8:] not in redacted
        assert "/live/link/cpt_[REDACTED]?x=1" in redacted
        assert not contains_secret(redacted)

    def test_display_prefixes_and_ordinary_words_stay(self) -> None:
        for text in ("key sk_test_AbCd", "gcpt_abcdefghijklmnop", "cps_short", "receipts_total"):
            assert redact_secrets(text) == text


def test_log_lines_redact_message_fields_and_traceback() -> None:
    formatter = JsonFormatter("auth")
    try:
        raise ValueError(f"bad token {TOKEN}")
    except ValueError:
        record = logging.LogRecord(
            "auth", logging.ERROR, __file__, 1, "spent %s", (TOKEN,), sys.exc_info()
        )
    record.session = SESSION
    record.nested = {"cookies": [SESSION]}
    line = formatter.format(record)
    assert TOKEN not in line and SESSION not in line
    payload = json.loads(line)
    assert payload["message"] == "spent cpt_[REDACTED]"
    assert payload["session"] == "cps_[REDACTED]"
    assert payload["nested"] == {"cookies": ["cps_[REDACTED]"]}
    assert "bad token cpt_[REDACTED]" in payload["exception"]


def test_exported_spans_are_redacted(tmp_path: Path) -> None:
    out = tmp_path / "spans.jsonl"
    provider = TracerProvider()
    provider.add_span_processor(
        SimpleSpanProcessor(RedactingSpanExporter(JsonLinesSpanExporter(out)))
    )
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span(
        f"GET /link/{TOKEN}", attributes={"url.path": f"/link/{TOKEN}"}
    ) as span:
        span.set_attribute("tokens", [TOKEN, "plain"])
        span.record_exception(RuntimeError(f"session {SESSION} refused"))
    provider.shutdown()
    text = out.read_text()
    assert TOKEN not in text and SESSION not in text
    exported = json.loads(text.splitlines()[0])
    assert exported["name"] == "GET /link/cpt_[REDACTED]"
    assert exported["attributes"]["url.path"] == "/link/cpt_[REDACTED]"
    assert exported["attributes"]["tokens"] == ["cpt_[REDACTED]", "plain"]
    assert (
        "session cps_[REDACTED] refused" in exported["events"][0]["attributes"]["exception.message"]
    )
