"""CloudEvents 1.0 envelope shared by every producer and consumer.

(SPEC — to be implemented.) Routing key on the exchange = ``type``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


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


def new_event(
    type: str, source: str, data: BaseModel, *, subject: str | None = None
) -> CloudEvent:
    """Build an event with a fresh id and the current UTC time."""
    return CloudEvent(
        id=str(uuid.uuid4()),
        source=source,
        type=type,
        time=datetime.now(UTC),
        subject=subject,
        data=data.model_dump(mode="json"),
    )
