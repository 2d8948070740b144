"""The SMTP sink stores every message as one .eml file that tests can read."""

from __future__ import annotations

import asyncio
import signal
import smtplib
import time
from email.message import EmailMessage
from pathlib import Path

import pytest
from devstack.processes import ManagedProcess, base_environment, python_module
from devstack.smtp_sink import read_mailbox
from devstack.topology import free_ports


def send(port: int, message: EmailMessage, to: list[str]) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
        client.send_message(message, to_addrs=to)


async def wait_listening(port: int, process: ManagedProcess) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        assert process.running, process.tail()
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        writer.close()
        return
    pytest.fail("SMTP sink did not listen")


async def test_messages_land_as_eml_files_and_sigterm_stops_cleanly(tmp_path: Path) -> None:
    (port,) = free_ports(1)
    maildir = tmp_path / "mail"
    sink = ManagedProcess(
        "smtp-sink",
        python_module("devstack", "smtp-sink", "--port", str(port), "--maildir", str(maildir)),
        env=base_environment(),
        log_path=tmp_path / "smtp.log",
    )
    await sink.start()
    try:
        await wait_listening(port, sink)
        message = EmailMessage()
        message["From"] = "portal@example.com"
        message["To"] = "ada@example.com"
        message["Subject"] = "Il tuo link di accesso"
        message.set_content("Apri questo link per accedere.")
        await asyncio.to_thread(send, port, message, ["ada@example.com", "audit@example.com"])

        stored = await asyncio.to_thread(read_mailbox, maildir)
        assert len(stored) == 1
        assert stored[0].path.suffix == ".eml"
        assert stored[0].subject == "Il tuo link di accesso"
        assert stored[0].envelope_to == ["ada@example.com", "audit@example.com"]
        assert "Apri questo link" in stored[0].text()
        assert list(maildir.glob("*.tmp")) == []
    finally:
        sink.send_signal(signal.SIGTERM)
        code = await sink.wait(10)
        await sink.stop()
    assert code == 0, sink.tail()


async def test_reading_a_missing_mailbox_gives_nothing(tmp_path: Path) -> None:
    assert read_mailbox(tmp_path / "nowhere") == []
