"""Operators' view of emails that ran out of retries, and their replay.

    python -m notifications.dead_letters list [--limit N]
    python -m notifications.dead_letters replay --all | EMAIL_ID ...
    python -m notifications.dead_letters replay-queue [--limit N]

Uses the service's own settings (``NOTIFICATIONS_MONGODB_URL`` ...), so it
runs wherever the service does (``kubectl exec`` into a notifications pod).
``list`` prints one line per dead email: id, template, business, mode,
attempts, last error and when it gave up, never the address or the link.
``replay`` queues them again with a fresh attempt count; a running
notifications delivers them within a second or so. ``replay-queue`` moves
``email.requested`` events the consumer dead-lettered (bad data, a link no
key opens) from the broker's dead-letter queue back to the exchange, once the
cause is fixed; each is published before it is taken off the DLQ, and the
stable email key makes a repeat harmless. Exit codes: 0 done, 1 nothing matched, 2 bad
settings or arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import TextIO

import aio_pika
from billing_kit.clock import utc_now
from billing_kit.mongo import create_mongo_client
from billing_kit.settings import load_settings

from notifications.config import NotificationsSettings
from notifications.consumers import EMAIL_REQUESTS
from notifications.email.repository import EmailLogRepository


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
    queue = commands.add_parser(
        "replay-queue", help="republish email requests from the broker's dead-letter queue"
    )
    queue.add_argument("--limit", type=int, default=1000)
    return parser


async def replay_dead_letter_queue(settings: NotificationsSettings, limit: int) -> int:
    """Move up to ``limit`` messages of the email-requests DLQ back to the exchange."""
    dlq_name = f"{settings.queue_prefix}notifications.{EMAIL_REQUESTS}.dlq"
    connection = await aio_pika.connect(settings.amqp_url.get_secret_value(), timeout=10)
    moved = 0
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(settings.events_exchange)
        dlq = await channel.get_queue(dlq_name)
        while moved < limit:
            message = await dlq.get(fail=False, no_ack=False)
            if message is None:
                break
            headers = {k: v for k, v in (message.headers or {}).items() if not k.startswith("x-")}
            await exchange.publish(
                aio_pika.Message(
                    body=message.body,
                    content_type=message.content_type,
                    content_encoding=message.content_encoding,
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    message_id=message.message_id,
                    type=message.type,
                    app_id=message.app_id,
                    timestamp=message.timestamp,
                    headers=headers,
                ),
                routing_key=message.type or message.routing_key or "",
            )
            await message.ack()
            moved += 1
    return moved


async def run(
    argv: Sequence[str], settings: NotificationsSettings, out: TextIO = sys.stdout
) -> int:
    """Run one command against the service's database; returns the exit code."""
    args = build_parser().parse_args(list(argv))
    if args.command == "replay" and not args.all and not args.email_ids:
        print("error: name EMAIL_IDs or pass --all", file=sys.stderr)
        return 2
    if args.command == "replay-queue":
        moved = await replay_dead_letter_queue(settings, args.limit)
        print(f"republished {moved} dead-lettered email request(s)", file=out)
        return 0 if moved else 1
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
