"""``portalctl``: the operator's command line, talking gRPC to the auth service.

    portalctl business create --name "Acme" [--logo-url URL] [--color #RRGGBB]
                              [--support-email EMAIL] [--return-url URL] [--locale it]
    portalctl business list
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
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, TextIO

import grpc
from billing.auth.v1 import auth_pb2, auth_pb2_grpc, portal_access_pb2, portal_access_pb2_grpc
from billing.common.v1 import common_pb2
from billing.subscriptions.v1 import subscriptions_pb2, subscriptions_pb2_grpc
from billing_kit.errors import DomainError, InvalidArgument
from billing_kit.grpc_client import create_channel
from billing_kit.scoping import mode_from_proto, mode_to_proto
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from grpc_status import rpc_status

from auth.rules import MODES

DEFAULT_TARGET = "127.0.0.1:50051"
TARGET_ENV = "PORTALCTL_AUTH_TARGET"
SUBSCRIPTIONS_TARGET = "127.0.0.1:50052"
SUBSCRIPTIONS_TARGET_ENV = "PORTALCTL_SUBSCRIPTIONS_TARGET"
TIMEOUT_SECONDS = 10.0

EXIT_REFUSED, EXIT_USAGE, EXIT_UNAVAILABLE = 1, 2, 3

Command = Callable[
    [auth_pb2_grpc.AuthServiceStub, argparse.Namespace, TextIO, TextIO], Awaitable[None]
]


def _to_dict(message: Message) -> dict[str, Any]:
    return MessageToDict(message, preserving_proto_field_name=True)


def _mode_name(value: int) -> str:
    # A listing shows whatever auth returned; an unknown mode is shown, not fatal.
    try:
        return mode_from_proto(value)
    except InvalidArgument:
        return "?"


def _when(ts: Any) -> str:
    if not ts.seconds and not ts.nanos:
        return "-"
    value: datetime = ts.ToDatetime()
    return value.strftime("%Y-%m-%d %H:%M:%SZ")


def _table(out: TextIO, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    print(line.format(*headers).rstrip(), file=out)
    for row in rows:
        print(line.format(*row).rstrip(), file=out)


# --- commands ------------------------------------------------------------------------------


async def business_create(
    stub: auth_pb2_grpc.AuthServiceStub, args: argparse.Namespace, out: TextIO, err: TextIO
) -> None:
    """Create a business and print it."""
    business = await stub.CreateBusiness(
        auth_pb2.CreateBusinessRequest(
            name=args.name,
            branding=auth_pb2.Branding(
                logo_url=args.logo_url or "", primary_color=args.color or ""
            ),
            support_email=args.support_email or "",
            default_return_url=args.return_url or "",
            locale=args.locale or "",
            **{f: (getattr(args, f) or "").replace("\\n", "\n") for f in ("address", "tax_id")},
            renewal_reminder_days=args.renewal_reminder_days or 0,
        )
    )
    if args.json:
        print(json.dumps(_to_dict(business)), file=out)
        return
    print(f"created business {business.business_id} ({business.name})", file=out)


async def business_list(
    stub: auth_pb2_grpc.AuthServiceStub, args: argparse.Namespace, out: TextIO, err: TextIO
) -> None:
    """List businesses, newest first."""
    response = await stub.ListBusinesses(
        auth_pb2.ListBusinessesRequest(page_size=args.page_size, page_number=args.page)
    )
    if args.json:
        print(json.dumps([_to_dict(b) for b in response.businesses]), file=out)
        return
    _table(
        out,
        ["BUSINESS", "NAME", "LOCALE", "COLOR", "CREATED"],
        [
            [
                b.business_id,
                b.name,
                b.locale,
                b.branding.primary_color or "-",
                _when(b.created_at),
            ]
            for b in response.businesses
        ],
    )


async def api_key_create(
    stub: auth_pb2_grpc.AuthServiceStub, args: argparse.Namespace, out: TextIO, err: TextIO
) -> None:
    """Issue an API key and print its secret, once."""
    response = await stub.CreateApiKey(
        auth_pb2.CreateApiKeyRequest(
            business_id=args.business, mode=mode_to_proto(args.mode), name=args.name or ""
        )
    )
    key = response.api_key
    if args.json:
        print(json.dumps({"api_key": _to_dict(key), "secret": response.secret}), file=out)
    else:
        print(f"created {args.mode} API key {key.key_id} for {key.business_id}", file=out)
        print(f"secret: {response.secret}", file=out)
    # On stderr so `--json` output stays parseable and a redirected stdout still warns.
    print(
        "warning: copy this secret now; auth keeps only its hash and it will not be shown again.",
        file=err,
    )


async def api_key_list(
    stub: auth_pb2_grpc.AuthServiceStub, args: argparse.Namespace, out: TextIO, err: TextIO
) -> None:
    """List a business's API keys (prefixes only, never secrets)."""
    response = await stub.ListApiKeys(auth_pb2.ListApiKeysRequest(business_id=args.business))
    if args.json:
        print(json.dumps([_to_dict(k) for k in response.api_keys]), file=out)
        return
    _table(
        out,
        ["KEY", "MODE", "PREFIX", "NAME", "CREATED", "STATUS"],
        [
            [
                k.key_id,
                _mode_name(k.mode),
                k.display_prefix + "…",
                k.name or "-",
                _when(k.created_at),
                f"revoked {_when(k.revoked_at)}" if k.HasField("revoked_at") else "active",
            ]
            for k in response.api_keys
        ],
    )


