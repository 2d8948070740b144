"""The unit of work of payments' use cases: one MongoDB transaction with its outbox events.

A use case opens it with :meth:`UnitOfWork.run`; repositories only read and
write with the session they are handed, and events are written through the
kit's outbox in the same transaction, so they exist exactly when the change does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from billing_kit.events import CloudEvent
from billing_kit.mongo import run_in_transaction
from billing_kit.outbox import add_to_outbox
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.asynchronous.mongo_client import AsyncMongoClient

Txn = AsyncClientSession
T = TypeVar("T")


class UnitOfWork:
    """Opens transactions and writes their outbox events."""

    def __init__(self, client: AsyncMongoClient[Any], db: AsyncDatabase[Any]) -> None:
        self.client = client
        self.db = db

    async def run(self, work: Callable[[Txn], Awaitable[T]]) -> T:
        """Run ``work(txn)`` in one transaction (rerun on transient conflicts)."""
        return await run_in_transaction(self.client, work)

    async def add_event(self, event: CloudEvent, txn: Txn) -> None:
        """Queue ``event`` for publishing with the transaction's changes."""
        await add_to_outbox(self.db, event, session=txn)
