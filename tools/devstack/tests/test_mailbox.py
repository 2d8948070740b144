"""The mailbox helper finds the message a page promised and the link inside it."""

from __future__ import annotations

import asyncio
from email.message import EmailMessage
from pathlib import Path

import pytest
from devstack.mailbox import Mailbox, MailboxTimeout, message_link, message_links


def store(maildir: Path, name: str, to: str, subject: str, text: str, html: str = "") -> None:
    """Write a message the way the sink does (with the envelope header first)."""
    message = EmailMessage()
    message["From"] = "portal@example.com"
    message["To"] = to
    message["Subject"] = subject
    message.set_content(text)
    if html:
        message.add_alternative(html, subtype="html")
    maildir.mkdir(parents=True, exist_ok=True)
    raw = f"X-Envelope-To: {to}\r\n".encode() + message.as_bytes()
    (maildir / name).write_bytes(raw)


async def test_waits_for_the_next_message_to_an_address_case_insensitively(
    tmp_path: Path,
) -> None:
    inbox = Mailbox(tmp_path / "mail")
    store(inbox.maildir, "001.eml", "ada@example.com", "First", "https://x.test/link/cpt_1")
    store(inbox.maildir, "002.eml", "bob@example.com", "Other", "nothing")

    assert await inbox.count("ADA@example.com ") == 1
    first = await inbox.wait_for("ada@example.com")
    assert first.subject == "First"

    async def deliver_later() -> None:
        await asyncio.sleep(0.3)
        store(inbox.maildir, "003.eml", "ada@example.com", "Second", "https://x.test/link/cpt_2")

    later = asyncio.create_task(deliver_later())
    second = await inbox.wait_for("ada@example.com", skip=1, within_seconds=5)
    await later
    assert second.subject == "Second"
    assert message_link(second, "https://x.test/link/") == "https://x.test/link/cpt_2"


async def test_times_out_with_a_clear_failure_and_notices_unexpected_mail(
    tmp_path: Path,
) -> None:
    inbox = Mailbox(tmp_path / "mail")
    with pytest.raises(MailboxTimeout, match=r"no message to nobody@example\.com"):
        await inbox.wait_for("nobody@example.com", within_seconds=0.3)

    store(inbox.maildir, "001.eml", "ada@example.com", "Hello", "hi")
    with pytest.raises(AssertionError, match="unexpected message"):
        await inbox.assert_nothing_new("ada@example.com", skip=0, seconds=0.3)
    await inbox.assert_nothing_new("ada@example.com", skip=1, seconds=0.3)


async def test_links_come_from_text_and_html_without_duplicates_or_entities(tmp_path: Path) -> None:
    store(
        tmp_path,
        "001.eml",
        "ada@example.com",
        "Sign in",
        "Open https://portal.test/live/link/cpt_abc.\nHelp: https://portal.test/help",
        '<a href="https://portal.test/live/link/cpt_abc">Sign in</a>'
        '<a href="https://portal.test/x?a=1&amp;b=2">x</a>',
    )
    (message,) = await Mailbox(tmp_path).messages_to("ada@example.com")

    assert message_links(message) == [
        "https://portal.test/live/link/cpt_abc",
        "https://portal.test/help",
        "https://portal.test/x?a=1&b=2",
    ]
    with pytest.raises(AssertionError, match="no link starting with"):
        message_link(message, "https://portal.test/test/")
