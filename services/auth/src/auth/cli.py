"""``portalctl``: the operator's command line, talking gRPC to the auth service.

    portalctl business create --name "Acme" [--logo-url URL] [--color #RRGGBB]
                              [--support-email EMAIL] [--return-url URL] [--locale it]
                              [--renewal-reminder-days N] [--license-grace-days N]
    portalctl business list
    portalctl business settings BUS
    portalctl business set BUS [--allow-cancel|--no-allow-cancel] [--allow-pause|--no-allow-pause]
                           [--allow-plan-change|--no-allow-plan-change]
                           [--allow-quantity-change|--no-allow-quantity-change]
                           [--ask-cancel-reason|--no-ask-cancel-reason]
                           [--downgrade-timing next_billing_date|immediately]
                           [--renewal-reminder-days N] [--license-grace-days N]
    portalctl api-key create --business BUS --mode test|live [--name NAME]
    portalctl api-key list --business BUS
    portalctl api-key revoke --business BUS KEY_ID
    portalctl invite CUSTOMER_ID --business BUS --mode test|live
                     [--send-email] [--return-url URL] [--next PATH]
    portalctl clock advance --business BUS (--seconds N | --days N | --to ISO-8601)
                     [--subscriptions-target HOST:PORT]   (the business's test-mode clock)

Every command takes ``--json`` for scripting and ``--auth-target`` (or
``PORTALCTL_AUTH_TARGET``, default ``127.0.0.1:50051``). Failures print one
``error: ...`` line on stderr and exit non-zero: 1 for a refused request, 2 for
bad usage, 3 when auth cannot be reached.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import Sequence
from typing import TextIO

import grpc
from billing.auth.v1 import auth_pb2_grpc, portal_access_pb2_grpc
from billing_kit.errors import DomainError
from billing_kit.grpc_client import create_channel
from grpc_status import rpc_status

from auth.cli_commands import (
    DOWNGRADE_TIMING_CHOICES,
    PORTAL_SWITCHES,
    TIMEOUT_SECONDS,
    Command,
    api_key_create,
    api_key_list,
    api_key_revoke,
    business_create,
    business_list,
    business_set,
    business_settings,
    clock_advance,
    invite,
)
from auth.rules import MODES

DEFAULT_TARGET = "127.0.0.1:50051"
TARGET_ENV = "PORTALCTL_AUTH_TARGET"
SUBSCRIPTIONS_TARGET = "127.0.0.1:50052"
SUBSCRIPTIONS_TARGET_ENV = "PORTALCTL_SUBSCRIPTIONS_TARGET"

EXIT_REFUSED, EXIT_USAGE, EXIT_UNAVAILABLE = 1, 2, 3


# --- parsing and running -------------------------------------------------------------------


def _common_options(*, suppress: bool) -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--auth-target",
        default=argparse.SUPPRESS if suppress else os.environ.get(TARGET_ENV, DEFAULT_TARGET),
        help=f"auth gRPC address host:port (env {TARGET_ENV}, default {DEFAULT_TARGET})",
    )
    common.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="print JSON for scripting",
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every command."""
    # The options are accepted before and after the command. Below the top level
    # they default to SUPPRESS: argparse lets a subparser's defaults overwrite
    # what was already parsed, which would silently drop `portalctl --json ...`.
    common = _common_options(suppress=True)
    parser = argparse.ArgumentParser(
        prog="portalctl",
        description="Operate the customer portal.",
        parents=[_common_options(suppress=False)],
    )
    groups = parser.add_subparsers(
        dest="group", required=True, metavar="{business,api-key,invite,clock}"
    )

    business = groups.add_parser("business", help="merchants and their branding")
    business_cmds = business.add_subparsers(dest="command", required=True)
    create = business_cmds.add_parser("create", help="create a business", parents=[common])
    create.add_argument("--name", required=True)
    create.add_argument("--logo-url", help="http(s) URL of the logo shown in the portal")
    create.add_argument("--color", help="accent colour, #RRGGBB")
    create.add_argument("--support-email")
    create.add_argument("--return-url", help="default http(s) URL to return to from the portal")
    create.add_argument("--locale", help="default language, e.g. en or it")
    create.add_argument("--address", help="postal address on invoices, '\\n' between lines")
    create.add_argument("--renewal-reminder-days", type=int, help="reminder days (1-30, 3)")
    create.add_argument("--tax-id", help="VAT number or other tax id printed on invoices")
    create.add_argument(
        "--license-grace-days",
        type=int,
        help="days an on_hold subscription's license keys keep working (0-365, 0 = 7)",
    )
    create.set_defaults(run=business_create)
    listing = business_cmds.add_parser("list", help="list businesses", parents=[common])
    listing.add_argument("--page-size", type=int, default=100)
    listing.add_argument("--page", type=int, default=0, help="zero-based page number")
    listing.set_defaults(run=business_list)
    show = business_cmds.add_parser(
        "settings", help="what customers may do in the portal", parents=[common]
    )
    show.add_argument("business_id", metavar="BUS")
    show.set_defaults(run=business_settings)
    change = business_cmds.add_parser(
        "set", help="change what customers may do in the portal", parents=[common]
    )
    change.add_argument("business_id", metavar="BUS")
    for name in PORTAL_SWITCHES:
        change.add_argument(
            f"--{name.replace('_', '-')}",
            dest=name,
            action=argparse.BooleanOptionalAction,
            default=None,
            help="allowed in the portal (or not)" if name.startswith("allow_") else None,
        )
    change.add_argument(
        "--downgrade-timing",
        choices=sorted(DOWNGRADE_TIMING_CHOICES),
        help="when a customer's downgrade takes effect",
    )
    change.add_argument("--renewal-reminder-days", type=int, help="reminder days (1-30)")
    change.add_argument(
        "--license-grace-days", type=int, help="on_hold license keys' grace (0-365, 0 = 7)"
    )
    change.set_defaults(run=business_set)

    api_key = groups.add_parser("api-key", help="merchant API keys")
    key_cmds = api_key.add_subparsers(dest="command", required=True)
    key_create = key_cmds.add_parser("create", help="issue an API key", parents=[common])
    key_create.add_argument("--business", required=True, metavar="BUS")
    key_create.add_argument("--mode", required=True, choices=sorted(MODES))
    key_create.add_argument("--name", default="")
    key_create.set_defaults(run=api_key_create)
    key_list = key_cmds.add_parser("list", help="list a business's API keys", parents=[common])
    key_list.add_argument("--business", required=True, metavar="BUS")
    key_list.set_defaults(run=api_key_list)
    key_revoke = key_cmds.add_parser("revoke", help="revoke an API key", parents=[common])
    key_revoke.add_argument("--business", required=True, metavar="BUS")
    key_revoke.add_argument("key_id", metavar="KEY_ID")
    key_revoke.set_defaults(run=api_key_revoke)

    share = groups.add_parser(
        "invite",
        help="share invite: a customer's static link and a fresh one-time link",
        parents=[common],
    )
    share.add_argument("customer_id", metavar="CUSTOMER_ID")
    share.add_argument("--business", required=True, metavar="BUS")
    share.add_argument("--mode", required=True, choices=sorted(MODES))
    share.add_argument("--send-email", action="store_true", help="also email the one-time link")
    share.add_argument("--return-url", help='http(s) URL of the "Return to …" button')
    share.add_argument("--next", help="portal path to open, e.g. /b/BUS/subscriptions")
    share.set_defaults(run=invite)

    clock = groups.add_parser("clock", help="a business's test-mode clock")
    clock_cmds = clock.add_subparsers(dest="command", required=True)
    advance = clock_cmds.add_parser("advance", help="move it forward", parents=[common])
    advance.add_argument("--business", required=True, metavar="BUS")
    how_far = advance.add_mutually_exclusive_group(required=True)
    how_far.add_argument("--seconds", type=int)
    how_far.add_argument("--days", type=int)
    how_far.add_argument("--to", help="ISO 8601 date-time with a zone, never in the past")
    advance.add_argument(
        "--subscriptions-target",
        default=os.environ.get(SUBSCRIPTIONS_TARGET_ENV, SUBSCRIPTIONS_TARGET),
        help=f"subscriptions gRPC address (env {SUBSCRIPTIONS_TARGET_ENV})",
    )
    advance.set_defaults(run=clock_advance)
    return parser


