"""A local SMTP sink: accepts every message and stores it as one .eml file.

Tests and humans read the mailbox directory instead of a real inbox. Run it
with ``python -m devstack smtp-sink --port 1025 --maildir .data/mail``.

Like a real relay that knows a mailbox does not exist, it refuses for good
(550 on RCPT) every recipient whose local part starts with ``refuse-``
(:data:`REFUSED_PREFIX`), so tests can see what a permanent bounce does.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import logging
import signal
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

log = logging.getLogger("devstack.smtp")

# Recipients whose address starts with this are refused with a permanent 5xx.
REFUSED_PREFIX = "refuse-"


class MaildirHandler:
    """aiosmtpd handler writing each accepted message to ``<maildir>/<time>-<id>.eml``."""

    def __init__(self, maildir: Path) -> None:
        self.maildir = maildir
        maildir.mkdir(parents=True, exist_ok=True)

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        """Accept a recipient, or refuse it for good when it starts with ``refuse-``."""
        if address.lower().startswith(REFUSED_PREFIX):
            return "550 5.1.1 Recipient address rejected: no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Store the message; the envelope recipients go in an X-Envelope-To header."""
        content = envelope.original_content or b""
        # Bcc recipients appear only in the envelope; keep them so a reader can
        # find every message addressed to someone.
        header = "X-Envelope-To: " + ", ".join(envelope.rcpt_tos) + "\r\n"
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        name = f"{stamp}-{uuid.uuid4().hex[:8]}.eml"
        await asyncio.to_thread(_write_atomically, self.maildir / name, header.encode() + content)
        log.info("stored %s (%d recipients)", name, len(envelope.rcpt_tos))
        return "250 Message accepted for delivery"


def _write_atomically(path: Path, data: bytes) -> None:
    # Write then rename, so a reader polling the directory never sees half a message.
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def _accept_any_login(*_args: Any) -> AuthResult:
    # A sink: any credentials a service is configured with are fine.
    return AuthResult(success=True)


async def serve(host: str, port: int, maildir: Path) -> None:
    """Serve SMTP until SIGTERM/SIGINT."""
    handler = MaildirHandler(maildir)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(
            handler,
            hostname="devstack-smtp-sink",
            auth_require_tls=False,
            authenticator=_accept_any_login,
            loop=loop,
        ),
        host=host,
        port=port,
    )
    # aiosmtpd logs every connection at INFO, including the stack's port probes.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("SMTP sink listening on %s:%d, storing mail in %s", host, port, maildir)
    async with server:
        await stop.wait()
    log.info("SMTP sink stopped")


@dataclass(frozen=True)
class StoredMessage:
    """One message read back from the sink's directory."""

    path: Path
    message: EmailMessage

    @property
    def envelope_to(self) -> list[str]:
        """Envelope recipients (including Bcc)."""
        raw = self.message.get("X-Envelope-To", "")
        return [addr.strip() for addr in str(raw).split(",") if addr.strip()]

    @property
    def subject(self) -> str:
        """The decoded Subject header."""
        return str(self.message.get("Subject", ""))

    def text(self) -> str:
        """The plain-text body (or the HTML one when there is no plain part)."""
        part = self.message.get_body(preferencelist=("plain", "html"))
        if part is None:
            return ""
        with contextlib.suppress(Exception):
            return str(part.get_content())  # type: ignore[attr-defined]
        return ""


def read_mailbox(maildir: Path) -> list[StoredMessage]:
    """Every stored message, oldest first (blocking: call via asyncio.to_thread in async code)."""
    if not maildir.exists():
        return []
    return [read_message(path) for path in sorted(maildir.glob("*.eml"))]


def read_message(path: Path) -> StoredMessage:
    """One stored message (blocking)."""
    parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return StoredMessage(path=path, message=parsed)
