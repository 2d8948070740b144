"""Structured JSON logs, one event per line, with trace and span ids.

Emails are masked and prefixed secrets (tokens, session secrets, API keys)
redacted in every field, the exception text included (see
:mod:`billing_kit.redaction`).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

from billing_kit.redaction import redact_secrets
from billing_kit.telemetry import current_trace_ids

_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+)")
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def mask_email(text: str) -> str:
    """Keep only the first character of the local part: ``a***@example.com``."""
    return _EMAIL.sub(r"\1***@\2", text)


def scrub(text: str) -> str:
    """What may be written to a log: emails masked, secrets redacted."""
    return redact_secrets(mask_email(text))


class JsonFormatter(logging.Formatter):
    """Formats records as one JSON object per line; masks emails, redacts secrets."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": scrub(record.getMessage()),
        }
        trace_id, span_id = current_trace_ids()
        if trace_id:
            payload["trace_id"] = trace_id
            payload["span_id"] = span_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                payload[key] = scrub(value) if isinstance(value, str) else value
        if record.exc_info:
            payload["exception"] = scrub(self.formatException(record.exc_info))
        # Once more over the whole line: values nested in dicts or lists are covered too.
        return redact_secrets(json.dumps(payload, default=str))


def setup_logging(service: str, level: str = "INFO") -> None:
    """Route every logger to stdout as JSON lines."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aio_pika", "aiormq", "pymongo", "grpc"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