async def api_key_revoke(
    stub: auth_pb2_grpc.AuthServiceStub, args: argparse.Namespace, out: TextIO, err: TextIO
) -> None:
    """Revoke an API key."""
    key = await stub.RevokeApiKey(
        auth_pb2.RevokeApiKeyRequest(business_id=args.business, key_id=args.key_id)
    )
    if args.json:
        print(json.dumps(_to_dict(key)), file=out)
        return
    print(
        f"revoked API key {key.key_id} ({key.display_prefix}…) at {_when(key.revoked_at)}", file=out
    )


async def invite(
    stub: auth_pb2_grpc.AuthServiceStub, args: argparse.Namespace, out: TextIO, err: TextIO
) -> None:
    """Share invite: the business's static link for the customer's mode and a fresh magic link."""
    portal: portal_access_pb2_grpc.PortalAccessServiceStub = args.portal_stub
    response = await portal.CreatePortalLink(
        portal_access_pb2.CreatePortalLinkRequest(
            business_id=args.business,
            mode=mode_to_proto(args.mode),
            customer_id=args.customer_id,
            send_email=args.send_email,
            return_url=args.return_url or "",
            next_path=args.next or "",
        )
    )
    if args.json:
        print(
            json.dumps(
                {
                    "static_link": response.static_link,
                    "link": response.link,
                    "expires_at": _when(response.expires_at),
                }
            ),
            file=out,
        )
        return
    print(f"static link (never expires): {response.static_link}", file=out)
    print(f"one-time link (until {_when(response.expires_at)}): {response.link}", file=out)
    if args.send_email:
        print("the one-time link was also emailed to the customer", file=out)


async def clock_advance(
    stub: auth_pb2_grpc.AuthServiceStub, args: argparse.Namespace, out: TextIO, err: TextIO
) -> None:
    """Move a business's test-mode clock forward (renewals and expiries follow it)."""
    request = subscriptions_pb2.AdvanceTestClockRequest(
        business_id=args.business, mode=common_pb2.MODE_TEST
    )
    if args.to:
        try:
            request.to.FromDatetime(datetime.fromisoformat(args.to))
        except ValueError:
            raise InvalidArgument("--to must be an ISO 8601 date-time with a zone") from None
    else:
        request.seconds = args.seconds if args.seconds is not None else args.days * 86_400
    channel = create_channel(
        args.subscriptions_target, name="subscriptions", timeout=TIMEOUT_SECONDS
    )
    try:
        clock = await subscriptions_pb2_grpc.SubscriptionsServiceStub(channel).AdvanceTestClock(
            request
        )
    finally:
        await channel.close()
    if args.json:
        print(json.dumps(_to_dict(clock)), file=out)
        return
    print(f"test clock of {clock.business_id} is now {_when(clock.now)}", file=out)


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
    create.set_defaults(run=business_create)
    listing = business_cmds.add_parser("list", help="list businesses", parents=[common])
    listing.add_argument("--page-size", type=int, default=100)
    listing.add_argument("--page", type=int, default=0, help="zero-based page number")
    listing.set_defaults(run=business_list)

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
