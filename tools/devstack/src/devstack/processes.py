"""Child processes of the stack: start, log, stop (SIGTERM, wait, then SIGKILL)."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import IO

log = logging.getLogger("devstack")

_PR_SET_PDEATHSIG = 1
# Loaded once here: dlopen() between fork and exec in a threaded parent can deadlock.
try:
    _LIBC: ctypes.CDLL | None = ctypes.CDLL("libc.so.6", use_errno=True)
except OSError:
    _LIBC = None


def _die_with_parent() -> None:
    """Ask Linux to SIGTERM the child when the stack's process dies.

    Without it a crashed test run (or a `kill -9` of `make run`) would leave
    services holding the ports. Runs in the child between fork and exec, so it
    only makes one system call.
    """
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class ManagedProcess:
    """One child process whose output goes to a log file (and optionally the console).

    The child runs in its own session so a Ctrl-C in the terminal reaches only
    the stack, which then stops the children in order instead of all at once.
    """

    def __init__(
        self,
        name: str,
        argv: list[str],
        *,
        env: Mapping[str, str],
        log_path: Path,
        cwd: Path | None = None,
        console: IO[str] | None = None,
    ) -> None:
        self.name = name
        self.argv = argv
        self.env = dict(env)
        self.log_path = log_path
        self.cwd = cwd
        self.console = console
        self.process: asyncio.subprocess.Process | None = None
        self._pump: asyncio.Task[None] | None = None
        self._log_file: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The child's pid once started."""
        return self.process.pid if self.process else None

    @property
    def returncode(self) -> int | None:
        """The exit code, or None while running (or before start)."""
        return self.process.returncode if self.process else None

    @property
    def running(self) -> bool:
        """True while the child has been started and has not exited."""
        return self.process is not None and self.process.returncode is None

    async def start(self) -> None:
        """Spawn the child with stdout and stderr merged into the log."""
        # Append: a second `make run` keeps the earlier run's lines for reference.
        self._log_file = await asyncio.to_thread(_open_log, self.log_path)
        stdout: int | IO[bytes] = (
            asyncio.subprocess.PIPE if self.console is not None else self._log_file
        )
        self.process = await asyncio.create_subprocess_exec(
            *self.argv,
            env=self.env,
            cwd=self.cwd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=stdout,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        if self.console is not None:
            self._pump = asyncio.create_task(self._pump_output(), name=f"log-{self.name}")
        log.debug("started %s (pid %s)", self.name, self.process.pid)

    async def _pump_output(self) -> None:
        """Copy the child's lines to its log file and, prefixed, to the console."""
        assert self.process is not None and self.process.stdout is not None
        assert self._log_file is not None
        prefix = f"{self.name:>13} | "
        while line := await self.process.stdout.readline():
            # Local-disk and terminal writes of one line: the dev console only, so
            # not worth a thread hop per line.
            self._log_file.write(line)
            self._log_file.flush()
            if self.console is not None:
                self.console.write(prefix + line.decode("utf-8", "replace").rstrip("\n") + "\n")
                self.console.flush()

    def tail(self, lines: int = 30) -> str:
        """The last lines of the child's log, for error messages."""
        try:
            data = self.log_path.read_bytes()
        except OSError:
            return ""
        return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])

    def send_signal(self, sig: signal.Signals) -> None:
        """Signal the child if it is still running."""
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(sig)

    async def wait(self, limit_seconds: float | None = None) -> int | None:
        """Wait for the child to exit; None when `limit_seconds` passed first."""
        if self.process is None:
            return None
        try:
            code = await asyncio.wait_for(self.process.wait(), limit_seconds)
        except TimeoutError:
            return None
        await self._finish_logging()
        return code

    async def stop(self, grace_seconds: float = 15.0) -> int | None:
        """SIGTERM, wait up to `grace_seconds`, then SIGKILL. Returns the exit code."""
        if self.process is None:
            return None
        if self.process.returncode is None:
            self.send_signal(signal.SIGTERM)
            code = await self.wait(grace_seconds)
            if code is None:
                log.warning("%s did not stop within %.0fs; killing it", self.name, grace_seconds)
                self.send_signal(signal.SIGKILL)
                await self.process.wait()
        await self._finish_logging()
        return self.process.returncode

    async def _finish_logging(self) -> None:
        if self._pump is not None:
            # The pipe closes when the child exits, so the pump ends by itself.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._pump, 5)
            self._pump = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


def _open_log(path: Path) -> IO[bytes]:
    path.parent.mkdir(parents=True, exist_ok=True)
    return open(path, "ab")  # closed by ManagedProcess once the child has exited


def python_module(module: str, *args: str) -> list[str]:
    """argv that runs ``python -m module`` with the interpreter of this environment."""
    return [sys.executable, "-m", module, *args]


def venv_script(name: str) -> str:
    """Path of a console script installed beside this interpreter (e.g. secantusd-py)."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def base_environment() -> dict[str, str]:
    """The parent's environment minus service settings that would leak into children.

    A developer's shell may export e.g. AUTH_GRPC_PORT for another purpose; the
    stack decides every service setting itself.
    """
    prefixes = tuple(
        f"{name.upper()}_"
        for name in ("auth", "subscriptions", "payments", "invoicing", "notifications", "gateway")
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env["PYTHONUNBUFFERED"] = "1"
    return env
