"""Operators' view of emails that ran out of retries, and their replay.

    python -m notifications.dead_letters list [--limit N]
    python -m notifications.dead_letters replay --all | EMAIL_ID ...

Uses the service's own settings (``NOTIFICATIONS_MONGODB_URL`` ...), so it
runs wherever the service does (``kubectl exec`` into a notifications pod).
``list`` prints one line per dead email: id, template, business, mode,
attempts, last error and when it gave up, never the address or the link.
``replay`` queues them again with a fresh attempt count; a running
notifications delivers them within a second or so. Exit codes: 0 done, 1
nothing matched, 2 bad settings or arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import TextIO

from billing_kit.mongo import create_mongo_client
from billing_kit.settings import load_settings

from notifications.config import NotificationsSettings
from notifications.email.repository import EmailLogRepository
from notifications.email.service import utc_now


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m notifications.dead_letters",
        description="List and replay emails that ran out of delivery attempts.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="dead emails, oldest first")
    listing.add_argument("--limit", type=int, default=100)
    replay = commands.add_parser("replay", help="queue dead emails again")
    replay.add_argument("email_ids", nargs="*", metavar="EMAIL_ID")
    replay.add_argument("--all", action="store_true", help="every dead email")
    return parser


async def run(
    argv: Sequence[str], settings: NotificationsSettings, out: TextIO = sys.stdout
) -> int:
    """Run one command against the service's database; returns the exit code."""
    args = build_parser().parse_args(list(argv))
    if args.command == "replay" and not args.all and not args.email_ids:
        print("error: name EMAIL_IDs or pass --all", file=sys.stderr)
        return 2
    client = create_mongo_client(settings.mongodb_url.get_secret_value(), app_name="dead-letters")
    try:
        repository = EmailLogRepository(client[settings.mongodb_database or "notifications"])
        if args.command == "list":
            dead = await repository.list_dead(args.limit)
            for record in dead:
                print(
                    f"{record.email_id}\t{record.template.value}\t{record.business_id or '-'}\t"
                    f"{record.mode}\tattempts={record.attempts}\terror={record.error or '-'}\t"
                    f"{record.updated_at.isoformat()}",
                    file=out,
                )
            return 0 if dead else 1
        replayed = await repository.replay_dead(
            None if args.all else list(args.email_ids), now=utc_now()
        )
        print(f"queued {replayed} email(s) again", file=out)
        return 0 if replayed else 1
    finally:
        await client.close()


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``python -m notifications.dead_letters``."""
    settings = load_settings(NotificationsSettings)
    raise SystemExit(asyncio.run(run(sys.argv[1:] if argv is None else argv, settings)))


if __name__ == "__main__":
    main()