async def run(argv: Sequence[str], out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Parse ``argv``, run the command against auth and return the exit code."""
    try:
        # argparse prints usage/help straight to sys.stdout/stderr; send it where we write.
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse already printed usage or help
        return int(exc.code or 0)
    command: Command = args.run
    channel = create_channel(args.auth_target, name="auth", timeout=TIMEOUT_SECONDS)
    args.portal_stub = portal_access_pb2_grpc.PortalAccessServiceStub(channel)
    try:
        await command(auth_pb2_grpc.AuthServiceStub(channel), args, out, err)
    except DomainError as refused:  # the channel raises auth's refusals as DomainError
        print(f"error: {refused.message}", file=err)
        return EXIT_REFUSED
    except grpc.aio.AioRpcError as exc:
        if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            if rpc_status.from_call(exc) is not None:  # type: ignore[arg-type]
                # Auth answered, but one of its own dependencies (e.g. email) is down.
                print(f"error: {exc.details()} (try again later)", file=err)
            else:
                print(
                    f"error: cannot reach auth at {args.auth_target} ({exc.code().name})", file=err
                )
            return EXIT_UNAVAILABLE
        print(f"error: auth answered {exc.code().name}: {exc.details()}", file=err)
        return EXIT_REFUSED
    finally:
        await channel.close()
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point (``portalctl``)."""
    code = asyncio.run(run(sys.argv[1:] if argv is None else argv))
    sys.exit(code)


if __name__ == "__main__":
    main()
