"""``portalctl``'s commands: each asks auth (or subscriptions) over gRPC and prints the
answer, as a table or as ``--json``. The parser and the exit codes live in
:mod:`auth.cli`."""

from __future__ import annotations

import argparse
import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, TextIO

from billing.auth.v1 import auth_pb2, auth_pb2_grpc, portal_access_pb2, portal_access_pb2_grpc
from billing.common.v1 import common_pb2
from billing.subscriptions.v1 import subscriptions_pb2, subscriptions_pb2_grpc
from billing_kit.errors import InvalidArgument
from billing_kit.grpc_client import create_channel
from billing_kit.scoping import mode_from_proto, mode_to_proto
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

TIMEOUT_SECONDS = 10.0

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
            license_grace_days=args.license_grace_days or 0,
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


# portalctl's flags of UpdateBusinessRequest's optional booleans, in the order shown.
PORTAL_SWITCHES = (
    "allow_cancel",
    "allow_pause",
    "allow_plan_change",
    "allow_quantity_change",
    "ask_cancel_reason",
)
DOWNGRADE_TIMING_CHOICES = {
    "next_billing_date": auth_pb2.DOWNGRADE_TIMING_NEXT_BILLING_DATE,
    "immediately": auth_pb2.DOWNGRADE_TIMING_IMMEDIATELY,
}
_DOWNGRADE_TIMING_NAMES = {number: name for name, number in DOWNGRADE_TIMING_CHOICES.items()}


def settings_dict(business: auth_pb2.Business) -> dict[str, Any]:
    """A business's portal settings and reminder/grace days, as ``--json`` prints them."""
    settings = business.portal_settings
    return {
        "business_id": business.business_id,
        "name": business.name,
        "portal_settings": {
            **{name: getattr(settings, name) for name in PORTAL_SWITCHES},
            "downgrade_timing": _DOWNGRADE_TIMING_NAMES.get(
                settings.downgrade_timing, "next_billing_date"
            ),
        },
        "renewal_reminder_days": business.renewal_reminder_days,
        "license_grace_days": business.license_grace_days,
    }


def _print_settings(business: auth_pb2.Business, args: argparse.Namespace, out: TextIO) -> None:
    shown = settings_dict(business)
    if args.json:
        print(json.dumps(shown), file=out)
        return
    print(f"business {business.business_id} ({business.name})", file=out)
    rows = [
        [name, "yes" if value is True else "no" if value is False else str(value)]
        for name, value in shown["portal_settings"].items()
    ]
    rows.append(["renewal_reminder_days", str(business.renewal_reminder_days)])
    grace = business.license_grace_days
    rows.append(["license_grace_days", str(grace) if grace else "0 (service default)"])
    _table(out, ["SETTING", "VALUE"], rows)


async def business_settings(
    stub: auth_pb2_grpc.AuthServiceStub, args: argparse.Namespace, out: TextIO, err: TextIO
) -> None:
    """Show what a business lets its customers do in the portal."""
    business = await stub.GetBusiness(auth_pb2.GetBusinessRequest(business_id=args.business_id))
    _print_settings(business, args, out)


async def business_set(
    stub: auth_pb2_grpc.AuthServiceStub, args: argparse.Namespace, out: TextIO, err: TextIO
) -> None:
    """Change the given settings of a business (audited as ``portalctl``) and show them all."""
    request = auth_pb2.UpdateBusinessRequest(business_id=args.business_id, actor="portalctl")
    for name in (*PORTAL_SWITCHES, "renewal_reminder_days", "license_grace_days"):
        value = getattr(args, name)
        if value is not None:
            setattr(request, name, value)
    if args.downgrade_timing:
        request.downgrade_timing = DOWNGRADE_TIMING_CHOICES[args.downgrade_timing]
    business = await stub.UpdateBusiness(request)
    _print_settings(business, args, out)


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
