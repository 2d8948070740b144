"""A throwaway MongoDB: ``MONGODB_URL`` when set, else SecantusDB on a free port in memory."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError

from billing_kit.mongo import embedded_mongo_url
from billing_kit.testing.net import free_port


def _secantusd_executable() -> str:
    beside_python = Path(sys.executable).with_name("secantusd-py")
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("secantusd-py")
    if found is None:
        raise RuntimeError("secantusd-py not found: run `uv sync` (secantusdb is a dev dependency)")
    return found


async def wait_until_mongo_answers(url: str, within: float = 30.0) -> None:
    """Poll ``ping`` until the server at ``url`` answers, or raise ``TimeoutError``."""
    deadline = time.monotonic() + within
    client: AsyncMongoClient[Any] = AsyncMongoClient(url, serverSelectionTimeoutMS=500)
    try:
        while True:
            try:
                await client.admin.command("ping")
                return
            except PyMongoError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no MongoDB answered at {url} within {within}s") from None
                await asyncio.sleep(0.1)
    finally:
        await client.close()


@contextlib.asynccontextmanager
async def secantusdb(
    *, enable_test_commands: bool = False, startup_timeout: float = 30.0
) -> AsyncIterator[str]:
    """Start SecantusDB on a free port with in-memory storage; yield its URL; kill it after."""
    port = free_port()
    args = [
        _secantusd_executable(),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--storage-path",
        ":memory:",
        "--log-level",
        "WARNING",
    ]
    if enable_test_commands:
        args.append("--enable-test-commands")
    # Output goes to a file, not a pipe nobody reads (a full pipe would block the server).
    with tempfile.TemporaryFile(prefix="secantusd-") as output:
        process = await asyncio.create_subprocess_exec(*args, stdout=output, stderr=output)
        url = embedded_mongo_url("127.0.0.1", port)
        try:
            try:
                await wait_until_mongo_answers(url, startup_timeout)
            except TimeoutError:
                output.seek(0)
                tail = output.read()[-2000:].decode(errors="replace")
                raise RuntimeError(f"SecantusDB did not start on port {port}:\n{tail}") from None
            yield url
        finally:
            if process.returncode is None:
                process.terminate()
                try:
                    await asyncio.wait_for(process.wait(), timeout=10)
                except TimeoutError:
                    process.kill()
                    await process.wait()


@contextlib.asynccontextmanager
async def mongo_server(*, enable_test_commands: bool = False) -> AsyncIterator[str]:
    """``MONGODB_URL`` when set, else a fresh SecantusDB (see :func:`secantusdb`).

    Tests sharing one server isolate themselves with a unique database name.
    """
    external = os.environ.get("MONGODB_URL")
    if external:
        yield external
        return
    async with secantusdb(enable_test_commands=enable_test_commands) as url:
        yield url
