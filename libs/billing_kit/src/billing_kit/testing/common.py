"""Small helpers every suite uses: unique names and polling assertions (never a sleep)."""

from __future__ import annotations

import asyncio
import inspect
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


def unique_name(prefix: str = "test") -> str:
    """A short name no other test run uses (database names, exchanges, queue prefixes)."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


async def eventually(
    check: Callable[[], T | Awaitable[T]],
    *,
    within: float = 10.0,
    interval: float = 0.05,
    message: str = "condition not met",
) -> T:
    """Call ``check()`` (sync or async) until it returns a truthy value.

    Returns that value; raises ``AssertionError`` after ``within`` seconds.
    """
    deadline = time.monotonic() + within
    while True:
        result = check()
        value: T = await result if inspect.isawaitable(result) else result  # type: ignore[assignment]
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{message} within {within}s (last value: {value!r})")
        await asyncio.sleep(interval)
