"""``python -m devstack run`` (what `make run` does) and ``python -m devstack smtp-sink``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path

from devstack.smtp_sink import serve
from devstack.stack import Stack, StackError
from devstack.topology import ALL_SERVICES, BACKEND_SERVICES


def _banner(stack: Stack, api_key: str | None, business_id: str | None) -> str:
    lines = [
        "",
        f"All {len(ALL_SERVICES)} services ready in {stack.startup_seconds:.1f}s.",
        "",
        f"  Gateway (merchant API + portal)  {stack.gateway_url}",
        f"  Hosted payment page (payments)   {stack.payments_page_url}/pay/<session_id>",
    ]
    for name in ALL_SERVICES:
        grpc = f"gRPC {stack.grpc_target(name)}" if name in BACKEND_SERVICES else "HTTP edge"
        lines.append(f"  {name:<14} ops {stack.ops_url(name)}/readyz   {grpc}")
    lines += [
        f"  SecantusDB     {stack.mongo_url}",
        f"  SMTP sink      {stack.ports.smtp} -> {stack.mail_dir}/*.eml",
        f"  Logs           {stack.log_dir}/<name>.log",
        "",
    ]
    if api_key and business_id:
        lines += [
            f"  Demo business  {business_id}",
            f"  Test API key   {api_key}",
            f"  Try:  curl -H 'Authorization: Bearer {api_key}' {stack.gateway_url}/customers",
            f"  Portal sign-in (test mode)  {stack.portal_urls.test}/login/{business_id}"
            "  (the email lands in the SMTP sink)",
            f"  Unified portal (live only)  {stack.portal_urls.unified}/login",
            "  Sign in as ada@example.com (Pro plan, card 4242: change plan, seats, add-ons)",
            "  or grace@example.com (Starter; her card declines renewals: advance the clock",
            f"  a month with  curl -H 'Authorization: Bearer {api_key}'",
            "  -H 'Content-Type: application/json' -d '{\"seconds\": 2678400}'",
            f"  {stack.gateway_url}/test-helpers/clock/advance",
            "  to see on_hold, then Edit the payment method to reactivate).",
            "",
        ]
    lines.append("Press Ctrl-C to stop everything.")
    return "\n".join(lines)


async def _run(args: argparse.Namespace) -> int:
    console = None if args.quiet else sys.stdout
    stack = Stack.development(Path(args.data_dir), amqp_url=args.amqp_url, console=console)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    print(f"Starting SecantusDB, the SMTP sink and {len(ALL_SERVICES)} services…", flush=True)
    starting = asyncio.create_task(stack.start())
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if not starting.done():
        # Ctrl-C while starting: Stack.start() stops what it had started when cancelled.
        starting.cancel()
        with contextlib.suppress(asyncio.CancelledError, StackError):
            await starting
        print("Stopped before the stack was ready.")
        return 130
    stopping.cancel()
    try:
        starting.result()
    except StackError as exc:
        print(f"devstack: {exc}", file=sys.stderr)
        return 1

    exit_code = 0
    try:
        api_key = business_id = None
        if not args.no_seed:
            demo = await stack.seed_demo()
            api_key, business_id = demo.api_key_secret, demo.business_id
        print(_banner(stack, api_key, business_id), flush=True)
        exit_code = await _watch(stack, stop)
    except Exception as exc:
        print(f"devstack: {type(exc).__name__}: {exc}", file=sys.stderr)
        exit_code = 1
    finally:
        print("Stopping…", flush=True)
        codes = await stack.stop()
        print("Stopped: " + ", ".join(f"{k}={v}" for k, v in codes.items()), flush=True)
    return exit_code


async def _watch(stack: Stack, stop: asyncio.Event) -> int:
    """Wait for Ctrl-C; if a service dies on its own, say so and stop the rest."""
    while not stop.is_set():
        for name, process in stack.services.items():
            if not process.running:
                print(
                    f"devstack: {name} exited with code {process.returncode}; stopping the stack",
                    file=sys.stderr,
                )
                return 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m devstack``."""
    parser = argparse.ArgumentParser(prog="devstack", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="start the whole stack on the development ports")
    run.add_argument("--data-dir", default=".data", help="where data, mail and logs go")
    run.add_argument("--amqp-url", default=None, help="broker URL (default: $AMQP_URL or local)")
    run.add_argument("--no-seed", action="store_true", help="do not create the demo data")
    run.add_argument("--quiet", action="store_true", help="write logs to files only")
    sink = sub.add_parser("smtp-sink", help="run only the SMTP sink")
    sink.add_argument("--host", default="127.0.0.1")
    sink.add_argument("--port", type=int, default=1025)
    sink.add_argument("--maildir", default=".data/mail")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.command == "smtp-sink":
        asyncio.run(serve(args.host, args.port, Path(args.maildir)))
        return 0
    return asyncio.run(_run(args))


if __name__ == "__main__":
    sys.exit(main())
