"""MongoDB access for every service: one client per process, indexes, transactions.

Built on PyMongo's async API (``AsyncMongoClient``). Every service owns one
database; repositories receive the client (for transactions) and the database.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from typing import Any, TypeVar

import pymongo
from pydantic import BaseModel
from pymongo import AsyncMongoClient, IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

log = logging.getLogger(__name__)

# Callbacks to run once a session's transaction has committed (see call_after_commit).
_after_commit: weakref.WeakKeyDictionary[AsyncClientSession, dict[Hashable, Callable[[], None]]] = (
    weakref.WeakKeyDictionary()
)

# Long enough to ride out a primary election, short enough that a request
# against a dead database fails instead of hanging.
SERVER_SELECTION_TIMEOUT_MS = 5_000
CONNECT_TIMEOUT_MS = 5_000


def embedded_mongo_url(host: str, port: int) -> str:
    """Connection string for a SecantusDB the devstack or a test started itself.

    ``retryWrites=false`` because SecantusDB keeps a reply for every retryable
    write for 30 minutes and, once it holds 10,000, sorts all of them on every
    further write: measured here, single updates fell from about 500/s to
    about 30/s after 10,000 writes, and the test suite and the benchmarks
    write far more than that. Nothing here needs the driver's one automatic
    retry on a single-node server; MongoDB (a ``MONGODB_URL`` from a Secret or
    the environment) keeps the driver's default.
    """
    return f"mongodb://{host}:{port}/?directConnection=true&retryWrites=false"


def create_mongo_client(url: str, *, app_name: str) -> AsyncMongoClient[dict[str, Any]]:
    """A client for ``url`` that returns tz-aware datetimes and standard UUIDs.

    The client connects lazily, so building it never blocks and never fails
    because the database is down; the first operation (or :func:`ping`) does.
    """
    return AsyncMongoClient(
        url,
        appname=app_name,
        tz_aware=True,
        uuidRepresentation="standard",
        serverSelectionTimeoutMS=SERVER_SELECTION_TIMEOUT_MS,
        connectTimeoutMS=CONNECT_TIMEOUT_MS,
    )


async def ensure_indexes(
    db: AsyncDatabase[dict[str, Any]], indexes: Mapping[str, Sequence[IndexModel]]
) -> None:
    """Create every declared index (idempotent: existing identical indexes are kept).

    An index that exists with different options raises ``OperationFailure``: a
    silent mismatch (for example a unique index that is not unique) is worse
    than a failed start.
    """
    for collection, models in indexes.items():
        if models:
            await db[collection].create_indexes(list(models))


async def ping(client: AsyncMongoClient[Any], timeout: float = 2.0) -> bool:  # noqa: ASYNC109
    """True when the server answers ``ping`` within ``timeout`` seconds."""
    try:
        # pymongo.timeout bounds server selection and the round trip without
        # cancelling a socket half-way through a command.
        with pymongo.timeout(timeout):
            await client.admin.command("ping")
    except PyMongoError:
        return False
    return True


async def run_in_transaction(
    client: AsyncMongoClient[Any],
    fn: Callable[[AsyncClientSession], Awaitable[T]],
) -> T:
    """Run ``fn(session)`` in one transaction and return its result.

    Transient transaction errors (write conflicts, elections) rerun ``fn``
    and an unknown commit result retries the commit, as
    ``ClientSession.with_transaction`` does; any other exception aborts the
    transaction and propagates, so nothing ``fn`` wrote is kept. ``fn`` may
    therefore run more than once: it must do its I/O through ``session`` only.
    """
    async with client.start_session() as session:
        try:
            result = await session.with_transaction(
                fn,
                read_concern=ReadConcern("snapshot"),
                write_concern=WriteConcern("majority"),
            )
        except BaseException:
            _after_commit.pop(session, None)
            raise
        for callback in _after_commit.pop(session, {}).values():
            try:
                callback()
            except Exception:
                log.exception("after-commit callback failed")
        return result


def call_after_commit(
    session: AsyncClientSession, key: Hashable, callback: Callable[[], None]
) -> None:
    """Run ``callback`` once the transaction of ``session`` has committed.

    Only for transactions run by :func:`run_in_transaction`; nothing runs when
    the transaction aborts. ``key`` makes registering twice (``fn`` is rerun
    on a transient error) one call. Used by the outbox to wake its relay the
    moment an event is visible, without a database round trip.
    """
    _after_commit.setdefault(session, {})[key] = callback


def model_to_document(
    model: BaseModel, id_field: str, *, exclude_none: bool = False
) -> dict[str, Any]:
    """The model as a document: its fields, with ``id_field`` stored as ``_id``.

    Every collection keys its documents by the model's own id (``pay_…``, ``inv_…``),
    so a lookup by id is the ``_id`` index and the id is unique without a second index.
    """
    doc = model.model_dump(mode="python", exclude_none=exclude_none)
    doc["_id"] = doc.pop(id_field)
    return doc


def model_from_document(model_type: type[M], doc: Mapping[str, Any], id_field: str) -> M:
    """The model of a document written by :func:`model_to_document`.

    Stored fields the model does not declare (hashes, lease fields, positions) are
    left out, so a repository may keep its own bookkeeping beside the model's fields.
    """
    fields = {name: doc[name] for name in model_type.model_fields if name in doc}
    fields[id_field] = doc["_id"]
    return model_type.model_validate(fields)
