"""Broker connections shared by the publisher and the consumers (aio-pika).

Both sides need the same two guarantees from a robust connection: it leaves
no reconnect task behind when the first connect fails, and closing it never
waits on the broker without a deadline (so shutdown is bounded during an
outage).
"""

from __future__ import annotations

import asyncio
import logging

import aio_pika
from aio_pika.abc import AbstractRobustConnection
from aio_pika.connection import make_url

log = logging.getLogger(__name__)


def connection_is_up(connection: AbstractRobustConnection | None) -> bool:
    """True while ``connection`` exists, is open and not in the middle of a reconnect."""
    return connection is not None and not connection.is_closed and connection.connected.is_set()


async def connect_robust(
    url: str, *, connect_timeout: float, reconnect_interval: float, name: str, close_timeout: float
) -> AbstractRobustConnection:
    """``aio_pika.connect_robust`` that leaves nothing behind when it fails.

    A robust connection starts a reconnect task that survives the
    cancellation of its first ``connect()`` (and would keep the process from
    exiting), so the connection is built here and closed when connecting
    fails, times out or is cancelled.
    """
    # What aio_pika.connect_robust does: the option in the URL and as a keyword.
    connection = aio_pika.RobustConnection(
        make_url(url, reconnect_interval=reconnect_interval),  # type: ignore[arg-type]
        client_properties={"connection_name": name},
        reconnect_interval=reconnect_interval,
    )
    try:
        await asyncio.wait_for(connection.connect(timeout=connect_timeout), connect_timeout)
    except BaseException:
        await close_within(connection, close_timeout)
        raise
    return connection


async def close_within(connection: AbstractRobustConnection, timeout: float) -> None:  # noqa: ASYNC109
    """Close ``connection``, giving up after ``timeout`` seconds.

    Closing a robust connection that is reconnecting can wait on the broker;
    at shutdown the process is about to exit anyway, so the socket is simply
    dropped after the deadline.
    """
    try:
        await asyncio.wait_for(connection.close(), timeout)
    except TimeoutError:
        log.warning("broker connection did not close in time; dropping it")
    except Exception as exc:
        log.debug("error while closing a broker connection", extra={"error": type(exc).__name__})
