"""Operators' webhook commands.

    python -m notifications.webhooks.operations reseal

``reseal`` re-encrypts every endpoint's signing secrets and sensitive header
values under the first key of ``NOTIFICATIONS_WEBHOOK_SECRET_KEYS``. Rotating
that setting: put the new key first (keep the old one after it), roll the
pods, run ``reseal``, then remove the old key. It uses the service's own
settings, so it runs wherever the service does (``kubectl exec`` into a
notifications pod), and prints counts only, never a secret. Exit codes: 0
done, 1 some endpoint could not be opened with any key, 2 bad settings.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import TextIO

from billing_kit.mongo import create_mongo_client
from billing_kit.sealing import Sealer, SealError
from billing_kit.settings import load_settings

from notifications.config import NotificationsSettings
from notifications.webhooks.repository import WebhooksRepository


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m notifications.webhooks.operations",
        description="Operate merchant webhooks.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("reseal", help="re-seal secrets and sensitive headers under the first key")
    return parser


async def reseal(repository: WebhooksRepository, sealer: Sealer) -> tuple[int, int]:
    """Re-seal every endpoint; ``(resealed, unopenable)``. A concurrent change is retried
    on the next run (it was sealed under the current key anyway)."""
    resealed = unopenable = 0
    async for endpoint in repository.every_endpoint():
        try:
            secrets = [
                s.model_copy(update={"sealed": sealer.seal(sealer.open(s.sealed))})
                for s in endpoint.secrets
            ]
            headers = {k: sealer.seal(sealer.open(v)) for k, v in endpoint.sealed_headers.items()}
        except SealError:
            unopenable += 1
            continue
        if await repository.replace_sealed(endpoint, secrets, headers):
            resealed += 1
    return resealed, unopenable


async def run(
    argv: Sequence[str], settings: NotificationsSettings, out: TextIO = sys.stdout
) -> int:
    """Run one command against the service's database; returns the exit code."""
    build_parser().parse_args(list(argv))
    client = create_mongo_client(settings.mongodb_url.get_secret_value(), app_name="webhook-ops")
    try:
        repository = WebhooksRepository(client[settings.mongodb_database or "notifications"])
        done, failed = await reseal(
            repository, Sealer(settings.webhook_secret_keys.get_secret_value())
        )
    finally:
        await client.close()
    print(f"re-sealed {done} endpoint(s); {failed} could not be opened", file=out)
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``python -m notifications.webhooks.operations``."""
    settings = load_settings(NotificationsSettings)
    raise SystemExit(asyncio.run(run(sys.argv[1:] if argv is None else argv, settings)))


if __name__ == "__main__":
    main()
