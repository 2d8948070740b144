"""The unit of work of auth's use cases: one MongoDB transaction with its outbox
events and audit entries.

A use case (a service method) opens it with :meth:`UnitOfWork.run` and makes
its decisions inside; repositories only read and write with the session they
are handed. Events and audit entries are written through the kit
(:func:`~billing_kit.outbox.add_to_outbox`, :func:`~billing_kit.audit.record_audit`)
in the same transaction, so they exist exactly when the change does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from billing_kit.audit import Actor, Resource, record_audit
from billing_kit.events import CloudEvent
from billing_kit.mongo import run_in_transaction
from billing_kit.outbox import add_to_outbox
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.asynchronous.mongo_client import AsyncMongoClient

# The session of the open transaction, handed to every repository call inside it.
Txn = AsyncClientSession
T = TypeVar("T")


class AuditAction(StrEnum):
    """The actions auth audits (dotted, past tense), one place to read them all."""

    SIGNED_IN = "customer.signed_in"
    PROFILE_UPDATED = "customer.profile_updated"
    EMAIL_CHANGE_REQUESTED = "customer.email_change_requested"
    EMAIL_CHANGED = "customer.email_changed"
    BUSINESS_UPDATED = "business.updated"


class UnitOfWork:
    """Opens transactions and writes their outbox events and audit entries."""

    def __init__(self, client: AsyncMongoClient[Any], db: AsyncDatabase[Any]) -> None:
        self.client = client
        self.db = db

    async def run(self, work: Callable[[Txn], Awaitable[T]]) -> T:
        """Run ``work(txn)`` in one transaction: all of its writes commit or none do.

        ``work`` may run more than once (transient conflicts are retried), so it
        must do its I/O through ``txn`` only.
        """
        return await run_in_transaction(self.client, work)

    async def add_event(self, event: CloudEvent, txn: Txn) -> None:
        """Queue ``event`` for publishing with the transaction's changes."""
        await add_to_outbox(self.db, event, session=txn)

    async def audit(
        self,
        txn: Txn,
        *,
        actor: Actor,
        action: str,
        resource: Resource,
        at: datetime,
        details: Mapping[str, str] | None = None,
    ) -> None:
        """Record who did what to which resource, in the transaction (ids only)."""
        await record_audit(
            self.db,
            actor=actor,
            action=action,
            resource=resource,
            at=at,
            session=txn,
            details=details,
        )
