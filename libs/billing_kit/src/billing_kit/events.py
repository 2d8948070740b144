"""CloudEvents 1.0 envelope shared by every producer and consumer.

Structured-mode JSON on the wire; the routing key on the exchange is ``type``.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from billing_kit.clock import utc_now


class CloudEvent(BaseModel):
    """A CloudEvents 1.0 structured-mode JSON envelope."""

    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: str = "1.0"
    id: str = Field(min_length=1)
    source: str = Field(min_length=1)
    type: str = Field(min_length=1)
    time: datetime
    datacontenttype: str = "application/json"
    subject: str | None = None
    data: dict[str, Any]


def new_event(type: str, source: str, data: BaseModel, *, subject: str | None = None) -> CloudEvent:
    """Build an event with a fresh id and the current UTC time."""
    return CloudEvent(
        id=str(uuid.uuid4()),
        source=source,
        type=type,
        time=utc_now(),
        subject=subject,
        data=data.model_dump(mode="json"),
    )


def encode_event(event: CloudEvent) -> bytes:
    """The event as CloudEvents JSON bytes (absent optional attributes are omitted)."""
    payload = event.model_dump(mode="json")
    if payload.get("subject") is None:
        # CloudEvents leaves unset optional attributes out rather than null.
        payload.pop("subject", None)
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def decode_event(body: bytes | str) -> CloudEvent:
    """Parse CloudEvents JSON; raises ``ValueError`` for anything that is not one."""
    try:
        return CloudEvent.model_validate_json(body)
    except ValidationError as exc:
        raise ValueError(f"not a CloudEvent: {exc.error_count()} validation error(s)") from exc
