"""Read the SMTP sink's mailbox like a customer reads an inbox.

The sink stores one ``.eml`` per message; tests wait for the message that a
page promised ("check your email"), then follow the link in it::

    inbox = Mailbox(stack.mail_dir)
    seen = await inbox.count("ada@example.com")
    ...  # the customer asks for a sign-in link
    message = await inbox.wait_for("ada@example.com", skip=seen)
    link = message_link(message, stack.portal_urls.test + "/link/")
"""

from __future__ import annotations

import asyncio
import html
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from devstack.smtp_sink import StoredMessage, read_message

DEFAULT_WAIT_SECONDS = 15.0
_POLL_SECONDS = 0.1
# Links end at whitespace, quotes or angle brackets (plain text and HTML alike).
_URL_RE = re.compile(r"https?://[^\s\"'<>]+")


class MailboxTimeout(AssertionError):
    """The expected message did not arrive in time (an AssertionError: tests fail, not error)."""


def _addressed_to(message: StoredMessage, address: str) -> bool:
    wanted = address.strip().lower()
    recipients = [addr.lower() for addr in message.envelope_to]
    header_to = str(message.message.get("To", "")).lower()
    return wanted in recipients or wanted in header_to


def message_links(message: StoredMessage) -> list[str]:
    """Every http(s) URL in the message, plain-text part first, in order, without repeats."""
    found: list[str] = []
    for kind in ("plain", "html"):
        part = message.message.get_body(preferencelist=(kind,))
        if part is None:
            continue
        try:
            content = str(part.get_content())  # type: ignore[attr-defined]
        except (LookupError, ValueError):
            continue
        for url in _URL_RE.findall(content):
            url = html.unescape(url).rstrip(".,;)")
            if url not in found:
                found.append(url)
    return found


def message_link(message: StoredMessage, starts_with: str) -> str:
    """The first link in the message that starts with ``starts_with`` (else AssertionError)."""
    for url in message_links(message):
        if url.startswith(starts_with):
            return url
    raise AssertionError(
        f"no link starting with {starts_with!r} in {message.subject!r}; "
        f"links: {message_links(message)}"
    )


@dataclass(frozen=True)
class Mailbox:
    """The sink's directory, read as one inbox per recipient address."""

    maildir: Path
    # Parsed messages by file name: a message file never changes once it is there
    # (the sink renames it into place), so each is parsed once however often we poll.
    _parsed: dict[str, StoredMessage] = field(default_factory=dict, repr=False, compare=False)

    def _read(self) -> list[StoredMessage]:
        if not self.maildir.exists():
            return []
        names = sorted(path.name for path in self.maildir.glob("*.eml"))
        for name in names:
            if name not in self._parsed:
                self._parsed[name] = read_message(self.maildir / name)
        return [self._parsed[name] for name in names]

    async def messages_to(self, address: str) -> list[StoredMessage]:
        """Every message to this address (case-insensitive), oldest first."""
        messages = await asyncio.to_thread(self._read)
        return [message for message in messages if _addressed_to(message, address)]

    async def count(self, address: str) -> int:
        """How many messages this address has received so far."""
        return len(await self.messages_to(address))

    async def wait_for(
        self,
        address: str,
        *,
        skip: int = 0,
        subject_contains: str | None = None,
        within_seconds: float = DEFAULT_WAIT_SECONDS,
    ) -> StoredMessage:
        """The first message to ``address`` after the first ``skip`` ones, once it arrives.

        ``subject_contains`` (case-insensitive) narrows it down when several kinds
        of email go to one address. Raises :class:`MailboxTimeout` after ``within_seconds``.
        """
        deadline = time.monotonic() + within_seconds
        while True:
            fresh = (await self.messages_to(address))[skip:]
            if subject_contains is not None:
                fresh = [m for m in fresh if subject_contains.lower() in m.subject.lower()]
            if fresh:
                return fresh[0]
            if time.monotonic() > deadline:
                raise MailboxTimeout(
                    f"no message to {address} (after {skip} earlier ones"
                    + (f", subject containing {subject_contains!r}" if subject_contains else "")
                    + f") within {within_seconds:.0f}s"
                )
            await asyncio.sleep(_POLL_SECONDS)

    async def assert_nothing_new(self, address: str, *, skip: int, seconds: float) -> None:
        """Fail if any message beyond the first ``skip`` reaches ``address`` within ``seconds``."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            extra = (await self.messages_to(address))[skip:]
            if extra:
                raise AssertionError(
                    f"unexpected message to {address}: {[m.subject for m in extra]}"
                )
            await asyncio.sleep(_POLL_SECONDS * 2)
