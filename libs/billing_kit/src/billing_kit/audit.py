"""Audit log: who did what to which resource, when, under which request.

A use case calls :func:`record_audit` inside the same transaction as the state
change it audits (like :func:`~billing_kit.outbox.add_to_outbox`), so an entry
exists exactly when the change does: a rolled-back change leaves no entry, and
a committed one cannot lose its entry.

Entries hold ids, never personal data or secrets: ``details`` refuses values
that look like an email address or a token, so a careless caller fails loudly
in its tests instead of writing one to the database.

Document shape (collection ``audit_log``)::

    {_id: entry_id, actor: {kind, id}, action, resource: {kind, id, business_id, mode},
     at, trace_id, request_id, details: {str: str}}
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from billing_kit.telemetry import current_trace_ids

AUDIT_COLLECTION = "audit_log"

AUDIT_INDEXES: dict[str, list[IndexModel]] = {
    AUDIT_COLLECTION: [
        # "What happened to this resource", newest first.
        IndexModel(
            [("resource.kind", ASCENDING), ("resource.id", ASCENDING), ("at", DESCENDING)],
            name="resource_newest_first",
        ),
        # "What did this actor do", newest first.
        IndexModel(
            [("actor.kind", ASCENDING), ("actor.id", ASCENDING), ("at", DESCENDING)],
            name="actor_newest_first",
        ),
    ],
}

# Prefixes of the secrets we issue (portal tokens, session secrets, API keys).
_SECRET_PREFIXES = ("cpt_", "cps_", "sk_test_", "sk_live_")
_ACTION = re.compile(r"^[a-z][a-z_]*(\.[a-z][a-z_]*)+$")


class Actor(BaseModel):
    """Who acted: a signed-in customer, a merchant's API key, an operator, or the system."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["customer", "merchant", "operator", "system"]
    id: str = Field(min_length=1, max_length=200, description="customer id, API key id, ...")


class Resource(BaseModel):
    """What was acted on, with the business and mode it belongs to."""

    model_config = ConfigDict(frozen=True)

    kind: str = Field(min_length=1, max_length=50, description="e.g. customer, subscription")
    id: str = Field(min_length=1, max_length=200)
    business_id: str | None = None
    mode: Literal["test", "live"] | None = None


class AuditEntry(BaseModel):
    """One audited action."""

    model_config = ConfigDict(frozen=True)

    entry_id: str
    actor: Actor
    action: str = Field(description="dotted, past tense: customer.profile_updated")
    resource: Resource
    at: datetime
    trace_id: str | None = None
    request_id: str | None = None
    details: dict[str, str] = Field(default_factory=dict)

    @field_validator("action")
    @classmethod
    def _dotted(cls, value: str) -> str:
        if not _ACTION.match(value):
            raise ValueError("action must be dotted lower case, e.g. customer.profile_updated")
        return value

    @field_validator("at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("at must be timezone-aware (UTC)")
        return value

    @field_validator("details")
    @classmethod
    def _no_personal_data(cls, value: dict[str, str]) -> dict[str, str]:
        for key, text in value.items():
            if "@" in text or text.startswith(_SECRET_PREFIXES):
                raise ValueError(f"details[{key!r}] looks like an email or a secret: log ids only")
        return value


async def record_audit(
    db: AsyncDatabase[Any],
    *,
    actor: Actor,
    action: str,
    resource: Resource,
    at: datetime,
    session: AsyncClientSession,
    request_id: str | None = None,
    details: Mapping[str, str] | None = None,
) -> AuditEntry:
    """Write one entry inside the caller's transaction and return it.

    ``at`` comes from the use case's clock (``billing_kit.clock``); the trace
    id is the active span's, so an entry leads to the request's logs and trace.
    """
    if not session.in_transaction:
        # Outside a transaction the entry could outlive a failed change (or the reverse).
        raise RuntimeError("record_audit must be called inside a transaction")
    trace_id, _ = current_trace_ids()
    entry = AuditEntry(
        entry_id=f"aud_{uuid.uuid4().hex}",
        actor=actor,
        action=action,
        resource=resource,
        at=at,
        trace_id=trace_id,
        request_id=request_id,
        details=dict(details or {}),
    )
    document = entry.model_dump(mode="python")
    document["_id"] = document.pop("entry_id")
    await db[AUDIT_COLLECTION].insert_one(document, session=session)
    return entry


async def audit_trail(
    db: AsyncDatabase[Any], resource_kind: str, resource_id: str, *, limit: int = 50
) -> list[AuditEntry]:
    """The newest ``limit`` entries about one resource (served by an index)."""
    cursor = (
        db[AUDIT_COLLECTION]
        .find({"resource.kind": resource_kind, "resource.id": resource_id})
        .sort([("at", DESCENDING), ("_id", DESCENDING)])
        .limit(limit)
    )
    return [AuditEntry.model_validate({**doc, "entry_id": doc["_id"]}) async for doc in cursor]
